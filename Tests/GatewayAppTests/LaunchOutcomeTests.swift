import Foundation
import GatewayApp
import GatewayStorage
import LTICore
import LTITestSupport
import NIOHTTP1
import Sandbox
import Skillable
import Testing

/// Every Skillable launch outcome, through the real server against the sandbox.
@Suite("End to end: every Skillable launch outcome")
struct LaunchOutcomeTests {
    static func sandbox(_ e2e: EndToEnd) throws -> SkillableSandboxState { try #require(e2e.gateway.skillableSandbox).state }

    /// Instances of `user`'s labs in the sandbox, by state.
    static func instances(_ e2e: EndToEnd, learner subject: String) async throws -> [SkillableSandboxState.Instance] {
        let userID = "lti-" + (await identity(e2e, subject)).dropFirst(4)
        return try await sandbox(e2e).instances.values.filter { $0.userID == String(userID) }.sorted { $0.id < $1.id }
    }

    static func identity(_ e2e: EndToEnd, _ subject: String) async -> String {
        (try? await e2e.gateway.store.identity(issuer: e2e.platformA.issuer, trustAnchor: e2e.registrationA.jwksURL, subject: subject)?.id)
            ?? "lti-unknown"
    }

    @Test("Result 2: the too-many-labs page lists the learner's labs; Resume, End (confirmed) and Launch the new lab work")
    func tooManyActiveLabs() async throws {
        try await withEndToEnd { e2e in
            let courseURL = "https://lms.example.edu/course/9?from=lab&x=1"
            let learner: (inout [String: Any]) -> Void = {
                $0["sub"] = "busy-learner"
                $0[LTIClaim.launchPresentation] = ["document_target": "iframe", "return_url": courseURL]
            }
            #expect(try await e2e.fullLaunch(labID: "1001", learner).status == 303)
            #expect(try await e2e.fullLaunch(labID: "1002", learner).status == 303)
            let page = try await e2e.fullLaunch(labID: "1003", learner)  // the sandbox allows 2 running labs
            #expect(page.status == 200)
            #expect(page.body.contains("<h1>You have too many labs running</h1>"))
            #expect(page.body.contains("Create a Virtual Machine in Azure") && page.body.contains("Configure Cisco IOS Routing"))
            // Times: in words from now, and exact (UTC without script; the page's script shows the learner's time zone).
            #expect(page.body.contains("Started <time datetime=\"") && page.body.contains("UTC</time>"))
            #expect(page.body.range(of: #"· ends in [0-9]+ (minutes|hours?) \(<time"#, options: .regularExpression) != nil)
            // The page's launch names the lab (the LMS link's title); End looks destructive, Resume secondary; a way back.
            #expect(page.body.contains(">Launch Week 1 lab</button>"))
            #expect(page.body.contains(#"class="destructive" aria-label="End Create a Virtual Machine in Azure""#))
            #expect(page.body.contains(#"class="secondary" aria-label="Resume Create a Virtual Machine in Azure""#))
            #expect(page.body.contains(#"href="https://lms.example.edu/course/9?from=lab&amp;x=1">Back to your course</a>"#))
            let running = try await Self.instances(e2e, learner: "busy-learner")
            #expect(Set(Page.attribute(page.body, named: "value", in: "instance")) == Set(running.map { String($0.id) }))
            let session = try #require(Page.attribute(page.body, named: "value", in: "session").first)
            #expect(!page.body.contains("?session=") && !page.body.contains("instance="))  // nothing in URLs
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.vendorResultCode == 2)

            // Resume a running lab: a fresh access URL into that lab.
            let first = running[0]
            let resumed = try await e2e.request(.POST, "/lti/labs/resume", form: [("session", session), ("instance", String(first.id))])
            #expect(resumed.status == 303 && resumed.location?.hasSuffix("/lab/\(first.id)") == true)
            #expect(await (try Self.sandbox(e2e)).calls["labaccessurl"] == 1)

            // End asks first; confirmed, it cancels the lab and shows the list again.
            let confirm = try await e2e.request(.POST, "/lti/labs/end", form: [("session", session), ("instance", String(first.id))])
            #expect(confirm.status == 200 && confirm.body.contains("End Create a Virtual Machine in Azure"))
            #expect(await (try Self.sandbox(e2e)).instances[first.id]?.state == .running)
            let ended = try await e2e.request(
                .POST, "/lti/labs/end", form: [("session", session), ("instance", String(first.id)), ("confirm", "yes")])
            #expect(ended.status == 200 && ended.body.contains("<h1>Create a Virtual Machine in Azure has ended</h1>"))
            #expect(!ended.body.contains("too many labs running") && ended.body.contains("You can launch Week 1 lab now"))
            #expect(ended.body.contains(">Back to your course</a>"))  // the page's session keeps the way back
            #expect(await (try Self.sandbox(e2e)).instances[first.id]?.state == .cancelled)
            #expect(Page.attribute(ended.body, named: "value", in: "instance").contains(String(first.id)) == false)

            // A slot is free: launch the new lab.
            let launched = try await e2e.request(.POST, "/lti/labs/launch", form: [("session", session)])
            #expect(launched.status == 303)
            let now = try await Self.instances(e2e, learner: "busy-learner").filter { $0.state == .running }
            #expect(now.map(\.labProfileID).sorted() == [1002, 1003])
            // The page's launch was its one: posting it again (a double click, a replay) starts no second lab.
            let again = try await e2e.request(.POST, "/lti/labs/launch", form: [("session", session)])
            #expect(again.status == 409 && again.body.contains("already started its lab"))
            #expect(try await Self.instances(e2e, learner: "busy-learner").filter { $0.state == .running }.count == 2)
            // The page's handle is random: nothing of the learner in it, or anywhere in the page's forms.
            #expect(session.count == 43 && !session.contains("."))
        }
    }

    @Test("a page's launch that started no lab (Skillable down) can be tried again; one that started a lab cannot")
    func launchGivenBackAfterAFailure() async throws {
        try await withEndToEnd { e2e in
            let learner: (inout [String: Any]) -> Void = { $0["sub"] = "unlucky-learner" }
            _ = try await e2e.fullLaunch(labID: "1001", learner)
            _ = try await e2e.fullLaunch(labID: "1002", learner)
            let page = try await e2e.fullLaunch(labID: "1003", learner)
            let session = try #require(Page.attribute(page.body, named: "value", in: "session").first)
            await (try Self.sandbox(e2e)).scriptFailures([.serverError, .serverError, .serverError], command: "launch")
            let down = try await e2e.request(.POST, "/lti/labs/launch", form: [("session", session)])
            #expect(down.status == 502, "\(down.status)")
            // Skillable is back: the same page's launch is answered (here: still too many labs), not "already started".
            let again = try await e2e.request(.POST, "/lti/labs/launch", form: [("session", session)])
            #expect(again.status == 200 && again.body.contains("too many labs running"), "\(again.status)")
        }
    }

    @Test("the too-many-labs page's actions refuse forged sessions and another learner's labs")
    func actionsBoundToTheLearner() async throws {
        try await withEndToEnd { e2e in
            for subject in ["victim", "attacker"] {
                for lab in ["1001", "1002"] { _ = try await e2e.fullLaunch(labID: lab) { $0["sub"] = subject } }
            }
            let attackerPage = try await e2e.fullLaunch(labID: "1003") { $0["sub"] = "attacker" }
            let attackerSession = try #require(Page.attribute(attackerPage.body, named: "value", in: "session").first)
            let victimLab = try #require(try await Self.instances(e2e, learner: "victim").first)

            let steal = try await e2e.request(
                .POST, "/lti/labs/end", form: [("session", attackerSession), ("instance", String(victimLab.id)), ("confirm", "yes")])
            #expect(steal.status == 403)
            let peek = try await e2e.request(.POST, "/lti/labs/resume", form: [("session", attackerSession), ("instance", String(victimLab.id))])
            #expect(peek.status == 403 && peek.location == nil)
            #expect(await (try Self.sandbox(e2e)).instances[victimLab.id]?.state == .running)

            // A handle the gateway never gave out (the real one with a character changed), empty, or garbage: refused.
            let last = attackerSession.last == "A" ? "B" : "A"
            let tampered = String(attackerSession.dropLast()) + last
            for forged in [tampered, "", "garbage"] {
                let response = try await e2e.request(
                    .POST, "/lti/labs/end", form: [("session", forged), ("instance", String(victimLab.id)), ("confirm", "yes")])
                #expect(response.status == 400 && response.body.contains("open the lab again"))
            }
            #expect(await (try Self.sandbox(e2e)).instances[victimLab.id]?.state == .running)

            // An expired session.
            e2e.clock.advance(901)
            let late = try await e2e.request(.POST, "/lti/labs/launch", form: [("session", attackerSession)])
            #expect(late.status == 400 && late.body.contains("expired"))
        }
    }

    @Test("a deferred-launch answer sends the learner to the URL Skillable returns")
    func deferredLaunchURL() async throws {
        try await withEndToEnd { e2e in
            await (try Self.sandbox(e2e)).scriptDeferredLaunches(1)
            let response = try await e2e.fullLaunch()
            #expect(response.status == 303 && response.location?.contains("/sandbox/skillable/deferred/") == true)
            #expect(try await e2e.request(.GET, try #require(response.location)).body.contains("Manage your labs"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "deferred_redirect")
        }
        // With the rule off, the same answer is treated as Result 2: the gateway's own page.
        try await withEndToEnd(configure: { $0.skillable.deferredLaunchRule = .off }) { e2e in
            await (try Self.sandbox(e2e)).scriptDeferredLaunches(1)
            let response = try await e2e.fullLaunch()
            #expect(response.status == 200 && response.body.contains("too many labs running"))
        }
    }

    @Test("Result 6: the saved instance of this lab is resumed and the learner sent in")
    func savedLabResumed() async throws {
        try await withEndToEnd { e2e in
            let learner: (inout [String: Any]) -> Void = { $0["sub"] = "saver" }
            #expect(try await e2e.fullLaunch(labID: "1001", learner).status == 303)
            let saved = try #require(try await Self.instances(e2e, learner: "saver").first)
            await (try Self.sandbox(e2e)).save(instanceID: saved.id)
            let response = try await e2e.fullLaunch(labID: "1001", learner)
            #expect(response.status == 303 && response.location?.hasSuffix("/lab/\(saved.id)") == true)
            #expect(await (try Self.sandbox(e2e)).instances[saved.id]?.state == .running)
            #expect(await (try Self.sandbox(e2e)).calls["resume"] == 1)
            let record = try #require(try await e2e.gateway.store.recentLaunches(limit: 1).first)
            #expect(record.outcome == "resumed_saved" && record.vendorResultCode == 6 && record.labInstanceID == String(saved.id))
        }
    }

    @Test("5xx then success: the launch is retried and the learner lands in one lab")
    func retriedAfterServerError() async throws {
        try await withEndToEnd { e2e in
            await (try Self.sandbox(e2e)).scriptFailures([.serverError], command: "launch")
            let response = try await e2e.fullLaunch { $0["sub"] = "retry" }
            #expect(response.status == 303)
            #expect(await (try Self.sandbox(e2e)).calls["launch"] == 2)
            #expect(try await Self.instances(e2e, learner: "retry").count == 1)
            #expect(!e2e.logs.lines(containing: "retrying").isEmpty)
        }
    }

    @Test("a timeout after the request was sent does not start a second lab: the running lab is found and used")
    func timeoutAfterSend() async throws {
        // The client gives up at 1.5 s while the fake holds its answer 3 s: wide enough margins that the fake has
        // started the lab before the gateway looks, also on a saturated machine.
        try await withEndToEnd(configure: { $0.skillable.timeout = .milliseconds(1500) }) { e2e in
            let sandbox = try Self.sandbox(e2e)
            await sandbox.setHangDuration(.seconds(3))
            await sandbox.scriptFailures([.performThenHang], command: "launch")
            let response = try await e2e.fullLaunch { $0["sub"] = "ambiguous" }
            #expect(response.status == 303)
            let labs = try await Self.instances(e2e, learner: "ambiguous")
            #expect(labs.count == 1)
            #expect(response.location?.hasSuffix("/lab/\(labs.first?.id ?? -1)") == true)
            let calls = await sandbox.calls
            #expect(calls["launch"] == 1 && (calls["userrunningandsavedlabs"] ?? 0) >= 1)
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "recovered_running")
        }
    }

    @Test("two concurrent launches of one lab by one learner: one Skillable launch, both browsers in the same lab")
    func doubleClick() async throws {
        try await withEndToEnd { e2e in
            let sandbox = try Self.sandbox(e2e)
            await sandbox.setLatency(.milliseconds(300))
            let first = try await e2e.login(e2e.platformA), second = try await e2e.login(e2e.platformA)
            let posts = [first, second].map { login in
                (e2e.platformA.sign(e2e.claims(e2e.platformA, login) { $0["sub"] = "double-clicker" }), login)
            }
            let responses = try await withThrowingTaskGroup(of: BrowserResponse.self) { group in
                for (token, login) in posts {
                    group.addTask { try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie) }
                }
                var all: [BrowserResponse] = []
                for try await response in group { all.append(response) }
                return all
            }
            #expect(responses.map(\.status) == [303, 303])
            #expect(await sandbox.calls["launch"] == 1)
            let labs = try await Self.instances(e2e, learner: "double-clicker")
            #expect(labs.count == 1)
            #expect(responses.allSatisfy { $0.location?.hasSuffix("/lab/\(labs[0].id)") == true })
            let outcomes = try await e2e.gateway.store.recentLaunches(limit: 2).map(\.outcome).sorted()
            #expect(outcomes == ["joined_launch", "launched"])
        }
    }

    @Test("launch options of the registration reach Skillable: limits, duration, region, language from the locale, tag, context variables")
    func launchOptions() async throws {
        try await withEndToEnd { e2e in
            try await PlatformAdministration.setLaunchOptions(
                store: e2e.gateway.store, registrationID: e2e.registrationA.id,
                options: .init(
                    maxActiveLabs: 4, maxSavedLabs: 1, durationMinutes: 30, regionID: 3, sendContextVariables: true))
            #expect(try await e2e.fullLaunch().status == 303)
            let sent = try #require(await (try Self.sandbox(e2e)).lastQuery["launch"])
            #expect(sent["maxactivelabs"] == "4" && sent["maxsavedlabs"] == "1" && sent["durationminutes"] == "30" && sent["regionid"] == "3")
            #expect(sent["lang"] == "en")
            #expect(sent["tag"] == "lti:\(e2e.registrationA.id):course-9")
            #expect(sent["variable-LtiContextId"] == "course-9" && sent["variable-LtiContextTitle"] == "Networking 101")
            #expect(sent["variable-LtiRoles"] == "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner")

            try await PlatformAdministration.setLaunchOptions(
                store: e2e.gateway.store, registrationID: e2e.registrationA.id,
                options: .init(lang: "fr", sendTag: false))
            _ = try await e2e.fullLaunch(labID: "1002")
            let plain = try #require(await (try Self.sandbox(e2e)).lastQuery["launch"])
            #expect(plain["lang"] == "fr" && plain["tag"] == nil && plain["variable-LtiContextId"] == nil && plain["maxactivelabs"] == nil)
            await #expect(throws: AdministrationError.self) {
                try await PlatformAdministration.setLaunchOptions(
                    store: e2e.gateway.store, registrationID: e2e.registrationA.id,
                    options: .init(durationMinutes: 1))
            }
        }
    }
}

@Suite("Deferred-launch recognition")
struct DeferredLaunchRuleTests {
    func response(_ result: Int, url: String?, fields: [String: String] = [:]) -> SkillableLaunchResponse {
        SkillableLaunchResponse(
            result: SkillableLaunchResult(code: result), url: url, labInstanceID: nil, expires: nil, status: 1,
            error: nil, stringFields: fields)
    }

    @Test("the setting's three forms, and the default")
    func rules() {
        #expect(DeferredLaunchRule(setting: "url-with-non-success") == .urlWithNonSuccess)
        #expect(DeferredLaunchRule(setting: "field:DeferredLaunchUrl") == .field("DeferredLaunchUrl"))
        #expect(DeferredLaunchRule(setting: "off") == .off)
        #expect(DeferredLaunchRule(setting: "sometimes") == nil)
        #expect(DeferredLaunchRule.urlWithNonSuccess.deferredURL(in: response(2, url: "https://x/d")) == "https://x/d")
        #expect(DeferredLaunchRule.urlWithNonSuccess.deferredURL(in: response(1, url: "https://x/lab")) == nil)
        #expect(DeferredLaunchRule.urlWithNonSuccess.deferredURL(in: response(2, url: nil)) == nil)
        #expect(
            DeferredLaunchRule.field("DeferredLaunchUrl").deferredURL(in: response(2, url: nil, fields: ["deferredlaunchurl": "https://x/f"]))
                == "https://x/f")
        #expect(DeferredLaunchRule.off.deferredURL(in: response(2, url: "https://x/d")) == nil)
    }
}
