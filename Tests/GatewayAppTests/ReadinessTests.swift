import Foundation
import GatewayStorage
import GatewaySupport
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import GatewayApp

@Suite("/readyz: ready only when the database takes a write, within a short deadline")
struct ReadinessTests {
    /// A database whose write check fails, hangs, or passes.
    struct ScriptedHealth: DatabaseHealth {
        enum Behaviour: Sendable { case writes, refuses, hangs }
        let behaviour: Behaviour
        func checkWritable(now: Date) async throws {
            switch behaviour {
            case .writes: return
            case .refuses: throw StorageError(.unavailable, "attempt to write a readonly database")
            case .hangs: try await Task.sleep(for: .seconds(60))
            }
        }
    }

    static func readyz(_ behaviour: ScriptedHealth.Behaviour, _ check: @escaping @Sendable (TestResponse) -> Void) async throws {
        try await operations(behaviour, uri: "/readyz", check)
    }

    /// `uri` on the operations routes alone, over a database that behaves as `behaviour`.
    static func operations(
        _ behaviour: ScriptedHealth.Behaviour = .writes, metricsToken: String? = nil, uri: String, headers: HTTPFields = [:],
        _ check: @escaping @Sendable (TestResponse) -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("readyz-keys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = try await ToolKeyService.start(store: FileSigningKeyStore(folder: folder.path), policy: KeyPolicy(), now: Date())
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: GatewayErrorMiddleware(pages: try PageRenderer()))
        // A database that hangs is given up on after 200 ms, so that the test is quick; one that answers is given all the time
        // a busy machine may need to run the check.
        OperationsController(
            store: ScriptedHealth(behaviour: behaviour), metrics: GatewayMetrics.registry, toolKeys: keys, metricsToken: metricsToken,
            readinessDeadline: behaviour == .hangs ? .milliseconds(200) : .seconds(30)
        ).addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: uri, method: .get, headers: headers) { check($0) }
        }
    }

    @Test("a database that takes the write is ready")
    func ready() async throws {
        try await Self.readyz(.writes) { response in #expect(response.status == .ok) }
    }

    @Test("a database that answers but refuses the write is not ready: 503 with Retry-After")
    func refusesWrite() async throws {
        try await Self.readyz(.refuses) { response in
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "5")
        }
    }

    @Test("a database that does not answer is not ready within the deadline, instead of hanging the probe")
    func hangs() async throws {
        let answered = try await withDeadline(.seconds(5)) {
            try await Self.readyz(.hangs) { response in #expect(response.status == .serviceUnavailable) }
            return true
        }
        #expect(answered)
    }

    @Test("without GATEWAY_METRICS_TOKEN, /metrics is not served at all")
    func metricsOff() async throws {
        try await Self.operations(uri: "/metrics") { response in #expect(response.status == .notFound) }
    }

    @Test("with a token, /metrics answers only to that bearer token")
    func metricsToken() async throws {
        let token = "ops-secret-0123456789"
        try await Self.operations(metricsToken: token, uri: "/metrics") { response in
            #expect(response.status == .unauthorized && response.headers[.wwwAuthenticate] == "Bearer")
        }
        try await Self.operations(metricsToken: token, uri: "/metrics", headers: [.authorization: "Bearer ops-secret-012345678X"]) {
            #expect($0.status == .unauthorized)
        }
        try await Self.operations(metricsToken: token, uri: "/metrics", headers: [.authorization: "Bearer " + token]) {
            #expect($0.status == .ok)
        }
    }
}
