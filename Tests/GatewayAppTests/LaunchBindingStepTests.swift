import Foundation
import GatewayStorage
import LTICore
import Testing

@testable import GatewayApp

@Suite("Platform storage: when a login offers it")
struct PlatformStorageDecisionTests {
    @Test(
        "auto: only when the login names a target or the platform a frame; on: always; off: never; never top-level",
        arguments: [
            // (mode, lti_storage_target, configured frame, Sec-Fetch-Dest, expected frame)
            (PlatformStorageMode?.none, "post_message_forwarding", nil, "iframe", "post_message_forwarding"),
            (.auto, nil, nil, "iframe", nil),
            (.auto, "", nil, "iframe", nil),
            (.auto, nil, "lti_storage_frame", "iframe", "lti_storage_frame"),
            (.auto, "_parent", "lti_storage_frame", nil, "_parent"),
            (.on, nil, nil, "iframe", "_parent"),
            (.on, nil, "lti_storage_frame", nil, "lti_storage_frame"),
            (.off, "post_message_forwarding", "lti_storage_frame", "iframe", nil),
            (.auto, "post_message_forwarding", nil, "document", nil),
            (.on, "post_message_forwarding", nil, "document", nil),
        ] as [(PlatformStorageMode?, String?, String?, String?, String?)])
    func decision(mode: PlatformStorageMode?, target: String?, frame: String?, destination: String?, expected: String?) {
        let options = PlatformLaunchOptions(platformStorage: mode, storageFrame: frame)
        #expect(PlatformStorageDecision.frame(storageTarget: target, options: options, fetchDestination: destination) == expected)
    }

    @Test("a configured frame name is validated")
    func frameValidated() {
        #expect(PlatformLaunchOptions(storageFrame: "lti_storage_frame").problem == nil)
        #expect(PlatformLaunchOptions(storageFrame: "bad name\"><script>").problem?.contains("storageFrame") == true)
        #expect(PlatformLaunchOptions(storageFrame: "").problem != nil)
    }
}

@Suite("Launch binding: what a launch post without its cookie leads to")
struct LaunchBindingStepTests {
    let store = MemoryGatewayStore()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func save(_ state: String, storage: Bool) async throws -> LoginState {
        let login = LoginState(
            state: state, nonce: "n-\(state)", registrationID: "reg", targetLinkURI: "https://tool/lti/launch",
            createdAt: now, expiresAt: now.addingTimeInterval(600), loginHint: "hint", restartKey: storage ? "restart-\(state)" : nil,
            storageSecretDigest: storage ? PlatformStorageSecret.digest("secret") : nil,
            storageFrame: storage ? "post_message_forwarding" : nil)
        try await store.saveLoginState(login)
        return login
    }

    func step(
        _ state: String?, cookie: (String, Bool)? = nil, secret: String? = nil, failed: Bool = false, sameOrigin: Bool = true
    ) async throws -> LaunchBindingStep {
        try await LaunchBindingResolver(states: store).step(
            state: state,
            evidence: LaunchBindingEvidence(
                cookie: cookie.map { (value: $0.0, partitioned: $0.1) }, storageSecret: secret,
                storageFailed: failed, postedByGatewayPage: sameOrigin),
            now: now)
    }

    @Test("a storage secret posted from another site is refused (rule Launch 1), before any state is read")
    func foreignSecret() async throws {
        _ = try await save("s1", storage: true)
        await #expect(throws: LaunchRefusal(.storageSecretForeign, "This launch's browser secret was posted from another site.", rule: "Launch 1")) {
            try await step("s1", secret: "posted", sameOrigin: false)
        }
        // A cookie needs no same-origin post: the browser itself proves it.
        #expect(try await step("s1", cookie: ("s1", false), sameOrigin: false) == .validate(.cookie("s1", partitioned: false)))
    }

    @Test(
        "a hostile lti_storage_target is ignored: only _parent or a plain frame name",
        arguments: [
            "top", "opener", "parent", "self", "window", "frames", "length", "0", "12", "a b", "x\"><script>", String(repeating: "f", count: 65),
        ])
    func hostileStorageTarget(target: String) {
        #expect(PlatformStorageDecision.frame(storageTarget: target, options: PlatformLaunchOptions(), fetchDestination: "iframe") == nil)
        #expect(PlatformLaunchOptions(storageFrame: target).problem != nil)
    }

    @Test("a storage origin must be an origin: https (http only on loopback), nothing after the port")
    func storageOrigin() {
        for good in ["https://school.instructure.com", "https://lms.example.edu:8443", "http://localhost:9000"] {
            #expect(PlatformLaunchOptions(storageOrigin: good).problem == nil, "\(good)")
        }
        for bad in ["*", "http://school.example.edu", "https://school.example.edu/path", "school.example.edu", "https://u@x.example"] {
            #expect(PlatformLaunchOptions(storageOrigin: bad).problem?.contains("storageOrigin") == true, "\(bad)")
        }
    }

    @Test("a cookie or a posted secret goes straight to validation")
    func evidenceValidates() async throws {
        _ = try await save("s1", storage: true)
        #expect(try await step("s1", cookie: ("s1", true)) == .validate(.cookie("s1", partitioned: true)))
        #expect(try await step("s1", secret: "posted") == .validate(.platformStorage(secret: "posted")))
        #expect(try await step("s1", cookie: ("s1", false), secret: "posted") == .validate(.cookie("s1", partitioned: false)))
    }

    @Test("a storage login without its cookie reads the platform's storage once; after a failure, a new window")
    func storageLogin() async throws {
        let login = try await save("s1", storage: true)
        #expect(
            try await step("s1")
                == .readPlatformStorage(
                    key: PlatformStorageSecret.key(forState: "s1"), frame: "post_message_forwarding",
                    registrationID: "reg"))
        #expect(try await step("s1", failed: true) == .offerNewWindow(restartKey: try #require(login.restartKey), registrationID: "reg"))
    }

    @Test("a login without storage and without its cookie is offered a new window")
    func plainLogin() async throws {
        let login = try await save("s2", storage: false)
        #expect(login.restartKey == nil)
        // The restart key is given now, once: a second look offers the same one.
        guard case .offerNewWindow(let key, _) = try await step("s2") else {
            Issue.record("no new window offered")
            return
        }
        #expect(try await step("s2") == .offerNewWindow(restartKey: key, registrationID: "reg"))
        #expect(try await store.loginState(restartKey: key, now: now)?.state == "s2")
    }

    @Test("an unknown, missing, oversized or expired state goes to validation without binding (refused there)")
    func unknownState() async throws {
        _ = try await save("s3", storage: true)
        #expect(try await step("never-issued") == .validate(.none))
        #expect(try await step(nil) == .validate(.none))
        #expect(try await step(String(repeating: "s", count: LaunchBindingResolver.maxStateLength + 1)) == .validate(.none))
        let later = try await LaunchBindingResolver(states: store).step(
            state: "s3", evidence: LaunchBindingEvidence(cookie: nil, storageSecret: nil, storageFailed: false, postedByGatewayPage: true),
            now: now.addingTimeInterval(601))
        #expect(later == .validate(.none))
    }
}
