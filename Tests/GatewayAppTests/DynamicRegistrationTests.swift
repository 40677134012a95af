import AsyncHTTPClient
import CryptoExtras
import Foundation
import GatewayStorage
import GatewaySupport
import Hummingbird
import LTICore
import LTITestSupport
import Logging
import NIOCore
import NIOHTTP1
import PlatformServices
import ServiceLifecycle
import Synchronization
import Testing

@testable import GatewayApp

/// A platform that registers tools dynamically, on 127.0.0.1: like Canvas (configuration at
/// `/.well-known/openid-configuration`, the registration token required on the GET and the POST) or like Moodle
/// (configuration at `/mod/lti/openid-configuration.php`, `messages_supported` as strings, a JWT as token).
final class RegisteringPlatform: Sendable {
    enum Kind: Sendable { case canvas, moodle }
    let kind: Kind
    let token: String
    let key = TestKeys.platformB
    let port = Mutex<Int?>(nil)
    /// Holds `GET /slow` unanswered until ``run(_:)`` ends: a platform that never answers.
    let unanswered = AsyncStream<Void>.makeStream()
    /// The registrations the tool posted (JSON).
    let registrations = Mutex<[Data]>([])
    let configurationGets = Mutex<[String?]>([])
    /// When set, the registration endpoint answers 400 with this description.
    let refusal = Mutex<String?>(nil)
    /// When set, the configuration names this issuer.
    let issuerOverride = Mutex<String?>(nil)
    /// When set, the configuration names this registration endpoint.
    let registrationEndpointOverride = Mutex<String?>(nil)
    /// Path of the key set the configuration names (a platform that moved its keys registers again).
    let jwksPath = Mutex("/jwks")
    let clientID: String
    let deploymentIDs = Mutex<[String]>([])
    var deploymentID: String { deploymentIDs.withLock { $0.last ?? "" } }

    init(_ kind: Kind) {
        self.kind = kind
        token = kind == .canvas ? "canvas-registration-token" : "eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6InJlZyJ9.c2lnbmF0dXJl"
        clientID = kind == .canvas ? "10000000000042" : "moodle-client-7"
        deploymentIDs.withLock { $0 = [kind == .canvas ? "42:8865aa05b4b79b64a91a86042e43af5ea8ae79eb" : "7"] }
    }

    var base: String { "http://127.0.0.1:\(port.withLock { $0 } ?? 0)" }
    var configurationURL: String { base + (kind == .canvas ? "/.well-known/openid-configuration" : "/mod/lti/openid-configuration.php") }
    /// The LMS as the gateway's tests drive it, once registered.
    var testPlatform: TestPlatform { TestPlatform(issuer: base, clientID: clientID, deploymentID: deploymentID, kid: "reg-key", privateKey: key) }

    func application() -> some ApplicationProtocol {
        let router = Router()
        let configurationPath = kind == .canvas ? "/.well-known/openid-configuration" : "/mod/lti/openid-configuration.php"
        router.get(RouterPath(configurationPath)) { request, _ -> Response in
            let authorization = request.headers[.authorization]
            self.configurationGets.withLock { $0.append(authorization) }
            if self.kind == .canvas, authorization != "Bearer \(self.token)" { return Response(status: .unauthorized) }
            let messages: [Any] =
                self.kind == .canvas
                ? [["type": "LtiResourceLinkRequest"], ["type": "LtiDeepLinkingRequest", "placements": ["link_selection"]]]
                : ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]
            let document: [String: Any] = [
                "issuer": self.issuerOverride.withLock { $0 } ?? self.base, "authorization_endpoint": self.base + "/auth",
                "token_endpoint": self.base + "/token", "jwks_uri": self.base + self.jwksPath.withLock { $0 },
                "registration_endpoint": self.registrationEndpointOverride.withLock { $0 } ?? self.base + "/register",
                "https://purl.imsglobal.org/spec/lti-platform-configuration": [
                    "product_family_code": self.kind == .canvas ? "canvas" : "moodle", "messages_supported": messages,
                ],
            ]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: document))))
        }
        router.post("/register") { request, _ -> Response in
            guard request.headers[.authorization] == "Bearer \(self.token)" else { return Response(status: .unauthorized) }
            let body = try await request.body.collect(upTo: 1 << 20)
            self.registrations.withLock { $0.append(Data(body.readableBytesView)) }
            if let refusal = self.refusal.withLock({ $0 }) {
                return Response(
                    status: .badRequest, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"error":"invalid_client_metadata","error_description":"\#(refusal)"}"#)))
            }
            let answer: [String: Any] = [
                "client_id": self.clientID, "scope": AGSScope.score,
                "https://purl.imsglobal.org/spec/lti-tool-configuration": ["deployment_id": self.deploymentID],
            ]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: answer))))
        }
        router.get("/:keys") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: self.testPlatform.jwksJSON)))
        }
        router.get("/slow") { _, _ -> Response in
            for await _ in self.unanswered.stream {}
            return Response(status: .ok)
        }
        router.get("/huge") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{\"x\":\"" + String(repeating: "y", count: 200_000) + "\"}")))
        }
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.port.withLock { $0 = channel.localAddress?.port } })
    }

    func run<T>(_ body: () async throws -> T) async throws -> T {
        try await runBeside(application(), listening: { self.port.withLock { $0 } != nil }) {
            defer { unanswered.continuation.finish() }  // lets a request still held at /slow end before the server stops
            return try await body()
        }
    }
}

@Suite("Dynamic registration: an LMS administrator installs the gateway from one invitation link", .serialized)
struct DynamicRegistrationTests {
    /// Opens the invitation link as the LMS does: with `openid_configuration` and `registration_token` appended.
    static func open(_ e2e: EndToEnd, link: String, _ platform: RegisteringPlatform, token: String? = nil) async throws -> BrowserResponse {
        let query = FormEncoding.encode([("openid_configuration", platform.configurationURL), ("registration_token", token ?? platform.token)])
        return try await e2e.request(.GET, link + "&" + query)
    }

    static func invite(_ e2e: EndToEnd, expiresIn: TimeInterval = 3600) async throws -> String {
        try await e2e.gateway.administration.createInvite(expiresIn: expiresIn, note: "test", baseURL: e2e.baseURL, by: .commandLine).link
    }

    @Test(
        "Canvas and Moodle: registered from the link, then a launch and a deep-linking round trip through the new registration",
        arguments: [RegisteringPlatform.Kind.canvas, RegisteringPlatform.Kind.moodle])
    func registerThenLaunch(kind: RegisteringPlatform.Kind) async throws {
        try await withEndToEnd { e2e in
            let platform = RegisteringPlatform(kind)
            try await platform.run {
                let page = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(page.status == 200, "\(page.body)")
                #expect(page.body.contains("org.imsglobal.lti.close") && page.body.contains(platform.clientID))
                #expect(page.headers.first(name: "Content-Security-Policy")?.contains("frame-ancestors *") == true, "Canvas shows it in a frame")
                let gets = platform.configurationGets.withLock { $0 }
                #expect(gets.last == .some("Bearer \(platform.token)"), "the registration token goes with the configuration GET too")

                let postedData = try #require(platform.registrations.withLock { $0.first })
                let posted = try #require(try JSONSerialization.jsonObject(with: postedData) as? [String: Any])
                #expect(posted["initiate_login_uri"] as? String == e2e.baseURL + "/lti/login")
                #expect(posted["redirect_uris"] as? [String] == [e2e.baseURL + "/lti/launch", e2e.baseURL + "/lti/deep-link"])
                #expect(posted["jwks_uri"] as? String == e2e.baseURL + "/.well-known/jwks.json")
                #expect(posted["token_endpoint_auth_method"] as? String == "private_key_jwt")
                let tool = try #require(posted["https://purl.imsglobal.org/spec/lti-tool-configuration"] as? [String: Any])
                let types = (tool["messages"] as? [[String: Any]])?.compactMap { $0["type"] as? String }
                #expect(types == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"])
                #expect(tool["https://canvas.instructure.com/lti/privacy_level"] as? String == "public")

                let stored = try #require(try await e2e.gateway.store.allRegistrations().first { $0.issuer == platform.base })
                #expect(stored.clientID == platform.clientID && stored.deploymentIDs == [platform.deploymentID] && stored.origin == "dynamic")
                #expect(stored.jwksURL == platform.base + "/jwks" && stored.tokenURL == platform.base + "/token")
                #expect(stored.grantedScopes == [AGSScope.score], "the scopes the platform granted, not those asked for")

                // The new registration launches learners and opens the picker.
                let launched = try await e2e.fullLaunch(platform.testPlatform)
                #expect(launched.status == 303, "\(launched.body)")
                let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings(), platform: platform.testPlatform)
                #expect(picker.status == 200, "\(picker.body)")
                let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
                let returned = try await e2e.submitPicker(session: session, labs: ["1001"])
                #expect(Page.formAction(returned.body) == "https://lms-a.example.edu/deep_links/return?ctx=9&x=1")

                let audit = try await e2e.gateway.administration.auditEvents(after: nil, limit: 100)
                let registered = try #require(audit.first { $0.action == "platform.register" })
                #expect(
                    registered.target.hasPrefix(stored.id) && registered.target.contains("(test)"),
                    "the invitation and its note: \(registered.target)")
                #expect(audit.contains { $0.action == "registration_invite.create" })
            }
        }
    }

    @Test("no invitation, a used or expired one, another host's issuer, or the platform's refusal: a page, and nothing stored")
    func refusals() async throws {
        try await withEndToEnd { e2e in
            let platform = RegisteringPlatform(.canvas)
            try await platform.run {
                let before = try await e2e.gateway.store.allRegistrations()
                let query = FormEncoding.encode([("openid_configuration", platform.configurationURL), ("registration_token", platform.token)])
                let none = try await e2e.request(.GET, "/lti/register?" + query)
                #expect(none.status == 403 && none.body.contains("not valid"))
                let forged = try await e2e.request(.GET, "/lti/register?invite=made-up&" + query)
                #expect(forged.status == 403)
                #expect(platform.configurationGets.withLock { $0.isEmpty }, "nothing is fetched without a valid invitation")

                let expired = try await Self.invite(e2e, expiresIn: 60)
                e2e.clock.advance(61)
                #expect(try await Self.open(e2e, link: expired, platform).body.contains("expired"))

                platform.issuerOverride.withLock { $0 = "https://lms.elsewhere.example" }
                let elsewhere = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(elsewhere.status == 502 && elsewhere.body.contains("not on the host"), "\(elsewhere.body)")
                platform.issuerOverride.withLock { $0 = nil }

                platform.refusal.withLock { $0 = "redirect_uris must be on the tool's domain" }
                let refused = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(refused.status == 502 && refused.body.contains("redirect_uris must be on the tool&#39;s domain"), "\(refused.body)")
                #expect(refused.headers.first(name: "X-Request-Id").map { refused.body.contains($0) } == true, "the reference id is on the page")
                platform.refusal.withLock { $0 = nil }
                #expect(try await e2e.gateway.store.allRegistrations() == before, "a refused registration stored something")

                // The registration is posted only to the origin that served the configuration.
                platform.registrationEndpointOverride.withLock { $0 = "http://localhost:1/register" }
                let elsewhereEndpoint = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(elsewhereEndpoint.status == 502 && elsewhereEndpoint.body.contains("registration endpoint"), "\(elsewhereEndpoint.body)")
                platform.registrationEndpointOverride.withLock { $0 = nil }

                // A link that keeps failing stops working after ten attempts.
                platform.refusal.withLock { $0 = "no" }
                let probed = try await Self.invite(e2e)
                for _ in 0..<10 { #expect(try await Self.open(e2e, link: probed, platform).status == 502) }
                #expect(try await Self.open(e2e, link: probed, platform).body.contains("tried too often"))
                platform.refusal.withLock { $0 = nil }

                let link = try await Self.invite(e2e)
                #expect(try await Self.open(e2e, link: link, platform).status == 200)
                let used = try await Self.open(e2e, link: link, platform)
                #expect(used.status == 403 && used.body.contains("used already"))
                #expect(try await e2e.gateway.store.allRegistrations().count == before.count + 1)
            }
        }
    }

    @Test("registering again updates the platform in place; with approval required, its launches wait for platforms approve")
    func reRegistrationAndApproval() async throws {
        try await withEndToEnd(configure: { $0.lti.registrationApproval = true }) { e2e in
            let platform = RegisteringPlatform(.moodle)
            try await platform.run {
                let page = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(page.status == 200 && page.body.contains("approves"))
                let stored = try #require(try await e2e.gateway.store.allRegistrations().first { $0.issuer == platform.base })
                #expect(!stored.approved)
                await #expect(throws: EndToEnd.LoginFailed.self, "a registration waiting for approval launched") {
                    _ = try await e2e.fullLaunch(platform.testPlatform)
                }
                _ = try await e2e.gateway.administration.approvePlatform(id: stored.id, by: .commandLine)
                #expect(try await e2e.fullLaunch(platform.testPlatform).status == 303)

                // The platform moved its keys and was installed again: updated in place, and waiting for approval again.
                platform.jwksPath.withLock { $0 = "/keys-2" }
                platform.deploymentIDs.withLock { $0.append("8") }
                let again = try await Self.open(e2e, link: try await Self.invite(e2e), platform)
                #expect(again.status == 200 && again.body.contains("Registration updated"))
                let all = try await e2e.gateway.store.allRegistrations().filter { $0.issuer == platform.base }
                #expect(all.count == 1 && all.first?.id == stored.id, "duplicated")
                #expect(all.first?.jwksURL == platform.base + "/keys-2" && all.first?.deploymentIDs == ["7", "8"])
                #expect(all.first?.approved == false, "changed endpoints launched without a new approval")
                _ = try await e2e.gateway.administration.approvePlatform(id: stored.id, by: .commandLine)
                #expect(try await e2e.fullLaunch(platform.testPlatform).status == 303)

                // A platform an operator registered by hand is not changed by a link.
                let canvas = RegisteringPlatform(.canvas)
                try await canvas.run {
                    _ = try await e2e.gateway.administration.addPlatform(
                        issuer: canvas.base, clientID: canvas.clientID, authURL: canvas.base + "/auth", tokenURL: canvas.base + "/token",
                        jwksURL: canvas.base + "/jwks", deployments: ["by-hand"], by: .commandLine)
                    let refused = try await Self.open(e2e, link: try await Self.invite(e2e), canvas)
                    #expect(refused.status == 409, "\(refused.body)")
                    let kept = try await e2e.gateway.store.allRegistrations().first { $0.issuer == canvas.base }
                    #expect(kept?.deploymentIDs == ["by-hand"] && kept?.origin == "cli")
                }
            }
        }
    }

    @Test("the configuration fetch is capped in size and time, and https only off this machine")
    func fetchLimits() async throws {
        let platform = RegisteringPlatform(.canvas)
        try await platform.run {
            let client = RegistrationClient(http: HTTPClient.shared, allowLocal: true, timeout: .milliseconds(300))
            // The platform never answers: only the client's own deadline ends the call (the test's bound catches a missing one).
            await #expect(throws: RegistrationError.self) {
                try await withDeadline(.seconds(30)) { try await client.configuration(at: platform.base + "/slow", token: nil) }
            }
            do {
                _ = try await client.configuration(at: platform.base + "/huge", token: nil)
                Issue.record("a 200 KB configuration was read")
            } catch let error as RegistrationError {
                #expect(error.message.contains("larger"))
            }
            await #expect(throws: RegistrationError.self) {
                try await client.configuration(at: "http://lms.example.edu/.well-known/openid-configuration", token: nil)
            }
            // A gateway on a public address calls no platform on this machine or a private network.
            let deployed = RegistrationClient(http: HTTPClient.shared, allowLocal: false)
            for url in [
                platform.configurationURL, "https://10.1.2.3/c", "https://192.168.0.9/c", "https://169.254.169.254/latest", "https://[fd00::1]/c",
            ] {
                await #expect(throws: RegistrationError.self, "\(url)") { try await deployed.configuration(at: url, token: nil) }
            }
            #expect(platform.configurationGets.withLock { $0.isEmpty }, "a refused URL was fetched")
        }
    }
}
