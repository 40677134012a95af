import Crypto
import Foundation
import GatewayStorage
import GatewaySupport
import Hummingbird
import LTICore
import Logging
import Prometheus

/// `/healthz`, `/readyz`, `/metrics` and the tool's public key set.
struct OperationsController: Sendable {
    let store: any DatabaseHealth
    let metrics: PrometheusCollectorRegistry
    let toolKeys: ToolKeyService
    /// The vendors the built-in sandbox stands in for; `/readyz` names them, so no one mistakes a demo for a deployment.
    var sandboxVendors: [String] = []
    /// The bearer token `/metrics` requires (`GATEWAY_METRICS_TOKEN`); nil: `/metrics` is not served, since it would
    /// tell anyone on the learner-facing listener how many launches, refusals and which routes the gateway sees.
    var metricsToken: String?
    /// How long `/readyz` waits for its write before it answers 503 (a load balancer's probe must not hang).
    var readinessDeadline: Duration = .seconds(2)

    /// Every route: the probes and the key set, and `/metrics`.
    func addRoutes(to router: Router<GatewayRequestContext>) {
        addProbes(to: router)
        addMetrics(to: router)
        addKeySet(to: router)
    }

    /// `/healthz` and `/readyz`.
    func addProbes(to router: Router<GatewayRequestContext>) {
        router.get("/healthz") { _, _ in Self.text("ok\n") }
        router.get("/readyz") { _, context in
            do {
                try await withDeadline(readinessDeadline) { [store] in try await store.checkWritable(now: Date()) }
                return Self.text(
                    sandboxVendors.isEmpty ? "ready\n" : "ready (sandbox: fake \(sandboxVendors.joined(separator: " and ")), not for learners)\n")
            } catch {
                context.logger.error("not ready: the database does not take a write", metadata: ["error": "\(error)"])
                return Response(
                    status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8", .retryAfter: "5"],
                    body: .init(byteBuffer: ByteBuffer(string: "not ready: the database does not take a write\n")))
            }
        }
    }

    /// `/metrics`, behind its bearer token.
    func addMetrics(to router: Router<GatewayRequestContext>) {
        router.get("/metrics") { request, _ in
            guard let metricsToken else { throw GatewayError.notFound() }
            // Digests compared in constant time: neither the token's bytes nor its length show in the timing.
            guard let presented = Self.bearerToken(request), constantTimeEquals(Self.digest(presented), Self.digest(metricsToken)) else {
                var refusal = GatewayError(
                    code: .unauthorized, status: .unauthorized, title: "Not allowed",
                    message: "Metrics need the operators' bearer token.")
                refusal.challenge = "Bearer"
                throw refusal
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
    }

    /// The tool's public key set.
    func addKeySet(to router: Router<GatewayRequestContext>) {
        // Served from memory; max-age is shorter than the time a next key is published before it signs.
        let cacheControl = "public, max-age=\(toolKeys.policy.jwksMaxAge)"
        router.get("/.well-known/jwks.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: cacheControl],
                body: .init(byteBuffer: toolKeys.jwksDocument))
        }
    }

    static func digest(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    /// The token of an `Authorization: Bearer …` header.
    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
    }

    static func text(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
