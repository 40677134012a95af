import Foundation
import GatewayApp
import GatewayStorage
import LTICore
import LTITestSupport
import NIOHTTP1
import Testing

/// What a forged launch posts.
struct ForgedPost {
    var idToken: String?
    var state: String?
    var cookie: String?
    var bodyPadding = 0
}

/// One forged, replayed or malformed launch and the refusal it must get.
struct Forgery: Sendable, CustomStringConvertible {
    let description: String
    let code: String
    let status: Int
    let build: @Sendable (EndToEnd) async throws -> ForgedPost

    /// A login through platform A, then a token built from its claims by `token`.
    static func token(
        _ name: String, _ code: String, _ status: Int,
        _ token: @escaping @Sendable (EndToEnd, LoginResult) -> String?
    ) -> Forgery {
        Forgery(description: name, code: code, status: status) { e2e in
            let login = try await e2e.login(e2e.platformA)
            return ForgedPost(idToken: token(e2e, login), state: login.state, cookie: login.cookie)
        }
    }

    /// A login through platform A, then its valid claims changed by `change` and signed by platform A.
    static func claims(
        _ name: String, _ code: String, _ status: Int = 400,
        _ change: @escaping @Sendable (inout [String: Any]) -> Void
    ) -> Forgery {
        token(name, code, status) { e2e, login in e2e.platformA.sign(e2e.claims(e2e.platformA, login, change)) }
    }
}

let forgeries: [Forgery] = [
    .token("alg none", "algorithm_not_allowed", 401) { e2e, login in e2e.platformA.unsignedToken(e2e.claims(e2e.platformA, login)) },
    .token("HS256 signed with the platform's public key as secret", "algorithm_not_allowed", 401) { e2e, login in
        e2e.platformA.hs256WithPublicKey(e2e.claims(e2e.platformA, login))
    },
    .token("no kid in the header", "kid_missing", 400) { e2e, login in
        TestPlatform.signRS256(header: ["alg": "RS256"], claims: e2e.claims(e2e.platformA, login), key: TestKeys.platformA)
    },
    .token("a crit header naming an extension (RFC 7515 §4.1.11)", "crit_unsupported", 401) { e2e, login in
        e2e.platformA.sign(e2e.claims(e2e.platformA, login), extraHeader: ["crit": ["exp"], "exp": 1])
    },
    .token("a kid the platform does not publish", "kid_unknown", 401) { e2e, login in
        e2e.platformA.sign(e2e.claims(e2e.platformA, login), kid: "unknown-kid")
    },
    .token("jku header pointing at the attacker's key set", "kid_unknown", 401) { e2e, login in
        e2e.platformA.sign(
            e2e.claims(e2e.platformA, login), kid: "attacker", key: TestKeys.attacker,
            extraHeader: ["jku": "https://attacker.example/jwks.json"])
    },
    .token("signed by registered platform B, claiming platform A's issuer", "kid_unknown", 401) { e2e, login in
        e2e.platformB.sign(e2e.claims(e2e.platformA, login))
    },
    Forgery(description: "platform B's login and key, with platform A's issuer", code: "issuer_mismatch", status: 401) { e2e in
        let login = try await e2e.login(e2e.platformB)
        var claims = e2e.claims(e2e.platformB, login)
        claims["iss"] = e2e.platformA.issuer
        return ForgedPost(idToken: e2e.platformB.sign(claims), state: login.state, cookie: login.cookie)
    },
    .token("signed by an attacker's key under the platform's kid", "signature_invalid", 401) { e2e, login in
        e2e.platformA.sign(e2e.claims(e2e.platformA, login), key: TestKeys.attacker)
    },
    .token("payload changed after signing", "signature_invalid", 401) { e2e, login in
        let parts = e2e.platformA.sign(e2e.claims(e2e.platformA, login)).split(separator: ".").map(String.init)
        let changed = e2e.claims(e2e.platformA, login) { $0["sub"] = "admin" }
        return parts[0] + "." + TestPlatform.encodeSegment(changed) + "." + parts[2]
    },
    .claims("expired", "token_expired") { $0["exp"] = ($0["iat"] as! Int) - 100 },
    .claims("issued in the future", "iat_in_future") {
        $0["iat"] = ($0["iat"] as! Int) + 600; $0["exp"] = ($0["iat"] as! Int) + 300
    },
    .claims("not valid before a future time", "nbf_in_future") { $0["nbf"] = ($0["iat"] as! Int) + 600 },
    .claims("no expiry", "exp_missing") { $0["exp"] = nil },
    .claims("addressed to another client", "audience_mismatch", 401) { $0["aud"] = "someone-else" },
    .claims("an extra audience without azp", "azp_missing", 401) { $0["aud"] = ["client-a", "other-client"] },
    .claims("azp naming another client", "azp_mismatch", 401) { $0["azp"] = "other-client" },
    .claims("no nonce", "nonce_missing") { $0["nonce"] = nil },
    .claims("a nonce not issued with this state", "nonce_mismatch", 401) { $0["nonce"] = "made-up-nonce" },
    Forgery(description: "a valid launch posted again (replay)", code: "state_unknown", status: 401) { e2e in
        let login = try await e2e.login(e2e.platformA)
        let token = e2e.platformA.sign(e2e.claims(e2e.platformA, login) { $0["sub"] = "replay-victim" })
        let first = try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie)
        guard first.status == 303 else { throw Unexpected(text: "original launch failed: \(first.status)") }
        return ForgedPost(idToken: token, state: login.state, cookie: login.cookie)
    },
    Forgery(description: "a used token replayed with a fresh login", code: "nonce_mismatch", status: 401) { e2e in
        let old = try await e2e.login(e2e.platformA)
        let token = e2e.platformA.sign(e2e.claims(e2e.platformA, old) { $0["sub"] = "replay-victim-2" })
        _ = try await e2e.launch(idToken: token, state: old.state, cookie: old.cookie)
        let fresh = try await e2e.login(e2e.platformA)
        return ForgedPost(idToken: token, state: fresh.state, cookie: fresh.cookie)
    },
    Forgery(description: "state from another browser (no cookie)", code: "state_not_this_browser", status: 401) { e2e in
        let login = try await e2e.login(e2e.platformA)
        return ForgedPost(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, login)), state: login.state, cookie: nil)
    },
    Forgery(description: "state from another browser (that browser's own cookie)", code: "state_not_this_browser", status: 401) { e2e in
        let victim = try await e2e.login(e2e.platformA)
        let attacker = try await e2e.login(e2e.platformA)
        return ForgedPost(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, victim)), state: victim.state, cookie: attacker.cookie)
    },
    Forgery(description: "a state never issued", code: "state_unknown", status: 401) { e2e in
        let login = try await e2e.login(e2e.platformA)
        let forged = "forged-state-value"
        return ForgedPost(
            idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, login)), state: forged,
            cookie: LTIControllerCookie.name(for: forged) + "=" + forged)
    },
    Forgery(description: "a state that expired", code: "state_unknown", status: 401) { e2e in
        let login = try await e2e.login(e2e.platformA)
        e2e.clock.advance(700)
        return ForgedPost(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, login)), state: login.state, cookie: login.cookie)
    },
    Forgery(description: "no state", code: "state_missing", status: 400) { e2e in
        let login = try await e2e.login(e2e.platformA)
        return ForgedPost(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, login)), state: nil, cookie: login.cookie)
    },
    .token("no id_token", "token_missing", 400) { _, _ in nil },
    .token("not a JWT", "token_malformed", 400) { _, _ in "this.is-not-a.jwt!" },
    // Over GATEWAY_MAX_TOKEN_BYTES (64 KiB), within the launch form's limit (8 KiB more): the token rule refuses it.
    .token("an oversized token", "token_too_large", 400) { e2e, login in
        e2e.platformA.sign(e2e.claims(e2e.platformA, login) { $0["padding"] = String(repeating: "x", count: 48_500) })
    },
    Forgery(description: "a request body over the upload limit", code: "request_too_large", status: 413) { e2e in
        let login = try await e2e.login(e2e.platformA)
        return ForgedPost(idToken: String(repeating: "y", count: 300_000), state: login.state, cookie: login.cookie)
    },
    .claims("no deployment id", "deployment_id_missing") { $0[LTIClaim.deploymentID] = nil },
    .claims("a deployment not registered", "deployment_id_unknown") { $0[LTIClaim.deploymentID] = "dep-unregistered" },
    .claims("an overlong deployment id", "deployment_id_too_long") { $0[LTIClaim.deploymentID] = String(repeating: "d", count: 300) },
    .claims("LTI version 1.1", "version_invalid") { $0[LTIClaim.version] = "1.1.0" },
    .claims("no message type", "message_type_missing") { $0[LTIClaim.messageType] = nil },
    .claims("an unsupported message type", "message_type_unsupported") { $0[LTIClaim.messageType] = "LtiStartProctoring" },
    .claims("no resource link id", "resource_link_id_missing") { $0[LTIClaim.resourceLink] = ["title": "no id"] },
    .claims("no roles claim", "roles_missing") { $0[LTIClaim.roles] = nil },
    .claims("no sub", "sub_missing") { $0["sub"] = nil },
    .claims("an overlong sub", "sub_too_long") { $0["sub"] = String(repeating: "s", count: 300) },
    .claims("no target_link_uri", "target_link_uri_missing") { $0[LTIClaim.targetLinkURI] = nil },
    .claims("a foreign target_link_uri", "target_link_uri_foreign") { $0[LTIClaim.targetLinkURI] = "https://evil.example/lti/launch" },
    .claims("script in the name claims and the labid", "labid_invalid") {
        $0["given_name"] = "<script>alert('x')</script>"
        $0["name"] = "<img src=x onerror=alert(1)>"
        $0[LTIClaim.custom] = ["labid": "<script>alert(1)</script>"]
    },
]

struct Unexpected: Error { var text: String }

/// The cookie name the gateway uses, computed the same documented way (a digest of the state).
enum LTIControllerCookie {
    static func name(for state: String) -> String {
        // Recomputed independently: "__Host-lti_gw_state_" + first 6 bytes of SHA-256(state) in hex.
        GatewayCookieNames.stateCookieName(for: state)
    }
}

@Suite("End to end: forged, replayed and malformed launches")
struct ForgedLaunchTests {
    @Test("there are at least 25 distinct forgeries")
    func tableSize() {
        #expect(forgeries.count >= 25)
        #expect(Set(forgeries.map(\.description)).count == forgeries.count)
    }

    @Test("each forgery is refused with its precise reason, Skillable is never called, and the server stays healthy")
    func everyForgeryRefused() async throws {
        try await withEndToEnd { e2e in
            for forgery in forgeries {
                let post = try await forgery.build(e2e)
                let callsBefore = await e2e.sandboxCalls
                let launchesBefore = try await e2e.gateway.store.recentLaunches(limit: 1000).count
                let response = try await e2e.launch(idToken: post.idToken, state: post.state, cookie: post.cookie)
                #expect(response.status == forgery.status, "\(forgery): status \(response.status)")
                let reference = try #require(response.reference, "\(forgery): no reference id")
                #expect(response.body.contains(reference), "\(forgery): page lacks the reference id")
                if forgery.code != "labid_invalid" && forgery.code != "request_too_large" {
                    #expect(response.body.contains("· rule "), "\(forgery): page does not name the rule")
                }
                let logged = e2e.logs.lines(containing: "gw.request.id=\(reference)").filter { $0.contains("gw.error=\(forgery.code)") }
                #expect(
                    !logged.isEmpty,
                    "\(forgery): no log line with gw.error=\(forgery.code); got \(e2e.logs.lines(containing: "gw.request.id=\(reference)"))")
                #expect(await e2e.sandboxCalls == callsBefore, "\(forgery): Skillable was called")
                if forgery.code != "labid_invalid" {
                    #expect(try await e2e.gateway.store.recentLaunches(limit: 1000).count == launchesBefore, "\(forgery): a launch was recorded")
                }
                #expect(!response.body.contains("<script>") && !response.body.contains("onerror"), "\(forgery): markup echoed")
                if let token = post.idToken, token.count > 20 { #expect(!response.body.contains(token), "\(forgery): token echoed") }
                if let state = post.state { #expect(!response.body.contains(state), "\(forgery): state echoed") }
            }
            #expect(try await e2e.request(.GET, "/healthz").status == 200)
            #expect(try await e2e.request(.GET, "/readyz").status == 200)
            let afterwards = try await e2e.fullLaunch { $0["sub"] = "healthy-check" }
            #expect(afterwards.status == 303)
        }
    }
}
