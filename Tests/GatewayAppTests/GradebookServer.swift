import Crypto
import CryptoExtras
import Foundation
import Hummingbird
import LTICore
import LTITestSupport
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Runs `application` (a simulated peer on 127.0.0.1) beside `body` once `listening` says it listens, and stops it
/// after `body`.
func runBeside<T>(
    _ application: some ApplicationProtocol, listening: @escaping () -> Bool, _ body: () async throws -> T
) async throws -> T {
    let group = ServiceGroup(services: [application], gracefulShutdownSignals: [], logger: Logger(label: "peer"))
    let task = Task { try await group.run() }
    defer { task.cancel() }
    guard await eventually(timeout: .seconds(5), { listening() }) else { throw CancellationError() }
    let result = try await body()
    await group.triggerGracefulShutdown()
    _ = try? await task.value
    return result
}

/// A simulated LMS's grade services on 127.0.0.1: an OAuth 2 token endpoint that checks the tool's signed
/// assertion, line items, and scores — recording what it was sent, answering failures on demand.
final class GradebookServer: Sendable {
    struct Received: Sendable {
        var path: String
        var headers: [String: String]
        var body: String
    }

    /// The tool's public keys, to check assertions against (the gateway's JWKS, read by the test).
    let verifyingKeys: Mutex<[String: _RSA.Signing.PublicKey]> = Mutex([:])
    let received = Mutex<[Received]>([])
    /// Statuses the score endpoint answers next, one per request, before it answers 200.
    let scoreFailures = Mutex<[Int]>([])
    /// When set, the score endpoint answers this status every time.
    let scoreStatus = Mutex<Int?>(nil)
    /// Tokens the token endpoint handed out, and those it revoked (the score endpoint answers 401 to them).
    let issued = Mutex<Int>(0)
    let revoked = Mutex<Set<String>>([])
    let lineItems = Mutex<[[String: String]]>([])
    /// How many token requests to refuse next (a platform still caching the tool's old key set).
    let tokenRefusals = Mutex<Int>(0)
    let port = Mutex<Int?>(nil)

    var base: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)" }
    func requests(_ path: String) -> [Received] { received.withLock { $0.filter { $0.path.hasPrefix(path) } } }
    var scores: [[String: Any]] {
        requests("/lineitems").filter { $0.path.hasSuffix("/scores") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any]
        }
    }

    /// Checks a client assertion: RS256 by a key of the tool's set, `iss` = `sub` = client id, `aud` = this token URL.
    func assertionProblem(_ jwt: String, clientID: String) -> String? {
        let parts = jwt.split(separator: ".").map(String.init)
        guard parts.count == 3, let headerData = Base64URL.decode(Array(parts[0].utf8)), let payloadData = Base64URL.decode(Array(parts[1].utf8)),
            let signature = Base64URL.decode(Array(parts[2].utf8)),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            let claims = try? JSONSerialization.jsonObject(with: payloadData) as? [String: Any]
        else { return "malformed" }
        guard header["alg"] as? String == "RS256", let kid = header["kid"] as? String, let key = verifyingKeys.withLock({ $0[kid] }) else {
            return "unknown kid"
        }
        guard
            key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: Data((parts[0] + "." + parts[1]).utf8)),
                padding: .insecurePKCS1v1_5)
        else { return "bad signature" }
        let now = Date().timeIntervalSince1970
        guard claims["iss"] as? String == clientID, claims["sub"] as? String == clientID, claims["aud"] as? String == base + "/token",
            let iat = claims["iat"] as? Double, iat <= now + 1, let exp = claims["exp"] as? Double, exp > now, exp - iat <= 600,
            (claims["jti"] as? String)?.isEmpty == false
        else { return "claims \(claims)" }
        return nil
    }

    func application(clientID: String) -> some ApplicationProtocol {
        let router = Router()
        router.post("/token") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 65536))
            self.record(request, body)
            let form = Dictionary(
                body.split(separator: "&").map { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                    return (parts[0], parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ") : "")
                }, uniquingKeysWith: { a, _ in a })
            guard form["grant_type"] == "client_credentials",
                form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                let assertion = form["client_assertion"], self.assertionProblem(assertion, clientID: clientID) == nil
            else { return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"invalid_client"}"#))) }
            if self.tokenRefusals.withLock({ count in
                defer { count = max(0, count - 1) }
                return count > 0
            }) {
                return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"invalid_client"}"#)))
            }
            let token = "token-\(self.issued.withLock { $0 += 1; return $0 })"
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"access_token":"\#(token)","token_type":"Bearer","expires_in":3600}"#)))
        }
        router.get("/lineitems") { request, _ -> Response in
            self.record(request, "")
            guard self.authorized(request) else { return Response(status: .unauthorized) }
            let link = request.uri.queryParameters["resource_link_id"].map(String.init)
            let items = self.lineItems.withLock { $0 }.filter { link == nil || $0["resourceLinkId"] == link }
            let data = try JSONSerialization.data(withJSONObject: items)
            return Response(
                status: .ok, headers: [.contentType: "application/vnd.ims.lis.v2.lineitemcontainer+json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.post("/lineitems") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 65536))
            self.record(request, body)
            guard self.authorized(request) else { return Response(status: .unauthorized) }
            var item = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            let id = self.base + "/lineitems/\(self.lineItems.withLock { $0.count } + 100)"
            item["id"] = id
            self.lineItems.withLock { $0.append(item.compactMapValues { $0 as? String ?? ($0 as? NSNumber)?.stringValue }) }
            let data = try JSONSerialization.data(withJSONObject: item)
            return Response(
                status: .created, headers: [.contentType: "application/vnd.ims.lis.v2.lineitem+json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.post("/lineitems/:id/scores") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 65536))
            guard self.authorized(request) else {
                self.record(request, "")
                return Response(status: .unauthorized)
            }
            if let status = self.scoreStatus.withLock({ $0 }) ?? self.scoreFailures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                self.record(request, "")
                return Response(status: .init(code: status))
            }
            self.record(request, body)
            return Response(status: .noContent)
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.port.withLock { $0 = channel.localAddress?.port } })
    }

    private func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer token-") else { return false }
        return !revoked.withLock { $0.contains(String(header.dropFirst(7))) }
    }

    private func record(_ request: Request, _ body: String) {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        received.withLock { $0.append(Received(path: path, headers: headers, body: body)) }
    }

    /// Runs the server beside `body`.
    func run<T>(clientID: String, _ body: () async throws -> T) async throws -> T {
        try await runBeside(application(clientID: clientID), listening: { self.port.withLock { $0 } != nil }, body)
    }
}
