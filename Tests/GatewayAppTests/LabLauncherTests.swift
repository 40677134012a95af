import Foundation
import GatewayStorage
import GatewaySupport
import LTICore
import LTITestSupport
import Logging
import Skillable
import Testing

@testable import GatewayApp

/// A Skillable that answers from a script, in the vendor's documented shapes, and counts calls.
actor ScriptedSkillable: SkillableLabService {
    /// What the next `Launch` calls answer, in order (then success).
    var launches: [Result<SkillableLaunchResponse, SkillableError>] = []
    /// `UserRunningAndSavedLabs` as Skillable's JSON.
    var userLabsJSON = #"{"RunningLabs":[],"SavedLabs":[],"Status":1}"#
    var labHost = "https://labs.labondemand.com"
    /// When set, `Launch` and `UserRunningAndSavedLabs` answer only after this long (a hung Skillable).
    var hang: Duration?
    private(set) var calls: [String] = []
    /// The Skillable user of each `Launch`, in order.
    private(set) var launchedUsers: [String] = []
    private var nextInstance: Int64 = 500

    func script(_ launches: [Result<SkillableLaunchResponse, SkillableError>], userLabs: String? = nil) {
        self.launches = launches
        if let userLabs { userLabsJSON = userLabs }
    }

    func setLabHost(_ host: String) { labHost = host }
    func setHang(_ duration: Duration) { hang = duration }

    func launch(_ request: SkillableLaunchRequest) async throws -> SkillableLaunchResponse {
        calls.append("Launch")
        launchedUsers.append(request.userID)
        if let hang { try await Task.sleep(for: hang) }
        if !launches.isEmpty { return try launches.removeFirst().get() }
        nextInstance += 1
        return SkillableLaunchResponse(
            result: .success, url: "\(labHost)/lab/\(nextInstance)", labInstanceID: nextInstance,
            expires: nil, status: 1, error: nil)
    }

    func userRunningAndSavedLabs(userID: String) async throws -> SkillableUserLabs {
        calls.append("UserRunningAndSavedLabs")
        if let hang { try await Task.sleep(for: hang) }
        return try JSONDecoder().decode(SkillableUserLabs.self, from: Data(userLabsJSON.utf8))
    }

    func resume(labInstanceID: Int64) async throws -> SkillableURLResponse {
        calls.append("Resume \(labInstanceID)")
        return try JSONDecoder().decode(SkillableURLResponse.self, from: Data(#"{"Url":"\#(labHost)/resumed/\#(labInstanceID)","Status":1}"#.utf8))
    }

    func cancel(labInstanceID: Int64, note: String?) async throws {
        calls.append("Cancel \(labInstanceID)")
    }

    func labAccessURL(labInstanceID: Int64) async throws -> SkillableURLResponse {
        calls.append("LabAccessUrl \(labInstanceID)")
        return try JSONDecoder().decode(SkillableURLResponse.self, from: Data(#"{"Url":"\#(labHost)/access/\#(labInstanceID)","Status":1}"#.utf8))
    }
}

/// A ``LabLauncher`` over a memory store and a scripted Skillable: no HTTP anywhere.
struct LauncherHarness {
    let store = MemoryGatewayStore()
    let skillable = ScriptedSkillable()
    let platform = TestPlatform()
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let launcher: LabLauncher
    let choices: LabChoices

    init(deadline: Duration = .seconds(20)) async throws {
        let policy = LabRedirectPolicy(exactAuthorities: [], hostSuffixes: [".labondemand.com"], sandboxAuthority: nil)
        choices = LabChoices(skillable: skillable, sessions: LabSessions(store: store, lifetime: 900), redirectPolicy: policy)
        let coordinator = LaunchCoordinator(
            skillable: skillable,
            policy: LaunchRetryPolicy(
                maxAttempts: 3, backoff: Backoff(base: .milliseconds(1), cap: .milliseconds(2), jitter: .full), deadline: deadline),
            deferredRule: .urlWithNonSuccess, joinWindow: .zero, logger: Logger(label: "test"))
        launcher = LabLauncher(
            identities: store, skillable: skillable, coordinator: coordinator, redirectPolicy: policy, choices: choices,
            recorder: LaunchRecorder(store: store), provisioning: nil, launchOptions: { _ in PlatformLaunchOptions() })
    }

    func launch(labID: String? = "1001") async throws -> LaunchOutcome {
        var claims = platform.launchClaims(nonce: "n", now: now, toolURL: "https://tool.example", labID: labID)
        if labID == nil { claims[LTIClaim.custom] = nil }
        let payload = try JSONSerialization.data(withJSONObject: claims)
        let token = try JSONDecoder().decode(LTIIDToken.self, from: payload)
        let registration = PlatformRegistration(
            id: "reg", issuer: platform.issuer, clientID: platform.clientID, authURL: "https://lms/auth",
            tokenURL: "https://lms/token", jwksURL: "https://lms/jwks", deploymentIDs: [platform.deploymentID],
            createdAt: now)
        let launch = ValidatedLaunch(
            registration: registration, token: token, messageType: .resourceLinkRequest,
            deploymentID: platform.deploymentID, channel: .cookie)
        return try await launcher.launch(
            launch, trace: LaunchTrace(referenceID: "REF\(UUID().uuidString.prefix(8))", logger: Logger(label: "test")),
            now: now)
    }

    /// The newest launch record's outcome.
    func recordedOutcome() async throws -> String? { try await store.recentLaunches(limit: 1).first?.outcome }

    static func response(_ result: Int, url: String? = nil, instance: Int64? = nil) -> Result<SkillableLaunchResponse, SkillableError> {
        .success(
            SkillableLaunchResponse(
                result: SkillableLaunchResult(code: result), url: url, labInstanceID: instance, expires: nil,
                status: result == 1 ? 1 : 0, error: nil))
    }
}

extension LaunchOutcome {
    var redirectURL: String? { if case .redirect(let url) = self { url } else { nil } }
    var failure: LaunchFailure.Code? { if case .refused(let failure) = self { failure.code } else { nil } }
}

/// Every outcome of a resource-link launch, decided by the launch room alone against a scripted Skillable.
@Suite("Launch outcomes, without HTTP")
struct LabLauncherTests {
    @Test("a started lab is a redirect into it, recorded as launched")
    func started() async throws {
        let h = try await LauncherHarness()
        let outcome = try await h.launch()
        #expect(outcome.redirectURL == "https://labs.labondemand.com/lab/501")
        #expect(try await h.recordedOutcome() == "launched")
        #expect(try await h.store.recentLaunches(limit: 1).first?.labInstanceID == "501")
    }

    @Test("a learner stored with an id of an older rule keeps it: their labs, record and SkyPrep account stay theirs")
    func storedLearnerKeepsTheirID() async throws {
        let h = try await LauncherHarness()
        let legacy = LearnerIdentity(
            id: "lti-stored-before-trust-anchors", issuer: h.platform.issuer, trustAnchor: "https://lms/jwks", subject: "learner-42",
            givenName: "Old", familyName: "Name", email: nil, firstSeen: h.now.addingTimeInterval(-86_400),
            lastSeen: h.now.addingTimeInterval(-86_400))
        _ = try await h.store.upsertIdentity(legacy)
        for _ in 0..<2 {  // the second launch finds the learner in the instance's recent learners
            _ = try await h.launch()
            #expect(await h.skillable.launchedUsers.last == legacy.id)
            #expect(try await h.store.recentLaunches(limit: 1).first?.learnerID == legacy.id)
        }
        let stored = try await h.store.identity(issuer: h.platform.issuer, trustAnchor: "https://lms/jwks", subject: "learner-42")
        #expect(stored?.id == legacy.id && stored?.firstSeen == legacy.firstSeen && stored?.lastSeen == h.now, "\(String(describing: stored))")
        #expect(stored?.givenName != "Old", "the launch's names were not stored")
    }

    @Test(
        "a link without labid, or with one that is not a number, is refused without calling Skillable",
        arguments: [
            (String?.none, LaunchFailure.Code.labIDMissing), ("abc", .labIDInvalid), ("-3", .labIDInvalid), ("12345678901", .labIDInvalid),
        ])
    func labID(labID: String?, expected: LaunchFailure.Code) async throws {
        let h = try await LauncherHarness()
        #expect(try await h.launch(labID: labID).failure == expected)
        #expect(await h.skillable.calls.isEmpty)
        #expect(try await h.recordedOutcome() == expected.identifier)
    }

    @Test("too many labs (Result 2): the learner's labs to choose from, with a token for the page's actions")
    func tooManyLabs() async throws {
        let h = try await LauncherHarness()
        await h.skillable.script(
            [LauncherHarness.response(2)],
            userLabs: """
                {"RunningLabs":[{"LabInstanceId":11,"LabProfileId":1002,"LabProfileName":"Lab two","Start":1800000000,"Expires":1800003600}],
                 "SavedLabs":[{"LabInstanceId":12,"LabProfileId":1003,"LabProfileName":"Lab three"}],"Status":1}
                """)
        guard case .labChoice(let choice) = try await h.launch() else { Issue.record("not a lab choice"); return }
        #expect(choice.running.map(\.labInstanceID) == [11] && choice.saved.map(\.labInstanceID) == [12])
        let session = try await h.choices.session(token: choice.token, now: h.now)
        #expect(session.request.labID == 1001)
        #expect(try await h.recordedOutcome() == "skillable_result_2")
    }

    @Test("a saved copy (Result 6) is resumed; without one to find, a refusal")
    func savedLab() async throws {
        let h = try await LauncherHarness()
        await h.skillable.script(
            [LauncherHarness.response(6)],
            userLabs: #"{"RunningLabs":[],"SavedLabs":[{"LabInstanceId":77,"LabProfileId":1001}],"Status":1}"#)
        #expect(try await h.launch().redirectURL == "https://labs.labondemand.com/resumed/77")
        #expect(try await h.recordedOutcome() == "resumed_saved")
        await h.skillable.script([LauncherHarness.response(6)], userLabs: #"{"RunningLabs":[],"SavedLabs":[],"Status":1}"#)
        #expect(try await h.launch().failure == .skillableResult(.userHasSavedInstance))
    }

    @Test("other results are refusals by cause, recorded with the raw code", arguments: [3, 4, 5, 7, 20])
    func otherResults(code: Int) async throws {
        let h = try await LauncherHarness()
        await h.skillable.script([LauncherHarness.response(code)])
        #expect(try await h.launch().failure == .skillableResult(SkillableLaunchResult(code: code)))
        #expect(try await h.recordedOutcome() == "skillable_result_\(code)")
        #expect(try await h.store.recentLaunches(limit: 1).first?.vendorResultCode == code)
    }

    @Test("a deferred-launch URL is a redirect to it")
    func deferred() async throws {
        let h = try await LauncherHarness()
        await h.skillable.script([LauncherHarness.response(2, url: "https://labs.labondemand.com/deferred/abc")])
        #expect(try await h.launch().redirectURL == "https://labs.labondemand.com/deferred/abc")
        #expect(try await h.recordedOutcome() == "deferred_redirect")
    }

    @Test("Skillable down on every attempt: refused as unavailable after the retries; a request that may have arrived checks running labs first")
    func unavailable() async throws {
        let h = try await LauncherHarness()
        let down = SkillableError(code: .timeout, command: "Launch", message: "timeout", httpStatus: nil, requestMayHaveArrived: true)
        await h.skillable.script([.failure(down), .failure(down), .failure(down)])
        #expect(try await h.launch().failure == .skillableUnavailable)
        #expect(try await h.recordedOutcome() == "skillable_unavailable")
        let calls = await h.skillable.calls
        #expect(calls.filter { $0 == "Launch" }.count == 3)
        #expect(calls.contains("UserRunningAndSavedLabs"), "no look at running labs after a failure that may have reached Skillable")
    }

    @Test("a hung Skillable keeps the learner waiting the launch deadline in all, not a deadline per attempt and check")
    func hungSkillable() async throws {
        let h = try await LauncherHarness(deadline: .milliseconds(300))
        await h.skillable.setHang(.seconds(30))
        let failure = try await withDeadline(.seconds(5)) { try await h.launch().failure }
        #expect(failure == .skillableUnavailable)
        #expect(try await h.recordedOutcome() == "skillable_unavailable")
    }

    @Test("the launch is on record as pending while Skillable starts its lab, then completed in place")
    func pendingWhileStarting() async throws {
        let h = try await LauncherHarness()
        await h.skillable.setHang(.milliseconds(500))
        let launch = Task { try await h.launch() }
        // A crash now would leave this record: the learner and lab of a lab Skillable may be starting.
        let pending = await eventually { try await h.store.recentLaunches(limit: 5).first?.outcome == "pending" }
        #expect(pending, "no record while Skillable was starting the lab")
        // What `lti-gateway launches list --outcome pending` shows an operator meanwhile.
        let listed = PlatformAdministration.launchesTable(try await h.store.recentLaunches(limit: 5).filter { $0.outcome == "pending" })
        #expect(listed.contains(" pending ") && listed.contains("lab=1001"))
        #expect(try await launch.value.redirectURL != nil)
        let records = try await h.store.recentLaunches(limit: 5)
        #expect(records.count == 1 && records.first?.outcome == "launched" && records.first?.labID == "1001")
        #expect(records.first?.labInstanceID != nil)
    }

    @Test("a lab URL on a host that is not allowed is refused, never redirected to")
    func foreignLabURL() async throws {
        let h = try await LauncherHarness()
        await h.skillable.setLabHost("https://evil.example")
        #expect(try await h.launch().failure == .labURLRefused)
        #expect(try await h.recordedOutcome() == "lab_url_refused")
    }

    @Test("the page's actions act only on the learner's own labs: resume, end after confirmation, someone else's lab refused")
    func choiceActions() async throws {
        let h = try await LauncherHarness()
        await h.skillable.script(
            [LauncherHarness.response(2)],
            userLabs: """
                {"RunningLabs":[{"LabInstanceId":11,"LabProfileId":1002,"LabProfileName":"Lab two"}],
                 "SavedLabs":[{"LabInstanceId":12,"LabProfileId":1003,"LabProfileName":"Lab three"}],"Status":1}
                """)
        guard case .labChoice(let choice) = try await h.launch() else { Issue.record("not a lab choice"); return }
        let session = try await h.choices.session(token: choice.token, now: h.now)
        let trace = LaunchTrace(referenceID: "REF", logger: Logger(label: "test"))
        #expect(await h.choices.resume(session, instance: "11", trace: trace).redirectURL == "https://labs.labondemand.com/access/11")
        #expect(await h.choices.resume(session, instance: "12", trace: trace).redirectURL == "https://labs.labondemand.com/resumed/12")
        #expect(await h.choices.resume(session, instance: "99", trace: trace).failure == .labInstanceNotYours)
        #expect(await h.choices.resume(session, instance: nil, trace: trace).failure == .labInstanceMissing)
        guard
            case .confirmEnd(let confirmation) = await h.choices.end(
                session, token: choice.token, instance: "11", confirmed: false,
                trace: trace, now: h.now)
        else {
            Issue.record("no confirmation asked"); return
        }
        #expect(confirmation.lab.labInstanceID == 11)
        #expect(!(await h.skillable.calls.contains("Cancel 11")))
        guard
            case .labChoice(let after) = await h.choices.end(
                session, token: choice.token, instance: "11", confirmed: true,
                trace: trace, now: h.now)
        else {
            Issue.record("no list after ending"); return
        }
        #expect(after.ended == "Lab two")
        #expect(await h.skillable.calls.contains("Cancel 11"))
        await #expect(throws: LaunchFailure.self) { try await h.choices.session(token: "forged", now: h.now) }
        await #expect(throws: LaunchFailure.self) { try await h.choices.session(token: choice.token, now: h.now.addingTimeInterval(901)) }
    }

    @Test("the page's launch starts one lab however often it is posted; its handle is random and carries nothing of the learner")
    func launchOnce() async throws {
        let h = try await LauncherHarness()
        await h.skillable.script([LauncherHarness.response(2)])
        guard case .labChoice(let choice) = try await h.launch() else { Issue.record("not a lab choice"); return }
        // Not a token with contents: 256 random bits, base64url, no dots (a JWT has two).
        #expect(choice.token.count == 43 && !choice.token.contains("."))
        let trace = LaunchTrace(referenceID: "REF", logger: Logger(label: "test"))
        let launches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    guard let session = try? await h.choices.sessionForLaunch(token: choice.token, now: h.now) else { return false }
                    return await h.launcher.start(session, trace: trace, now: h.now).redirectURL != nil
                }
            }
            var started = 0
            for try await didStart in group where didStart { started += 1 }
            return started
        }
        #expect(launches == 1)
        #expect(await h.skillable.calls.filter { $0 == "Launch" }.count == 2)  // the first launch (Result 2), then the page's one
        do {
            _ = try await h.choices.sessionForLaunch(token: choice.token, now: h.now)
            Issue.record("a used launch was allowed again")
        } catch let failure as LaunchFailure {
            #expect(failure.code == .labSessionUsed)
        }
        // Listing and resuming still work for the page after its launch.
        #expect((try? await h.choices.session(token: choice.token, now: h.now)) != nil)
    }
}
