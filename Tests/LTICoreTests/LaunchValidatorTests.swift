import CryptoExtras
import Foundation
import GatewayStorage
import LTICore
import LTITestSupport
import Testing

/// Keys served from memory, counting lookups.
final class StaticKeyProvider: PlatformKeyProvider {
    let keys: [String: [String: PlatformPublicKey]]
    init(_ keys: [String: [String: PlatformPublicKey]]) { self.keys = keys }
    func key(kid: String, jwksURL: String) async throws -> PlatformPublicKey? { keys[jwksURL]?[kid] }
}

/// A validator over a memory store with platform A registered and one login state issued.
struct ValidatorHarness {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let toolURL = "https://tool.example"
    let store = MemoryGatewayStore()
    let platform = TestPlatform()
    var policy = LaunchPolicy(redirectURI: toolURL + "/lti/launch", toolHosts: ["tool.example"])

    func registration() -> PlatformRegistration {
        PlatformRegistration(
            id: "reg-a", issuer: platform.issuer, clientID: platform.clientID, authURL: "https://lms.example.edu/auth",
            tokenURL: "https://lms.example.edu/token", jwksURL: "https://lms.example.edu/jwks",
            deploymentIDs: [platform.deploymentID], createdAt: Self.now)
    }

    func validator() async throws -> LaunchValidator {
        if try await store.registration(id: "reg-a") == nil { try await store.addRegistration(registration()) }
        let publicKey = try PlatformPublicKey(kid: platform.kid, pem: platform.privateKey.publicKey.pemRepresentation)
        let keys = StaticKeyProvider(["https://lms.example.edu/jwks": [platform.kid: publicKey]])
        return LaunchValidator(registrations: store, states: store, keys: keys, policy: policy)
    }

    /// Issues a login state and returns (state, nonce).
    func issueState(
        _ state: String = "state-\(UUID().uuidString)", nonce: String = "nonce-\(UUID().uuidString)",
        lifetime: TimeInterval = 600
    ) async throws -> (String, String) {
        try await store.saveLoginState(
            LoginState(
                state: state, nonce: nonce, registrationID: "reg-a",
                targetLinkURI: Self.toolURL + "/lti/launch", createdAt: Self.now,
                expiresAt: Self.now.addingTimeInterval(lifetime)))
        return (state, nonce)
    }

    /// Validates a token built from the standard claims, changed by `change`.
    func validate(
        at time: Date = now, _ change: (inout [String: Any]) -> Void = { _ in },
        sign: ((TestPlatform, [String: Any]) -> String)? = nil
    ) async throws -> ValidatedLaunch {
        let (state, nonce) = try await issueState()
        var claims = platform.launchClaims(nonce: nonce, now: Self.now, toolURL: Self.toolURL)
        change(&claims)
        let token = sign?(platform, claims) ?? platform.sign(claims)
        return try await validator().validate(idToken: token, state: state, browserState: state, now: time)
    }
}

/// Expects `body` to throw a ``LaunchRefusal`` with `code`.
func expectRefusal(
    _ code: LaunchRefusal.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("accepted; expected refusal \(code.rawValue)", sourceLocation: sourceLocation)
    } catch let refusal as LaunchRefusal {
        #expect(refusal.code == code, "refused with \(refusal.code.rawValue), expected \(code.rawValue)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Launch validation: checklist \"Launch\" rules")
struct LaunchValidatorTests {
    let h = ValidatorHarness()

    @Test("a valid launch passes and carries its claims")
    func validLaunch() async throws {
        let launch = try await h.validate()
        #expect(launch.messageType == .resourceLinkRequest)
        #expect(launch.deploymentID == "deployment-1")
        #expect(launch.token.custom?["labid"] == "1001")
        #expect(launch.token.subject == "learner-42")
        #expect(launch.registration.id == "reg-a")
    }

    // Rule 1
    @Test("rule 1: a launch without state is refused")
    func stateMissing() async throws {
        let token = h.platform.sign(h.platform.launchClaims(nonce: "n", now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        await expectRefusal(.stateMissing) {
            _ = try await h.validator().validate(idToken: token, state: nil, browserState: nil, now: ValidatorHarness.now)
        }
    }

    @Test("rule 1: a state this browser does not carry is refused and stays unused")
    func stateFromOtherBrowser() async throws {
        let (state, nonce) = try await h.issueState()
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        await expectRefusal(.stateNotThisBrowser) {
            _ = try await h.validator().validate(idToken: token, state: state, browserState: nil, now: ValidatorHarness.now)
        }
        await expectRefusal(.stateNotThisBrowser) {
            _ = try await h.validator().validate(idToken: token, state: state, browserState: "other-state", now: ValidatorHarness.now)
        }
        // The rightful browser can still use it.
        _ = try await h.validator().validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
    }

    @Test("rule 1: an unknown state is refused")
    func stateUnknown() async throws {
        let token = h.platform.sign(h.platform.launchClaims(nonce: "n", now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        await expectRefusal(.stateUnknown) {
            _ = try await h.validator().validate(idToken: token, state: "never-issued", browserState: "never-issued", now: ValidatorHarness.now)
        }
    }

    @Test("rule 1: an expired state is refused")
    func stateExpired() async throws {
        let (state, nonce) = try await h.issueState(lifetime: 60)
        let later = ValidatorHarness.now.addingTimeInterval(61)
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: later, toolURL: ValidatorHarness.toolURL))
        await expectRefusal(.stateUnknown) { _ = try await h.validator().validate(idToken: token, state: state, browserState: state, now: later) }
    }

    @Test("rule 1: a state is consumed: the same post twice is refused the second time")
    func stateConsumed() async throws {
        let (state, nonce) = try await h.issueState()
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        let validator = try await h.validator()
        _ = try await validator.validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
        await expectRefusal(.stateUnknown) {
            _ = try await validator.validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
        }
    }

    @Test("rules 1 and 8: of two racing posts of one launch exactly one is accepted")
    func racingLaunches() async throws {
        let (state, nonce) = try await h.issueState()
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        let validator = try await h.validator()
        let accepted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (try? await validator.validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)) != nil }
            }
            var count = 0
            for await ok in group where ok { count += 1 }
            return count
        }
        #expect(accepted == 1)
    }

    // Rule 2
    @Test("rule 2: no id_token, a malformed token and an oversized token are refused")
    func tokenShape() async throws {
        let (s1, _) = try await h.issueState()
        await expectRefusal(.tokenMissing) {
            _ = try await h.validator().validate(idToken: nil, state: s1, browserState: s1, now: ValidatorHarness.now)
        }
        let (s2, _) = try await h.issueState()
        await expectRefusal(.tokenMalformed) {
            _ = try await h.validator().validate(idToken: "abc.def", state: s2, browserState: s2, now: ValidatorHarness.now)
        }
        let (s3, _) = try await h.issueState()
        await expectRefusal(.tokenMalformed) {
            _ = try await h.validator().validate(idToken: "!!!.@@@.###", state: s3, browserState: s3, now: ValidatorHarness.now)
        }
        let (s4, _) = try await h.issueState()
        let huge = String(repeating: "a", count: h.policy.maxTokenBytes + 1)
        await expectRefusal(.tokenTooLarge) {
            _ = try await h.validator().validate(idToken: huge, state: s4, browserState: s4, now: ValidatorHarness.now)
        }
    }

    @Test("rule 2: an oversized token leaves the state unused")
    func oversizedLeavesState() async throws {
        let (state, nonce) = try await h.issueState()
        let huge = String(repeating: "a", count: h.policy.maxTokenBytes + 1)
        await expectRefusal(.tokenTooLarge) {
            _ = try await h.validator().validate(idToken: huge, state: state, browserState: state, now: ValidatorHarness.now)
        }
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        _ = try await h.validator().validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
    }

    @Test("rule 2: alg none is refused")
    func algNone() async {
        await expectRefusal(.algorithmNotAllowed) { _ = try await h.validate(sign: { p, c in p.unsignedToken(c) }) }
    }

    @Test("rule 2: a crit header is refused (RFC 7515 §4.1.11: no extension is understood), even over a good signature")
    func critHeader() async throws {
        await expectRefusal(.criticalHeaderUnsupported) {
            _ = try await h.validate(sign: { p, c in p.sign(c, extraHeader: ["crit": ["b64"], "b64": false]) })
        }
        _ = try await h.validate(sign: { p, c in p.sign(c, extraHeader: ["typ": "JWT"]) })
    }

    @Test("rule 2: HS256 with the platform's public key as secret is refused")
    func hs256Confusion() async {
        await expectRefusal(.algorithmNotAllowed) { _ = try await h.validate(sign: { p, c in p.hs256WithPublicKey(c) }) }
    }

    @Test("rule 2: RS512 and other algorithms the header asks for are refused")
    func otherAlgorithm() async {
        await expectRefusal(.algorithmNotAllowed) {
            _ = try await h.validate(sign: { p, c in TestPlatform.signRS256(header: ["alg": "RS512", "kid": p.kid], claims: c, key: p.privateKey) })
        }
    }

    @Test("rule 2: a token without kid is refused")
    func kidMissing() async {
        await expectRefusal(.keyIDMissing) {
            _ = try await h.validate(sign: { p, c in TestPlatform.signRS256(header: ["alg": "RS256"], claims: c, key: p.privateKey) })
        }
    }

    @Test("rule 2: jku in the header is ignored: the attacker's key set is never used")
    func jkuIgnored() async {
        await expectRefusal(.keyIDUnknown) {
            _ = try await h.validate(sign: { p, c in
                p.sign(c, kid: "attacker-kid", key: TestKeys.attacker, extraHeader: ["jku": "https://attacker.example/jwks.json"])
            })
        }
    }

    @Test("rule 2: an embedded jwk in the header is ignored")
    func embeddedJWKIgnored() async {
        await expectRefusal(.signatureInvalid) {
            _ = try await h.validate(sign: { p, c in
                p.sign(c, key: TestKeys.attacker, extraHeader: ["jwk": ["kty": "RSA", "n": "AQAB", "e": "AQAB"]])
            })
        }
    }

    // Rule 3
    @Test("rule 3: a kid the registration's key set does not hold is refused")
    func kidUnknown() async {
        await expectRefusal(.keyIDUnknown) { _ = try await h.validate(sign: { p, c in p.sign(c, kid: "no-such-kid") }) }
    }

    // Rule 4
    @Test("rule 4: a signature by another key under the platform's kid is refused")
    func wrongKey() async {
        await expectRefusal(.signatureInvalid) { _ = try await h.validate(sign: { p, c in p.sign(c, key: TestKeys.attacker) }) }
    }

    @Test("rule 4: a tampered payload is refused")
    func tamperedPayload() async {
        await expectRefusal(.signatureInvalid) {
            _ = try await h.validate(sign: { p, c in
                let parts = p.sign(c).split(separator: ".").map(String.init)
                var changed = c
                changed["sub"] = "someone-else"
                return parts[0] + "." + TestPlatform.encodeSegment(changed) + "." + parts[2]
            })
        }
    }

    // Rule 5
    @Test("rule 5: an issuer other than the registration's is refused")
    func issuerMismatch() async {
        await expectRefusal(.issuerMismatch) { _ = try await h.validate { $0["iss"] = "https://other-lms.example" } }
    }

    // Rule 6
    @Test("rule 6: a token for another client is refused")
    func audienceWrong() async {
        await expectRefusal(.audienceMismatch) { _ = try await h.validate { $0["aud"] = "another-client" } }
    }

    @Test("rule 6: several audiences without azp are refused")
    func extraAudienceWithoutAZP() async {
        await expectRefusal(.authorizedPartyMissing) { _ = try await h.validate { $0["aud"] = ["tool-client-1", "other"] } }
    }

    @Test("rule 6: azp other than our client id is refused")
    func azpMismatch() async {
        await expectRefusal(.authorizedPartyMismatch) { _ = try await h.validate { $0["azp"] = "other" } }
    }

    @Test("rule 6: an untrusted extra audience is refused even with azp")
    func untrustedAudience() async {
        await expectRefusal(.audienceMismatch) {
            _ = try await h.validate {
                $0["aud"] = ["tool-client-1", "other"]; $0["azp"] = "tool-client-1"
            }
        }
    }

    @Test("rule 6: aud as an array with our client id and azp is accepted")
    func audienceArray() async throws {
        _ = try await h.validate {
            $0["aud"] = ["tool-client-1"]; $0["azp"] = "tool-client-1"
        }
    }

    // Rule 7
    @Test("rule 7: an expired token is refused; within the leeway it is accepted")
    func expiry() async throws {
        let exp = ValidatorHarness.now.addingTimeInterval(300)
        await expectRefusal(.expired) { _ = try await h.validate(at: exp.addingTimeInterval(31)) }
        _ = try await h.validate(at: exp.addingTimeInterval(29))
    }

    @Test("rule 7: the leeway is configurable: with zero leeway a just-expired token is refused")
    func zeroLeeway() async {
        var strict = ValidatorHarness()
        strict.policy.clockLeeway = 0
        let exp = ValidatorHarness.now.addingTimeInterval(300)
        await expectRefusal(.expired) { _ = try await strict.validate(at: exp.addingTimeInterval(1)) }
    }

    @Test("rule 7: exp and iat are required")
    func timesRequired() async {
        await expectRefusal(.expiryMissing) { _ = try await h.validate { $0["exp"] = nil } }
        await expectRefusal(.issuedAtMissing) { _ = try await h.validate { $0["iat"] = nil } }
    }

    @Test("rule 7: iat in the future beyond the leeway is refused")
    func issuedInFuture() async {
        await expectRefusal(.issuedInFuture) { _ = try await h.validate { $0["iat"] = Int(ValidatorHarness.now.timeIntervalSince1970) + 120 } }
    }

    @Test("rule 7: iat older than the window is refused")
    func issuedTooLongAgo() async {
        await expectRefusal(.issuedTooLongAgo) {
            _ = try await h.validate { $0["iat"] = Int(ValidatorHarness.now.timeIntervalSince1970) - 3600 }
        }
    }

    @Test("rule 7: nbf in the future is refused")
    func notBefore() async {
        await expectRefusal(.notYetValid) { _ = try await h.validate { $0["nbf"] = Int(ValidatorHarness.now.timeIntervalSince1970) + 120 } }
    }

    // Rule 8
    @Test("rule 8: a token without nonce is refused")
    func nonceMissing() async {
        await expectRefusal(.nonceMissing) { _ = try await h.validate { $0["nonce"] = nil } }
    }

    @Test("rule 8: a nonce other than the one bound to the state is refused")
    func nonceMismatch() async {
        await expectRefusal(.nonceMismatch) { _ = try await h.validate { $0["nonce"] = "a-nonce-from-another-login" } }
    }

    @Test("rules 1 and 8: a token is accepted once — its state and the nonce bound to it go together — also when posts race")
    func nonceReplay() async throws {
        let (state, nonce) = try await h.issueState()
        let token = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        let validator = try await h.validator()
        let outcomes = await withTaskGroup(of: LaunchRefusal.Code?.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        _ = try await validator.validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
                        return nil
                    } catch let refusal as LaunchRefusal {
                        return refusal.code
                    } catch {
                        return .tokenMalformed
                    }
                }
            }
            var all: [LaunchRefusal.Code?] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.compactMap { $0 }.allSatisfy { $0 == .nonceReplayed || $0 == .stateUnknown })
        await expectRefusal(.stateUnknown) {
            _ = try await validator.validate(idToken: token, state: state, browserState: state, now: ValidatorHarness.now)
        }
    }

    @Test("a refused launch changes nothing: its state stays for the genuine token, and a forged one never consumes it")
    func refusalKeepsTheState() async throws {
        let (state, nonce) = try await h.issueState()
        let validator = try await h.validator()
        let forged = h.platform.sign(
            h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL), key: TestKeys.attacker)
        await expectRefusal(.signatureInvalid) {
            _ = try await validator.validate(idToken: forged, state: state, browserState: state, now: ValidatorHarness.now)
        }
        let genuine = h.platform.sign(h.platform.launchClaims(nonce: nonce, now: ValidatorHarness.now, toolURL: ValidatorHarness.toolURL))
        _ = try await validator.validate(idToken: genuine, state: state, browserState: state, now: ValidatorHarness.now)
    }

    // Rules 9–16
    @Test("rule 9: a version other than 1.3.0 is refused")
    func version() async {
        await expectRefusal(.versionInvalid) { _ = try await h.validate { $0[LTIClaim.version] = "1.1" } }
        await expectRefusal(.versionInvalid) { _ = try await h.validate { $0[LTIClaim.version] = nil } }
    }

    @Test("rule 10: a missing or unknown message type is refused")
    func messageType() async {
        await expectRefusal(.messageTypeMissing) { _ = try await h.validate { $0[LTIClaim.messageType] = nil } }
        await expectRefusal(.messageTypeUnsupported) { _ = try await h.validate { $0[LTIClaim.messageType] = "LtiSubmissionReviewRequest" } }
    }

    @Test("rule 11: a missing, overlong or unregistered deployment is refused")
    func deployment() async {
        await expectRefusal(.deploymentMissing) { _ = try await h.validate { $0[LTIClaim.deploymentID] = nil } }
        await expectRefusal(.deploymentTooLong) { _ = try await h.validate { $0[LTIClaim.deploymentID] = String(repeating: "d", count: 256) } }
        await expectRefusal(.deploymentUnknown) { _ = try await h.validate { $0[LTIClaim.deploymentID] = "deployment-2" } }
    }

    @Test("rule 12: a missing or foreign target_link_uri is refused")
    func targetLinkURI() async {
        await expectRefusal(.targetLinkURIMissing) { _ = try await h.validate { $0[LTIClaim.targetLinkURI] = nil } }
        await expectRefusal(.targetLinkURIForeign) { _ = try await h.validate { $0[LTIClaim.targetLinkURI] = "https://evil.example/lti/launch" } }
        await expectRefusal(.targetLinkURIForeign) { _ = try await h.validate { $0[LTIClaim.targetLinkURI] = "https://tool.example.evil.example/" } }
        await expectRefusal(.targetLinkURIForeign) { _ = try await h.validate { $0[LTIClaim.targetLinkURI] = "javascript:alert(1)" } }
    }

    @Test("rule 13: a resource link launch without a resource link id, or an overlong one, is refused")
    func resourceLink() async {
        await expectRefusal(.resourceLinkMissing) { _ = try await h.validate { $0[LTIClaim.resourceLink] = nil } }
        await expectRefusal(.resourceLinkMissing) { _ = try await h.validate { $0[LTIClaim.resourceLink] = ["title": "x"] } }
        await expectRefusal(.resourceLinkTooLong) {
            _ = try await h.validate { $0[LTIClaim.resourceLink] = ["id": String(repeating: "r", count: 256)] }
        }
    }

    @Test("rule 14: roles must be present; empty and unknown roles are fine")
    func roles() async throws {
        await expectRefusal(.rolesMissing) { _ = try await h.validate { $0[LTIClaim.roles] = nil } }
        _ = try await h.validate { $0[LTIClaim.roles] = [String]() }
        _ = try await h.validate { $0[LTIClaim.roles] = ["Learner", "urn:example:custom-role"] }
    }

    @Test("rule 15: sub is required and at most 255 characters")
    func subject() async {
        await expectRefusal(.subjectMissing) { _ = try await h.validate { $0["sub"] = nil } }
        await expectRefusal(.subjectMissing) { _ = try await h.validate { $0["sub"] = "" } }
        await expectRefusal(.subjectTooLong) { _ = try await h.validate { $0["sub"] = String(repeating: "s", count: 256) } }
    }

    @Test("rule 16: a deep-linking request needs its settings claim")
    func deepLinkingSettings() async throws {
        let request: (inout [String: Any]) -> Void = {
            $0[LTIClaim.messageType] = "LtiDeepLinkingRequest"
            $0[LTIClaim.resourceLink] = nil
        }
        await expectRefusal(.deepLinkingSettingsInvalid) { _ = try await h.validate(request) }
        await expectRefusal(.deepLinkingSettingsInvalid) {
            _ = try await h.validate {
                request(&$0); $0[LTIClaim.deepLinkingSettings] = ["accept_types": ["ltiResourceLink"]]
            }
        }
        let launch = try await h.validate {
            request(&$0)
            $0[LTIClaim.deepLinkingSettings] = [
                "deep_link_return_url": "https://lms.example.edu/dl/return",
                "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe"],
                "data": "opaque-123",
            ]
        }
        #expect(launch.messageType == .deepLinkingRequest)
        #expect(launch.token.deepLinkingSettings?.data == "opaque-123")
    }

    @Test("rule 17: unknown claims are ignored and custom values are strings, empty allowed")
    func unknownClaimsIgnored() async throws {
        let launch = try await h.validate {
            $0["https://example.com/claim/unknown"] = ["deep": ["nested": true]]
            $0[LTIClaim.custom] = ["labid": "1002", "empty": "", "number": 7]
        }
        #expect(launch.token.custom == ["labid": "1002", "empty": "", "number": "7"])
    }
}
