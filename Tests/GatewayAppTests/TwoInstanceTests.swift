import AsyncHTTPClient
import Foundation
import GatewayApp
import GatewayStorage
import GatewayStoragePostgres
import GatewayStorageTesting
import GatewaySupport
import Hummingbird
import HummingbirdTesting
import LTICore
import LTITestSupport
import Logging
import NIOCore
import NIOHTTP1
import Sandbox
import ServiceLifecycle
import Synchronization
import Testing

/// An empty configuration file in `folder` (settings come from the environment), for `--config`.
func emptyConfig(in folder: URL) -> String {
    let path = folder.appendingPathComponent("empty-config.json").path
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: Data("{}".utf8)) }
    return path
}

/// A `lti-gateway serve` process of the build under test, on 127.0.0.1.
final class GatewayProcess: Sendable {
    let port: Int
    let process: Process
    let logPath: String

    /// The executable next to the test bundle (`swift build --build-tests` builds both).
    static var executable: String {
        let folder = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
        let candidates = [folder, folder.deletingLastPathComponent(), folder.deletingLastPathComponent().deletingLastPathComponent()]
        return candidates.map { $0.appendingPathComponent("lti-gateway").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? folder.appendingPathComponent("lti-gateway").path
    }

    init(port: Int, environment: [String: String], folder: URL, name: String, arguments: [String] = ["serve"]) throws {
        self.port = port
        logPath = folder.appendingPathComponent("\(name).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments + ["--config", emptyConfig(in: folder)]
        process.environment = environment.merging(["GATEWAY_PORT": String(port), "GATEWAY_HOST": "127.0.0.1"]) { $1 }
        process.currentDirectoryURL = folder
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Runs a one-shot command (e.g. `keys rotate`) with `environment`; its exit status.
    static func command(_ arguments: [String], environment: [String: String], folder: URL) throws -> Int32 {
        try run(arguments, environment: environment, folder: folder).status
    }

    /// Runs a one-shot command with `environment`: its exit status and what it printed on stdout and stderr.
    static func run(_ arguments: [String], environment: [String: String], folder: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        let name = UUID().uuidString
        let outputs = ["out", "err"].map { folder.appendingPathComponent("command-\(name).\($0)") }
        for output in outputs { _ = FileManager.default.createFile(atPath: output.path, contents: nil) }
        defer { for output in outputs { try? FileManager.default.removeItem(at: output) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--config", emptyConfig(in: folder)]
        process.environment = environment
        process.currentDirectoryURL = folder
        let handles = try outputs.map { try FileHandle(forWritingTo: $0) }
        defer { for handle in handles { try? handle.close() } }
        process.standardOutput = handles[0]
        process.standardError = handles[1]
        try process.run()
        process.waitUntilExit()
        let read = { (url: URL) in (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
        return (process.terminationStatus, read(outputs[0]), read(outputs[1]))
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// Two gateway processes behind one public URL, sharing one PostgreSQL database; a simulated LMS and
/// one SkyPrep fake in this process.
struct TwoInstances: Sendable {
    let a: GatewayProcess
    let b: GatewayProcess
    let publicURL: String
    let platform: TestPlatform
    let http: HTTPClient
    let skyPrep: SkyPrepSandbox
    /// The one Skillable both instances call.
    let skillable: SkillableSandbox
    let store: PostgresGatewayStore
    let environment: [String: String]
    let folder: URL
    let registrationID: String

    func url(_ instance: GatewayProcess, _ path: String) -> String { "http://127.0.0.1:\(instance.port)\(path)" }

    func request(_ method: HTTPMethod, _ url: String, form: [(String, String)]? = nil, cookie: String? = nil) async throws -> BrowserResponse {
        try await browserRequest(http, method, url, form: form, cookie: cookie)
    }

    /// The LMS's login at `instance`: state, nonce and the state cookie.
    func login(_ instance: GatewayProcess) async throws -> LoginResult {
        let query = [
            ("iss", platform.issuer), ("login_hint", "hint"), ("target_link_uri", publicURL + "/lti/launch"),
            ("client_id", platform.clientID),
        ]
        return try LoginResult(try await request(.GET, url(instance, "/lti/login?" + FormEncoding.encode(query))))
    }

    func idToken(_ login: LoginResult, subject: String = "learner-42", email: String = "ada@example.edu") -> String {
        var claims = platform.launchClaims(nonce: login.nonce, now: Date(), toolURL: publicURL, subject: subject)
        claims["email"] = email
        return platform.sign(claims)
    }

    func launch(_ instance: GatewayProcess, token: String, login: LoginResult) async throws -> BrowserResponse {
        try await request(.POST, url(instance, "/lti/launch"), form: [("id_token", token), ("state", login.state)], cookie: login.cookie)
    }

    /// The kids `instance` publishes.
    func publishedKids(_ instance: GatewayProcess) async throws -> Set<String> {
        let body = try await request(.GET, url(instance, "/.well-known/jwks.json")).body
        let keys = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: [[String: String]]])?["keys"] ?? []
        return Set(keys.compactMap { $0["kid"] })
    }
}

func withTwoInstances(_ body: @escaping @Sendable (TwoInstances) async throws -> Void) async throws {
    try await TemporaryPostgresDatabase.with { databaseURL in
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-two-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let platform = TestPlatform(
            issuer: "https://lms-a.example.edu", clientID: "client-a", deploymentID: "dep-a", kid: "a-key-1",
            privateKey: TestKeys.platformA)
        let platformServer = PlatformServer()
        platformServer.publish("/jwks-a", platform.jwksJSON)
        let skyPrep = SkyPrepSandbox(acctKey: "two.skyprepapp.com", apiKey: "two-instances-skyprep-key", callsPerMinute: 10_000)
        let skillable = SkillableSandbox(apiKey: "two-instances-skillable-key")
        let router = Router()
        skyPrep.addRoutes(to: router)
        skillable.addRoutes(to: router)
        let skyPrepApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await skyPrepApp.test(.live) { skyPrepClient in
            let platformGroup = ServiceGroup(services: [platformServer.application()], gracefulShutdownSignals: [], logger: Logger(label: "lms"))
            let platformTask = Task { try await platformGroup.run() }
            defer { Task { await platformGroup.triggerGracefulShutdown() } }
            var lmsPort: Int?
            for _ in 0..<200 where lmsPort == nil {
                lmsPort = platformServer.boundPort.withLock { $0 }
                try await Task.sleep(for: .milliseconds(10))
            }
            let lms = "http://127.0.0.1:\(try #require(lmsPort))"

            let store = PostgresGatewayStore.open(settings: try PostgresSettings(url: databaseURL), logger: Logger(label: "test"))
            try await store.whileRunning {
                try await store.migrate()
                let registration = try await PlatformAdministration.add(
                    store: store, issuer: platform.issuer, clientID: platform.clientID, authURL: lms + "/auth-a", tokenURL: lms + "/token-a",
                    jwksURL: lms + "/jwks-a", deployments: [platform.deploymentID])

                let (portA, portB) = (try await freePort(), try await freePort())
                let publicURL = "http://127.0.0.1:\(portA)"
                let environment = [
                    "GATEWAY_DATABASE_URL": databaseURL, "GATEWAY_KEY_ENCRYPTION_KEY": EndToEnd.testKeyEncryptionKey,
                    "GATEWAY_PUBLIC_URL": publicURL, "GATEWAY_KEY_RELOAD_SECONDS": "1", "GATEWAY_JOB_POLL_SECONDS": "0.2",
                    "SKYPREP_RETRY_SECONDS": "0.3",
                    "SKYPREP_BASE_URL": "http://127.0.0.1:\(try #require(skyPrepClient.port))/sandbox/skyprep/admin/api",
                    "SKYPREP_ACCT_KEY": skyPrep.acctKey, "SKYPREP_API_KEY": skyPrep.apiKey, "GATEWAY_LOG_LEVEL": "info",
                    "SKILLABLE_BASE_URL": "http://127.0.0.1:\(try #require(skyPrepClient.port))/sandbox/skillable/api/v3",
                    "SKILLABLE_API_KEY": skillable.apiKey,
                    "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                ]
                let a = try GatewayProcess(port: portA, environment: environment, folder: folder, name: "a")
                let b = try GatewayProcess(port: portB, environment: environment, folder: folder, name: "b")
                let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
                let instances = TwoInstances(
                    a: a, b: b, publicURL: publicURL, platform: platform, http: http, skyPrep: skyPrep, skillable: skillable, store: store,
                    environment: environment, folder: folder, registrationID: registration.id)
                do {
                    for instance in [a, b] {
                        let ready = await eventually(timeout: .seconds(30)) {
                            try await instances.request(.GET, instances.url(instance, "/readyz")).status == 200
                        }
                        guard ready else { throw EndToEnd.LoginFailed(status: 0, body: "instance did not start:\n" + instance.log) }
                    }
                    try await body(instances)
                } catch {
                    a.stop()
                    b.stop()
                    try? await http.shutdown()
                    try? await store.close()
                    platformTask.cancel()
                    throw error
                }
                a.stop()
                b.stop()
                try await http.shutdown()
                try await store.close()
                platformTask.cancel()
            }
        }
    }
}

/// Several instances behind a load balancer share one PostgreSQL database (real `lti-gateway serve` processes).
@Suite(
    "Two gateway processes on one PostgreSQL database", .serialized,
    .enabled(if: TemporaryPostgresDatabase.isAvailable, "GATEWAY_TEST_POSTGRES_URL is not set"))
struct TwoInstanceTests {
    @Test("a login on one instance and the launch on the other succeed")
    func loginHereLaunchThere() async throws {
        try await withTwoInstances { two in
            let login = try await two.login(two.a)
            let response = try await two.launch(two.b, token: two.idToken(login), login: login)
            #expect(response.status == 303, "\(response.body)")
            #expect(response.location?.contains("/sandbox/skillable/lab/") == true)
            #expect(try await two.store.recentLaunches(limit: 1).first?.outcome == "launched")
        }
    }

    @Test("one learner's two clicks on one lab, reaching both instances at once, start one lab that both enter")
    func oneLabAcrossInstances() async throws {
        try await withTwoInstances { two in
            // Skillable takes its time, so the two starts overlap.
            await two.skillable.state.setLatency(.milliseconds(400))
            for round in 0..<3 {
                let learner = "double-clicker-\(round)"
                let (loginA, loginB) = (try await two.login(two.a), try await two.login(two.b))
                async let first = two.launch(two.a, token: two.idToken(loginA, subject: learner), login: loginA)
                async let second = two.launch(two.b, token: two.idToken(loginB, subject: learner), login: loginB)
                let (answerA, answerB) = try await (first, second)
                #expect(answerA.status == 303 && answerB.status == 303, "round \(round): \(answerA.status) \(answerB.status)")
                let labs = await two.skillable.state.instances.values.filter { $0.userID.hasPrefix("lti-") && $0.state == .running }
                let started = labs.filter { lab in [answerA, answerB].contains { $0.location?.hasSuffix("/lab/\(lab.id)") == true } }
                #expect(started.count == 1, "round \(round): \(labs.count) labs for one learner's double click")
                #expect(answerA.location == answerB.location || started.count == 1)
            }
            let launches = await two.skillable.state.calls["launch"] ?? 0
            #expect(launches == 3, "Skillable Launch called \(launches) times for 3 double clicks")
        }
    }

    @Test("the same id_token posted to both instances at once is accepted at most once")
    func replayAcrossInstances() async throws {
        try await withTwoInstances { two in
            for round in 0..<5 {
                let login = try await two.login(round.isMultiple(of: 2) ? two.a : two.b)
                let token = two.idToken(login)
                async let first = two.launch(two.a, token: token, login: login)
                async let second = two.launch(two.b, token: token, login: login)
                let statuses = try await [first.status, second.status]
                #expect(statuses.filter { $0 == 303 }.count == 1, "round \(round): \(statuses)")
                #expect(statuses.filter { (400..<500).contains($0) }.count == 1, "round \(round): \(statuses)")
            }
        }
    }

    @Test("a key rotation done through one instance's database is served by the other within a minute")
    func rotationAcrossInstances() async throws {
        try await withTwoInstances { two in
            let before = try await two.publishedKids(two.b)
            #expect(before.count == 2)
            #expect(try await two.publishedKids(two.a) == before)
            let status = try GatewayProcess.command(["keys", "rotate", "--force"], environment: two.environment, folder: two.folder)
            #expect(status == 0)
            let ring = try await PostgresSigningKeyStore(
                store: two.store, encryption: try #require(KeyEncryptionKey(base64: EndToEnd.testKeyEncryptionKey))
            )
            .loadKeyRing()
            let expected = Set(ring.keys.map(\.kid))
            #expect(expected.count == 3 && expected.isSuperset(of: before))
            let seenByB = await eventually(timeout: .seconds(60)) { try await two.publishedKids(two.b) == expected }
            let seenByA = await eventually(timeout: .seconds(60)) { try await two.publishedKids(two.a) == expected }
            #expect(seenByB && seenByA)
        }
    }

    @Test("queued provisioning jobs are each done once with both instances' workers running")
    func jobsDoneOnce() async throws {
        try await withTwoInstances { two in
            two.skyPrep.setOutage(.serverError)
            let learners = 8
            for i in 0..<learners {
                let instance = i.isMultiple(of: 2) ? two.a : two.b
                let login = try await two.login(instance)
                let response = try await two.launch(
                    instance, token: two.idToken(login, subject: "learner-\(i)", email: "l\(i)@example.edu"), login: login)
                #expect(response.status == 303)
            }
            let queued = await eventually { try await two.store.queuedJobs(limit: 50).count == learners }
            #expect(queued)
            two.skyPrep.setOutage(nil)
            let drained = await eventually(timeout: .seconds(30)) { try await two.store.queuedJobs(limit: 50).isEmpty }
            #expect(drained)
            // One user per learner, and no job ran on two workers at once: a second create_user for the same
            // learner would have been refused (email taken) and sent that worker to get_users.
            #expect(Set(two.skyPrep.users.map(\.email)).count == learners && two.skyPrep.users.count == learners)
            #expect(two.skyPrep.calls["get_users"] == nil, "calls: \(two.skyPrep.calls)")
            let anchor = try #require(try await two.store.registration(id: two.registrationID)).jwksURL
            for i in 0..<learners {
                let identity = try #require(try await two.store.identity(issuer: two.platform.issuer, trustAnchor: anchor, subject: "learner-\(i)"))
                #expect(try await two.store.skyPrepAccount(learnerID: identity.id)?.email == "l\(i)@example.edu")
            }
            // Both instances' workers took part.
            #expect(two.a.log.contains("SkyPrep provisioning") && two.b.log.contains("SkyPrep provisioning"))
        }
    }
}
