import Foundation
import GatewayStorage
import LTICore
import Testing

@Suite("OIDC login: checklist \"Login\" rules")
struct OIDCLoginTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    let store = MemoryGatewayStore()
    let policy = LaunchPolicy(redirectURI: "https://tool.example/lti/launch", toolHosts: ["tool.example"])

    func register(_ id: String, issuer: String = "https://canvas.instructure.com", clientID: String) async throws {
        try await store.addRegistration(
            PlatformRegistration(
                id: id, issuer: issuer, clientID: clientID, authURL: "https://sso.canvaslms.com/api/lti/authorize_redirect",
                tokenURL: "https://sso.canvaslms.com/login/oauth2/token", jwksURL: "https://sso.canvaslms.com/api/lti/security/jwks",
                deploymentIDs: ["d"], createdAt: Self.now))
    }

    func login(_ parameters: [String: String]) async throws -> OIDCLoginRedirect {
        try await OIDCLoginHandler(registrations: store, states: store, policy: policy)
            .login(OIDCLoginRequest(parameters: parameters), now: Self.now)
    }

    static func query(_ url: String) -> [String: String] {
        var result: [String: String] = [:]
        for item in URLComponents(string: url)?.queryItems ?? [] { result[item.name] = item.value }
        return result
    }

    let base = ["iss": "https://canvas.instructure.com", "login_hint": "hint-1", "target_link_uri": "https://tool.example/lti/launch"]

    @Test("rule 1: iss, login_hint and target_link_uri are required")
    func requiredParameters() async throws {
        try await register("a", clientID: "c1")
        for name in ["iss", "login_hint", "target_link_uri"] {
            var parameters = base
            parameters[name] = nil
            await expectRefusal(.loginParameterMissing) { _ = try await login(parameters) }
        }
    }

    @Test("rule 1: oversized parameters are refused")
    func oversized() async throws {
        try await register("a", clientID: "c1")
        var parameters = base
        parameters["lti_message_hint"] = String(repeating: "x", count: OIDCLoginRequest.maxParameterLength + 1)
        await expectRefusal(.loginParameterTooLong) { _ = try await login(parameters) }
    }

    @Test("rule 1: a refusal never repeats a parameter name the request made up (page, log and page cache stay ours)")
    func madeUpNamesNotEchoed() async throws {
        try await register("a", clientID: "c1")
        let invented = "<img src=x onerror=alert(1)>-\(UUID().uuidString)"
        for value in [String(repeating: "x", count: OIDCLoginRequest.maxParameterLength + 1), "bell\u{07}"] {
            var parameters = base
            parameters[invented] = value
            do {
                _ = try await login(parameters)
                Issue.record("accepted")
            } catch let refusal as LaunchRefusal {
                #expect(!refusal.message.contains(invented) && !refusal.message.contains("img"), "\(refusal.message)")
            }
        }
        var parameters = base
        parameters["lti_message_hint"] = "bell\u{07}"
        await expectRefusal(.loginParameterInvalid) { _ = try await login(parameters) }
        do { _ = try await login(parameters) } catch let refusal as LaunchRefusal { #expect(refusal.message.contains("lti_message_hint")) }
    }

    @Test(
        "rule 1: parameters with control characters are refused (they are kept with the state)",
        arguments: [
            "login_hint", "lti_message_hint", "lti_deployment_id", "lti_storage_target", "iss",
        ])
    func controlCharacters(name: String) async throws {
        try await register("a", clientID: "c1")
        for bad in ["a\u{0}b", "line\nbreak", "tab\there", "del\u{7F}"] {
            var parameters = base
            parameters[name] = bad
            await expectRefusal(.loginParameterInvalid) { _ = try await login(parameters) }
        }
    }

    @Test("rule 2: one issuer, many client ids: the registration is found by both")
    func issuerAndClientID() async throws {
        try await register("a", clientID: "c1")
        try await register("b", clientID: "c2")
        var parameters = base
        parameters["client_id"] = "c2"
        let redirect = try await login(parameters)
        #expect(redirect.registration.id == "b")
        #expect(Self.query(redirect.authorizationURL)["client_id"] == "c2")
    }

    @Test("rule 2: without client_id an issuer with several registrations is refused, with one it is used")
    func ambiguousIssuer() async throws {
        try await register("a", clientID: "c1")
        #expect(try await login(base).registration.id == "a")
        try await register("b", clientID: "c2")
        await expectRefusal(.registrationAmbiguous) { _ = try await login(base) }
    }

    @Test("rule 2: an unknown issuer or client id is refused")
    func unknownRegistration() async throws {
        try await register("a", clientID: "c1")
        var parameters = base
        parameters["client_id"] = "c9"
        await expectRefusal(.registrationUnknown) { _ = try await login(parameters) }
        parameters["iss"] = "https://unknown.example"
        await expectRefusal(.registrationUnknown) { _ = try await login(parameters) }
    }

    @Test("rule 3: state and nonce are long, random, distinct and stored bound together")
    func stateAndNonce() async throws {
        try await register("a", clientID: "c1")
        let first = try await login(base)
        let second = try await login(base)
        let q1 = Self.query(first.authorizationURL), q2 = Self.query(second.authorizationURL)
        let state = try #require(q1["state"]), nonce = try #require(q1["nonce"])
        #expect(state.count >= 43 && nonce.count >= 43)  // 32 bytes base64url: 256 bits
        #expect(state != nonce && state != q2["state"] && nonce != q2["nonce"])
        let stored = try #require(try await store.consumeLoginState(state, now: Self.now))
        #expect(stored.nonce == nonce)
        #expect(stored.expiresAt == Self.now.addingTimeInterval(policy.stateLifetime))
        #expect(policy.stateLifetime <= 900)
    }

    @Test("rule 4: the redirect carries every OIDC parameter, the exact redirect_uri and the message hint unchanged")
    func redirectParameters() async throws {
        try await register("a", clientID: "c1")
        var parameters = base
        parameters["lti_message_hint"] = "opaque hint/with+chars&="
        let redirect = try await login(parameters)
        #expect(redirect.authorizationURL.hasPrefix("https://sso.canvaslms.com/api/lti/authorize_redirect?"))
        let q = Self.query(redirect.authorizationURL)
        #expect(q["scope"] == "openid")
        #expect(q["response_type"] == "id_token")
        #expect(q["response_mode"] == "form_post")
        #expect(q["prompt"] == "none")
        #expect(q["client_id"] == "c1")
        #expect(q["redirect_uri"] == "https://tool.example/lti/launch")
        #expect(q["login_hint"] == "hint-1")
        #expect(q["lti_message_hint"] == "opaque hint/with+chars&=")
    }

    @Test("launch rule 12 at login: a target_link_uri outside the gateway is refused")
    func foreignTarget() async throws {
        try await register("a", clientID: "c1")
        var parameters = base
        parameters["target_link_uri"] = "https://evil.example/steal"
        await expectRefusal(.targetLinkURIForeign) { _ = try await login(parameters) }
    }
}
