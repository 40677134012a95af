import AsyncHTTPClient
import Foundation
import GatewayApp
import GatewayStorage
import GatewayStorageTesting
import GatewaySupport
import HTTPTypes
import Hummingbird
import LTICore
import LTITestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Sandbox
import ServiceLifecycle
import Synchronization

/// A clock tests can move; the gateway reads it through `now`.
final class TestClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    var now: Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    /// The monotonic clock, moved with ``now``.
    var instant: ContinuousClock.Instant { ContinuousClock.now + .milliseconds(Int64(offset.withLock { $0 } * 1000)) }
    func advance(_ seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}

/// A free TCP port on 127.0.0.1.
func freePort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

/// The simulated LMS's web server: its key sets on 127.0.0.1, switchable, counting fetches.
final class PlatformServer: Sendable {
    private let documents = Mutex<[String: String]>([:])
    private let fetches = Mutex<[String: Int]>([:])
    func publish(_ path: String, _ jwks: String) { documents.withLock { $0[path] = jwks } }
    func fetchCount(_ path: String) -> Int { fetches.withLock { $0[path] ?? 0 } }

    let boundPort = Mutex<Int?>(nil)

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("/:name") { _, context -> Response in
            let path = "/" + (context.parameters.get("name") ?? "")
            self.fetches.withLock { $0[path, default: 0] += 1 }
            guard let body = self.documents.withLock({ $0[path] }) else { return Response(status: .notFound) }
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "max-age=300"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.boundPort.withLock { $0 = channel.localAddress?.port } })
    }
}

/// What a browser gets back.
struct BrowserResponse {
    var status: Int
    var headers: HTTPHeaders
    var body: String
    var location: String? { headers.first(name: "Location") }
    var reference: String? { headers.first(name: "X-Request-Id") }
}

/// The result of an OIDC login as the browser sees it.
struct LoginResult {
    var state: String
    var nonce: String
    /// `name=value` for the Cookie header.
    var cookie: String
    var setCookie: String
    var redirect: String
}

/// The real gateway over loopback, the simulated LMS (platforms A and B with their own keys), a test clock
/// and a log recorder.
final class EndToEnd: Sendable {
    let gateway: Gateway
    let baseURL: String
    let platformA: TestPlatform
    let platformB: TestPlatform
    let platformServer: PlatformServer
    let platformPort: Int
    let clock: TestClock
    let logs: LogRecorder
    let http: HTTPClient
    let folder: URL
    let tasks: Mutex<[Task<Void, any Error>]>
    let groups: [ServiceGroup]
    let registrationA: PlatformRegistration
    let registrationB: PlatformRegistration
    let settings: GatewaySettings

    /// A second handle on the gateway's signing keys, as `lti-gateway keys …` opens it (files or the database).
    var keyStore: any SigningKeyStore {
        get throws { try signingKeyStore(settings: settings, store: gateway.store) }
    }

    /// Whether this run uses PostgreSQL (else SQLite and key files).
    var onPostgreSQL: Bool { settings.database.url.hasPrefix("postgres") }

    private init(
        gateway: Gateway, settings: GatewaySettings, baseURL: String, platformA: TestPlatform, platformB: TestPlatform,
        platformServer: PlatformServer,
        platformPort: Int, clock: TestClock, logs: LogRecorder, http: HTTPClient, folder: URL,
        tasks: [Task<Void, any Error>], groups: [ServiceGroup], registrationA: PlatformRegistration, registrationB: PlatformRegistration
    ) {
        self.gateway = gateway
        self.settings = settings
        self.baseURL = baseURL
        self.platformA = platformA
        self.platformB = platformB
        self.platformServer = platformServer
        self.platformPort = platformPort
        self.clock = clock
        self.logs = logs
        self.http = http
        self.folder = folder
        self.tasks = Mutex(tasks)
        self.groups = groups
        self.registrationA = registrationA
        self.registrationB = registrationB
    }

    /// Starts everything; call ``stop()`` at the end.
    /// - Parameter databaseURL: a PostgreSQL database for this gateway; nil → SQLite in a temporary folder.
    static func start(configure: (inout GatewaySettings) -> Void = { _ in }, databaseURL: String? = nil) async throws -> EndToEnd {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-e2e-\(UUID().uuidString)")
        let logs = LogRecorder()
        let clock = TestClock()
        let platformServer = PlatformServer()
        let platformA = TestPlatform(
            issuer: "https://lms-a.example.edu", clientID: "client-a", deploymentID: "dep-a", kid: "a-key-1",
            privateKey: TestKeys.platformA)
        let platformB = TestPlatform(
            issuer: "https://lms-b.example.edu", clientID: "client-b", deploymentID: "dep-b", kid: "b-key-1",
            privateKey: TestKeys.platformB)
        platformServer.publish("/jwks-a", platformA.jwksJSON)
        platformServer.publish("/jwks-b", platformB.jwksJSON)
        let platformGroup = ServiceGroup(services: [platformServer.application()], gracefulShutdownSignals: [], logger: Logger(label: "platform"))
        let platformTask = Task { try await platformGroup.run() }
        var platformPort = 0
        for _ in 0..<500 where platformPort == 0 {
            platformPort = platformServer.boundPort.withLock { $0 } ?? 0
            if platformPort == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }

        // The gateway's public URL must name its port before it starts, so a free port is picked first;
        // another test may take it in between, so a start that cannot bind is retried on a new port.
        var started: (Gateway, GatewaySettings, ServiceGroup, Task<Void, any Error>)?
        for _ in 0..<5 where started == nil {
            let port = try await freePort()
            var settings = GatewaySettings()
            settings.server.publicURL = "http://127.0.0.1:\(port)"
            settings.server.port = port
            settings.database.url = "sqlite:" + folder.appendingPathComponent("data/gateway.sqlite").path
            settings.keys.directory = folder.appendingPathComponent("keys").path
            // Tests change registrations' options in the store and launch at once (the cache has its own tests).
            settings.database.registrationCacheLifetime = .zero
            settings.server.metricsToken = EndToEnd.metricsToken
            if let databaseURL {
                settings.database.url = databaseURL
                settings.database.keyEncryptionKey = EndToEnd.testKeyEncryptionKey
            }
            configure(&settings)
            // The store runs (and is closed) around the gateway's service group, as `lti-gateway serve` runs it.
            let (built, handOver) = AsyncThrowingStream.makeStream(of: (Gateway, ServiceGroup).self)
            let task = Task { [settings] in
                do {
                    try await withStore(settings: settings, logger: logs.logger(label: "lti-gateway", level: .debug)) { store in
                        let gateway = try await buildGateway(
                            settings: settings, store: store, logger: logs.logger(label: "lti-gateway", level: .debug),
                            now: { clock.now }, monotonicNow: { clock.instant })
                        let group = gateway.serviceGroup(settings: settings, logger: Logger(label: "gateway"), gracefulShutdownSignals: [])
                        handOver.yield((gateway, group))
                        try await group.run()
                    }
                    handOver.finish()
                } catch {
                    handOver.finish(throwing: error)
                    throw error
                }
            }
            var first: (Gateway, ServiceGroup)?
            for try await pair in built {
                first = pair
                break
            }
            guard let (gateway, group) = first else { throw LoginFailed(status: 0, body: "gateway did not start") }
            if (try? await gateway.listeningPort.wait(timeout: .seconds(5))) != nil {
                started = (gateway, settings, group, task)
            } else {
                await group.triggerGracefulShutdown()
                _ = try? await task.value
            }
        }
        guard let (gateway, settings, gatewayGroup, gatewayTask) = started else { throw LoginFailed(status: 0, body: "gateway did not start") }

        let lms = "http://127.0.0.1:\(platformPort)"
        let registrations: (PlatformRegistration, PlatformRegistration)
        do {
            registrations = try await register(gateway: gateway, lms: lms, platformA, platformB)
        } catch {
            for group in [platformGroup, gatewayGroup] { await group.triggerGracefulShutdown() }
            for task in [platformTask, gatewayTask] { _ = try? await task.value }
            throw error
        }
        let (registrationA, registrationB) = registrations
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        return EndToEnd(
            gateway: gateway, settings: settings, baseURL: settings.baseURL, platformA: platformA, platformB: platformB,
            platformServer: platformServer, platformPort: platformPort, clock: clock, logs: logs, http: http,
            folder: folder, tasks: [platformTask, gatewayTask], groups: [platformGroup, gatewayGroup], registrationA: registrationA,
            registrationB: registrationB)
    }

    /// The bearer token of `/metrics` in these tests.
    static let metricsToken = "test-metrics-token"

    /// `GET /metrics` with the operators' token.
    func metrics() async throws -> String {
        try await request(.GET, "/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
    }

    /// The key that seals signing keys in the tests' PostgreSQL databases.
    static let testKeyEncryptionKey = Data(repeating: 42, count: 32).base64EncodedString()

    /// Registers the two simulated platforms with the gateway.
    private static func register(
        gateway: Gateway, lms: String, _ platformA: TestPlatform, _ platformB: TestPlatform
    ) async throws
        -> (PlatformRegistration, PlatformRegistration)
    {
        let registrationA = try await PlatformAdministration.add(
            store: gateway.store, issuer: platformA.issuer, clientID: platformA.clientID, authURL: lms + "/auth-a",
            tokenURL: lms + "/token-a", jwksURL: lms + "/jwks-a", deployments: [platformA.deploymentID])
        let registrationB = try await PlatformAdministration.add(
            store: gateway.store, issuer: platformB.issuer, clientID: platformB.clientID, authURL: lms + "/auth-b",
            tokenURL: lms + "/token-b", jwksURL: lms + "/jwks-b", deployments: [platformB.deploymentID])
        return (registrationA, registrationB)
    }

    func stop() async {
        try? await http.shutdown()
        for group in groups { await group.triggerGracefulShutdown() }
        for task in tasks.withLock({ $0 }) { _ = try? await task.value }
        try? FileManager.default.removeItem(at: folder)
    }

    /// A browser request; no redirect is followed.
    func request(
        _ method: HTTPMethod, _ pathOrURL: String, form: [(String, String)]? = nil, cookie: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> BrowserResponse {
        try await browserRequest(
            http, method, pathOrURL.hasPrefix("http") ? pathOrURL : baseURL + pathOrURL, form: form, cookie: cookie,
            headers: headers)
    }

    /// The LMS's third-party-initiated login, as a GET; returns what the platform receives.
    func login(_ platform: TestPlatform, clientID: String? = nil, messageHint: String? = "hint-123") async throws -> LoginResult {
        var query: [(String, String)] = [
            ("iss", platform.issuer), ("login_hint", "user-hint"),
            ("target_link_uri", baseURL + "/lti/launch"), ("client_id", clientID ?? platform.clientID),
        ]
        if let messageHint { query.append(("lti_message_hint", messageHint)) }
        return try LoginResult(try await request(.GET, "/lti/login?" + FormEncoding.encode(query)))
    }

    struct LoginFailed: Error { var status: Int; var body: String }

    /// The platform's form post of the id_token to the launch URL.
    func launch(idToken: String?, state: String?, cookie: String?, path: String = "/lti/launch") async throws -> BrowserResponse {
        var form: [(String, String)] = []
        if let idToken { form.append(("id_token", idToken)) }
        if let state { form.append(("state", state)) }
        return try await request(.POST, path, form: form, cookie: cookie)
    }

    /// Claims of a valid launch for `platform` with the login's nonce, changed by `change`.
    func claims(
        _ platform: TestPlatform, _ login: LoginResult, labID: String? = "1001",
        _ change: (inout [String: Any]) -> Void = { _ in }
    ) -> [String: Any] {
        var claims = platform.launchClaims(nonce: login.nonce, now: clock.now, toolURL: baseURL, labID: labID)
        change(&claims)
        return claims
    }

    /// Login then launch with a valid token (changed by `change`), the whole browser flow.
    func fullLaunch(
        _ platform: TestPlatform? = nil, labID: String? = "1001",
        _ change: (inout [String: Any]) -> Void = { _ in }
    ) async throws -> BrowserResponse {
        let platform = platform ?? platformA
        let login = try await login(platform)
        return try await launch(idToken: platform.sign(claims(platform, login, labID: labID, change)), state: login.state, cookie: login.cookie)
    }

    var sandboxCalls: Int { get async { await gateway.skillableSandbox?.state.totalCalls ?? 0 } }
}

/// A browser's request to `url`; no redirect is followed.
func browserRequest(
    _ http: HTTPClient, _ method: HTTPMethod, _ url: String, form: [(String, String)]? = nil,
    cookie: String? = nil, headers: [(String, String)] = []
) async throws -> BrowserResponse {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let cookie { request.headers.add(name: "Cookie", value: cookie) }
    if let form {
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode(form)))
    }
    let response = try await http.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 4 << 20)
    return BrowserResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
}

extension LoginResult {
    /// What the platform reads from the gateway's answer to a login: the redirect's state and nonce, and the cookie.
    init(_ response: BrowserResponse) throws {
        guard response.status == 302, let location = response.location,
            let items = URLComponents(string: location)?.queryItems,
            let state = items.first(where: { $0.name == "state" })?.value,
            let nonce = items.first(where: { $0.name == "nonce" })?.value,
            let setCookie = response.headers.first(name: "Set-Cookie")
        else {
            throw EndToEnd.LoginFailed(status: response.status, body: response.body)
        }
        self.init(state: state, nonce: nonce, cookie: String(setCookie.split(separator: ";")[0]), setCookie: setCookie, redirect: location)
    }
}

/// Runs `body` against a fresh end-to-end set-up on SQLite and — when a test server is configured
/// (scripts/with-postgres.sh) — again on a fresh PostgreSQL database; always stops it.
func withEndToEnd(
    configure: (inout GatewaySettings) -> Void = { _ in },
    _ body: (EndToEnd) async throws -> Void
) async throws {
    try await run(try await EndToEnd.start(configure: configure), body)
    guard TemporaryPostgresDatabase.isAvailable else { return }
    try await TemporaryPostgresDatabase.with { url in
        do {
            try await run(try await EndToEnd.start(configure: configure, databaseURL: url), body)
        } catch {
            throw OnPostgreSQL(underlying: error)
        }
    }

    func run(_ e2e: EndToEnd, _ body: (EndToEnd) async throws -> Void) async throws {
        do {
            try await body(e2e)
        } catch {
            await e2e.stop()
            throw error
        }
        await e2e.stop()
    }
}

/// A failure of the PostgreSQL pass of an end-to-end test.
struct OnPostgreSQL: Error, CustomStringConvertible {
    let underlying: any Error
    var description: String { "on PostgreSQL: \(underlying)" }
}
