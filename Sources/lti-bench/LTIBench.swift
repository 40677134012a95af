import ArgumentParser
import Crypto
import CryptoExtras
import Foundation
import GatewaySupport
import LTICore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The load generator: plays many LMS browsers against a running LTI tool over loopback.
///
/// Phase 1 performs the OIDC logins (collecting state, nonce and cookies), phase 2 signs the id_tokens
/// (not timed: signing is the platform's cost), phase 3 posts the launches at a fixed concurrency.
@main
struct LTIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lti-bench",
        abstract: "Load generator for LTI 1.3 tools: login → launch flows, forged launches, JWKS and static requests.",
        subcommands: [Run.self, Keygen.self], defaultSubcommand: Run.self)
}

/// `lti-bench keygen`: the bench platform's RSA key (reused across runs) and its JWKS document.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create (or reuse) the bench platform's key and write its JWKS.")
    @Option(help: "PEM file of the platform's private key (created when missing).") var key = "bench-results/platform-key.pem"
    @Option(help: "Where to write the platform's JWKS.") var jwks = "bench-results/platform-jwks.json"

    func run() throws {
        let platform = try BenchPlatform(keyPath: key)
        try Data(platform.jwksJSON.utf8).write(to: URL(fileURLWithPath: jwks))
        print(jwks)
    }
}

/// The simulated LMS platform: its key, issuer and client id; signs id_tokens.
struct BenchPlatform: Sendable {
    let key: _RSA.Signing.PrivateKey
    let kid = "bench-platform-key"

    init(keyPath: String) throws {
        if let pem = try? String(contentsOfFile: keyPath, encoding: .utf8) {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } else {
            key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            try FileManager.default.createDirectory(atPath: (keyPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard
                FileManager.default.createFile(
                    atPath: keyPath, contents: Data(key.pemRepresentation.utf8),
                    attributes: [.posixPermissions: 0o600])
            else {
                throw ValidationError("cannot write \(keyPath)")
            }
        }
    }

    var jwksJSON: String {
        let p = try! key.publicKey.getKeyPrimitives()
        return
            #"{"keys":[{"kty":"RSA","kid":"\#(kid)","use":"sig","alg":"RS256","n":"\#(Base64URL.encode(p.modulus))","e":"\#(Base64URL.encode(p.publicExponent))"}]}"#
    }

    func sign(_ claims: [String: Any], with other: _RSA.Signing.PrivateKey? = nil) throws -> String {
        let header = try JSONSerialization.data(withJSONObject: ["alg": "RS256", "typ": "JWT", "kid": kid], options: [.sortedKeys])
        let payload = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try (other ?? key).signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }
}

enum Scenario: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Full login + launch flows (launches expected to end in 303).
    case launch
    /// Launches with a valid state but a token signed by a foreign key (expected refused with 4xx).
    case forged
    /// GET of the tool's JWKS.
    case jwks
    /// GET of a trivial route of the same server (the baseline for `jwks`).
    case `static`
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one scenario against a tool and report throughput and latency.")

    @Option(help: "Base URL of the tool.") var target = "http://127.0.0.1:8080"
    @Option(
        name: .customLong("public-url"),
        help: "The tool's public URL (target_link_uri), when requests go to one instance behind it; default --target.")
    var publicURL: String?
    @Option(help: "launch, forged, jwks or static.") var scenario: Scenario = .launch
    @Option(help: "Number of flows or requests (per round with --duration).") var count = 1000
    @Option(help: "Repeat rounds of --count until this many seconds have passed (a soak run).") var duration: Double?
    @Option(help: "Requests in flight at once.") var concurrency = 32
    @Option(help: "Platform issuer registered with the tool.") var issuer = "https://bench-lms.example"
    @Option(name: .customLong("client-id"), help: "Client id registered with the tool.") var clientID = "bench-client"
    @Option(help: "Deployment id registered with the tool.") var deployment = "bench-deployment"
    @Option(help: "PEM key of the bench platform (see keygen).") var key = "bench-results/platform-key.pem"
    @Option(name: .customLong("login-path")) var loginPath = "/lti/login"
    @Option(name: .customLong("launch-path")) var launchPath = "/lti/launch"
    @Option(name: .customLong("jwks-path")) var jwksPath = "/.well-known/jwks.json"
    @Option(name: .customLong("static-path")) var staticPath = "/healthz"
    @Option(help: "Lab id sent in the custom claim labid.") var lab = "1001"
    @Flag(help: "Give each learner an email (as most LMSs share it): the gateway then provisions every new learner in SkyPrep.")
    var email = false
    @Option(help: "PID of the server, to report the CPU time and peak RSS of it and its child processes (e.g. gunicorn workers).") var pid: Int32?
    @Option(help: "A name for this run in the report.") var label: String?
    @Option(help: "Event-loop threads of the load generator.") var threads = 1
    @Option(help: "Append the result as a JSON line to this file.") var json: String?

    func run() async throws {
        guard count > 0, concurrency > 0, concurrency <= 1024, threads > 0 else {
            throw ValidationError("count > 0, 1 ≤ concurrency ≤ 1024 and threads > 0")
        }
        guard let url = URLComponents(string: target), url.scheme == "http", let host = url.host, url.path.isEmpty || url.path == "/" else {
            throw ValidationError("--target must be http://HOST[:PORT] (plain HTTP over loopback)")
        }
        let server = Server(host: host, port: url.port ?? 80)
        let platform = try BenchPlatform(keyPath: key)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let rss = RSSSampler(pid: pid)
        let sampling = Task { await rss.run() }
        var result: BenchResult
        do {
            result = try await execute(server: server, group: group, platform: platform)
            if let duration {
                // Soak: further rounds until the time is up, bounded by the duration; memory is sampled throughout.
                let deadline = ContinuousClock.now + .milliseconds(Int64(duration * 1000))
                var rounds = 1
                var errors = result.errors
                let firstRoundRSS = await rss.currentMiB
                while ContinuousClock.now < deadline {
                    let round = try await execute(server: server, group: group, platform: platform)
                    errors += round.errors
                    rounds += 1
                }
                result.label += " (soak \(rounds) rounds, \(Int(duration)) s)"
                result.errors = errors
                result.rssAfterFirstRoundMiB = firstRoundRSS
            }
        } catch {
            sampling.cancel()
            try? await group.shutdownGracefully()
            throw error
        }
        sampling.cancel()
        try await group.shutdownGracefully()
        var final = result
        final.peakRSSMiB = await rss.peakMiB
        final.rssAtEndMiB = await rss.currentMiB
        print(final.table)
        if let json {
            let line = String(decoding: try JSONEncoder().encode(final), as: UTF8.self) + "\n"
            if let handle = FileHandle(forWritingAtPath: json) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                try handle.close()
            } else {
                try Data(line.utf8).write(to: URL(fileURLWithPath: json))
            }
        }
    }

    /// The tool under test.
    struct Server {
        var host: String
        var port: Int

        func plan(
            count: Int, request: @escaping @Sendable (Int) -> BenchRequest,
            check: @escaping @Sendable (Int, BenchResponse) -> Bool
        ) -> LoadPlan {
            LoadPlan(host: host, port: port, count: count, request: request, check: check)
        }
    }

    func execute(server: Server, group: any EventLoopGroup, platform: BenchPlatform) async throws -> BenchResult {
        let name = label ?? "\(scenario.rawValue) \(target)"
        switch scenario {
        case .jwks, .static:
            let path = scenario == .jwks ? jwksPath : staticPath
            let plan = server.plan(count: count, request: { _ in BenchRequest(uri: path) }, check: { _, response in response.status == 200 })
            let timing = try await Load.run(plan, concurrency: concurrency, group: group, serverPID: pid)
            return BenchResult(label: name, scenario: scenario.rawValue, count: count, concurrency: concurrency, phase: timing)
        case .launch, .forged:
            // Phase 1: logins.
            let logins = LoginBox(count: count)
            let loginURI =
                loginPath + "?"
                + FormEncoding.encode([
                    ("iss", issuer), ("login_hint", "bench"), ("target_link_uri", (publicURL ?? target) + launchPath),
                    ("client_id", clientID), ("lti_deployment_id", deployment),
                ])
            let loginPlan = server.plan(
                count: count, request: { _ in BenchRequest(uri: loginURI) },
                check: { i, response in
                    guard let login = BenchLogin(response) else { return false }
                    logins.set(i, login)
                    return true
                })
            let loginTiming = try await Load.run(loginPlan, concurrency: concurrency, group: group, serverPID: pid)
            // Phase 2: signing, not timed.
            let forger = scenario == .forged ? try _RSA.Signing.PrivateKey(keySize: .bits2048) : nil
            let now = Int(Date().timeIntervalSince1970)
            var posts: [BenchRequest] = []
            posts.reserveCapacity(count)
            for i in 0..<count {
                guard let login = logins.get(i) else { continue }
                let learner = "bench-learner-\(UUID().uuidString)"
                var claims: [String: Any] = [
                    "iss": issuer, "aud": clientID, "sub": learner, "nonce": login.nonce,
                    "iat": now, "exp": now + 600, "given_name": "Bench", "family_name": "Learner",
                    LTIClaim.version: "1.3.0", LTIClaim.messageType: "LtiResourceLinkRequest",
                    LTIClaim.deploymentID: deployment, LTIClaim.targetLinkURI: (publicURL ?? target) + launchPath,
                    LTIClaim.resourceLink: ["id": "bench-link"], LTIClaim.roles: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                    LTIClaim.custom: ["labid": lab],
                ]
                if email { claims["email"] = "\(learner)@bench.example" }
                let token = try platform.sign(claims, with: forger)
                posts.append(
                    BenchRequest(
                        method: .POST, uri: launchPath,
                        headers: ["Content-Type": "application/x-www-form-urlencoded", "Cookie": login.cookies],
                        body: ByteBuffer(string: FormEncoding.encode([("id_token", token), ("state", login.state)]))))
            }
            let prepared = posts
            // Phase 3: launches, timed.
            let expectRefusal = scenario == .forged
            let launchPlan = server.plan(
                count: prepared.count, request: { prepared[$0] },
                check: { _, response in
                    expectRefusal ? (400..<500).contains(response.status) : (response.status == 302 || response.status == 303)
                })
            let launchTiming = try await Load.run(launchPlan, concurrency: concurrency, group: group, serverPID: pid)
            var result = BenchResult(label: name, scenario: scenario.rawValue, count: count, concurrency: concurrency, phase: launchTiming)
            result.loginSeconds = loginTiming.seconds
            result.loginErrors = loginTiming.errors + (count - prepared.count)
            result.flowsPerSecond = Double(prepared.count - launchTiming.errors) / (loginTiming.seconds + launchTiming.seconds)
            if !expectRefusal { result.addCPU(of: [loginTiming, launchTiming], per: count, unit: "flow") }
            return result
        }
    }
}

struct BenchLogin: Sendable {
    var state: String
    var nonce: String
    var cookies: String

    /// Reads the login's redirect: state and nonce from its Location, the cookies it set.
    init?(_ response: BenchResponse) {
        guard (300..<400).contains(response.status), let location = response.headers.first(name: "Location"),
            let items = URLComponents(string: location)?.queryItems,
            let state = items.first(where: { $0.name == "state" })?.value, let nonce = items.first(where: { $0.name == "nonce" })?.value
        else { return nil }
        self.state = state
        self.nonce = nonce
        cookies = response.headers["Set-Cookie"].map { String($0.split(separator: ";")[0]) }.joined(separator: "; ")
    }
}

/// Logins collected in phase 1, by flow index.
final class LoginBox: Sendable {
    private let storage: Mutex<[BenchLogin?]>
    init(count: Int) { storage = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ login: BenchLogin) { storage.withLock { $0[i] = login } }
    func get(_ i: Int) -> BenchLogin? { storage.withLock { $0[i] } }
}
