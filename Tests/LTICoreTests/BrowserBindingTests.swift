import Foundation
import GatewayStorage
import LTICore
import LTITestSupport
import Testing

/// Checklist "Launch" rule 1 through each channel that ties a launch to its browser: the state cookie, the
/// partitioned cookie, LTI Platform Storage, and a login started again in a new window.
@Suite("Launch validation: browser binding channels (rule 1)")
struct BrowserBindingTests {
    let h = ValidatorHarness()
    let now = ValidatorHarness.now

    /// Logs in through the real login handler (storage offered when `frame` is set) and signs a token for it.
    func login(frame: String? = "post_message_forwarding") async throws -> (redirect: OIDCLoginRedirect, token: String) {
        _ = try await h.validator()  // registers platform A
        let handler = OIDCLoginHandler(registrations: h.store, states: h.store, policy: h.policy)
        let request = try OIDCLoginRequest(parameters: [
            "iss": h.platform.issuer, "login_hint": "learner-42", "target_link_uri": ValidatorHarness.toolURL + "/lti/launch",
            "client_id": h.platform.clientID, "lti_message_hint": "resource-7", "lti_deployment_id": h.platform.deploymentID,
        ])
        let registration = try await handler.registration(for: request)
        let redirect = try await handler.login(request, registration: registration, platformStorageFrame: frame, now: now)
        return (redirect, try await token(for: redirect.state))
    }

    func token(for state: String) async throws -> String {
        let nonce = try #require(try await h.store.loginState(state, now: now)).nonce
        return h.platform.sign(h.platform.launchClaims(nonce: nonce, now: now, toolURL: ValidatorHarness.toolURL))
    }

    @Test("a login that offers storage keeps only the digest of a 256-bit secret, and its frame")
    func storageLoginKeepsDigest() async throws {
        let (redirect, _) = try await login()
        let secret = try #require(redirect.storageSecret)
        #expect(Base64URL.decode(Array(secret.utf8))?.count == 32)
        let stored = try #require(try await h.store.loginState(redirect.state, now: now))
        #expect(stored.storageSecretDigest == PlatformStorageSecret.digest(secret))
        #expect(stored.storageSecretDigest != secret)
        #expect(stored.storageFrame == "post_message_forwarding")
        #expect(stored.loginHint == "learner-42" && stored.ltiMessageHint == "resource-7" && stored.deploymentHint == h.platform.deploymentID)
        #expect(!redirect.authorizationURL.contains(secret))
        let plain = try await login(frame: nil).redirect
        #expect(plain.storageSecret == nil)
        #expect(try await h.store.loginState(plain.state, now: now)?.storageSecretDigest == nil)
    }

    @Test("the storage key is derived from the state, differs per login and does not contain it")
    func storageKey() {
        let a = PlatformStorageSecret.key(forState: "state-a"), b = PlatformStorageSecret.key(forState: "state-b")
        #expect(a != b && a == PlatformStorageSecret.key(forState: "state-a"))
        #expect(!a.contains("state-a"))
    }

    @Test("the secret read back from storage binds the launch once; a replay is refused")
    func storageSecretConsumedOnce() async throws {
        let (redirect, token) = try await login()
        let secret = try #require(redirect.storageSecret)
        let validator = try await h.validator()
        let launch = try await validator.validate(idToken: token, state: redirect.state, binding: .platformStorage(secret: secret), now: now)
        #expect(launch.channel == .platformStorage)
        await expectRefusal(.stateUnknown) {
            _ = try await validator.validate(idToken: token, state: redirect.state, binding: .platformStorage(secret: secret), now: now)
        }
    }

    @Test("a wrong, empty or oversized secret is refused and leaves the state to its browser")
    func wrongSecretChangesNothing() async throws {
        let (redirect, token) = try await login()
        let validator = try await h.validator()
        for wrong in [PlatformStorageSecret.make(), "", String(repeating: "s", count: PlatformStorageSecret.maxLength + 1)] {
            await expectRefusal(.storageSecretMismatch) {
                _ = try await validator.validate(idToken: token, state: redirect.state, binding: .platformStorage(secret: wrong), now: now)
            }
        }
        #expect(try await h.store.loginState(redirect.state, now: now) != nil, "a wrong secret consumed the state")
        _ = try await validator.validate(
            idToken: token, state: redirect.state,
            binding: .platformStorage(secret: try #require(redirect.storageSecret)), now: now)
    }

    @Test("one login's secret does not bind another login's state (swapped)")
    func swappedSecret() async throws {
        let (first, _) = try await login()
        let (second, secondToken) = try await login()
        await expectRefusal(.storageSecretMismatch) {
            _ = try await h.validator().validate(
                idToken: secondToken, state: second.state,
                binding: .platformStorage(secret: try #require(first.storageSecret)), now: now)
        }
    }

    @Test("a storage launch for a login that did not use storage is refused")
    func storageWithoutStorageLogin() async throws {
        let (redirect, token) = try await login(frame: nil)
        await expectRefusal(.storageNotOffered) {
            _ = try await h.validator().validate(
                idToken: token, state: redirect.state, binding: .platformStorage(secret: PlatformStorageSecret.make()), now: now)
        }
        #expect(try await h.store.loginState(redirect.state, now: now) != nil, "the refusal consumed the state")
    }

    @Test("a storage secret for an unknown state is refused as unknown")
    func storageUnknownState() async throws {
        let token = h.platform.sign(h.platform.launchClaims(nonce: "n", now: now, toolURL: ValidatorHarness.toolURL))
        await expectRefusal(.stateUnknown) {
            _ = try await h.validator().validate(idToken: token, state: "never-issued", binding: .platformStorage(secret: "s"), now: now)
        }
    }

    @Test("the channel names the cookie that bound the launch")
    func cookieChannels() async throws {
        for partitioned in [false, true] {
            let (redirect, token) = try await login(frame: nil)
            let launch = try await h.validator().validate(
                idToken: token, state: redirect.state,
                binding: .cookie(redirect.state, partitioned: partitioned), now: now)
            #expect(launch.channel == (partitioned ? .partitionedCookie : .cookie))
        }
    }

    @Test("no binding at all is refused as not this browser")
    func noBinding() async throws {
        let (redirect, token) = try await login()
        await expectRefusal(.stateNotThisBrowser) {
            _ = try await h.validator().validate(idToken: token, state: redirect.state, binding: .none, now: now)
        }
    }

    @Test("a login started again keeps its hints, has a new state, offers no storage and counts as a new window")
    func restart() async throws {
        let (first, _) = try await login()
        let handler = OIDCLoginHandler(registrations: h.store, states: h.store, policy: h.policy)
        let again = try await handler.restart(restartKey: try #require(first.restartKey), now: now)
        #expect(again.state != first.state && again.restartKey == nil)
        #expect(again.storageSecret == nil)
        #expect(again.authorizationURL.contains("login_hint=learner-42") && again.authorizationURL.contains("lti_message_hint=resource-7"))
        let stored = try #require(try await h.store.loginState(again.state, now: now))
        #expect(stored.startedInNewWindow && stored.deploymentHint == h.platform.deploymentID && stored.storageSecretDigest == nil)
        #expect(try await h.store.loginState(first.state, now: now) != nil, "the earlier login should stay until it expires")
        let launch = try await h.validator().validate(
            idToken: try await token(for: again.state), state: again.state,
            binding: .cookie(again.state, partitioned: false), now: now)
        #expect(launch.channel == .newWindow)
    }

    @Test("an unknown or expired restart key is refused")
    func restartUnknown() async throws {
        let (first, _) = try await login()
        let handler = OIDCLoginHandler(registrations: h.store, states: h.store, policy: h.policy)
        await expectRefusal(.loginRestartUnknown) { _ = try await handler.restart(restartKey: "never-issued", now: now) }
        await expectRefusal(.loginRestartUnknown) { _ = try await handler.restart(restartKey: first.state, now: now) }
        await expectRefusal(.loginRestartUnknown) {
            _ = try await handler.restart(restartKey: try #require(first.restartKey), now: now.addingTimeInterval(h.policy.stateLifetime + 1))
        }
    }

    @Test("a login without platform storage is saved without a restart key (no index entry); one is given when first needed")
    func restartKeyOnDemand() async throws {
        let (plain, _) = try await login(frame: nil)
        #expect(plain.restartKey == nil)
        #expect(try await h.store.loginState(plain.state, now: now)?.restartKey == nil)
        let key = try #require(try await h.store.assignRestartKey("on-demand", toState: plain.state, now: now))
        let handler = OIDCLoginHandler(registrations: h.store, states: h.store, policy: h.policy)
        #expect(try await handler.restart(restartKey: key, now: now).state != plain.state)
    }
}
