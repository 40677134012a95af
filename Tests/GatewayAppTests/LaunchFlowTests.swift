import Foundation
import GatewayApp
import GatewayStorage
import GatewaySupport
import LTICore
import LTITestSupport
import NIOHTTP1
import Sandbox
import Testing

/// Login → launch → lab, through the real server over loopback, with the simulated LMS and the sandbox.
@Suite("End to end: LMS launch into a Skillable lab")
struct LaunchFlowTests {
    @Test("an LMS launch lands the learner in the lab, with the launch recorded")
    func happyPath() async throws {
        try await withEndToEnd { e2e in
            let login = try await e2e.login(e2e.platformA)
            // What the platform receives: the OIDC authentication request to its auth endpoint.
            #expect(login.redirect.hasPrefix("http://127.0.0.1:\(e2e.platformPort)/auth-a?"))
            let query = Dictionary(uniqueKeysWithValues: (URLComponents(string: login.redirect)?.queryItems ?? []).map { ($0.name, $0.value ?? "") })
            #expect(query["redirect_uri"] == e2e.baseURL + "/lti/launch")
            #expect(query["lti_message_hint"] == "hint-123" && query["login_hint"] == "user-hint" && query["client_id"] == "client-a")
            #expect(
                query["scope"] == "openid" && query["response_type"] == "id_token" && query["response_mode"] == "form_post"
                    && query["prompt"] == "none")
            // The state cookie: bound to this browser, usable in an LMS iframe, invisible to scripts.
            #expect(login.setCookie.contains("HttpOnly") && login.setCookie.contains("Secure") && login.setCookie.contains("SameSite=None"))
            // __Host-: only Secure, Path=/ and no Domain, so no sibling subdomain or plain-http page can plant one.
            #expect(login.setCookie.hasPrefix("__Host-lti_gw_state_") && login.setCookie.contains("Path=/;") && !login.setCookie.contains("Domain"))

            let token = e2e.platformA.sign(e2e.claims(e2e.platformA, login))
            let launch = try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie)
            #expect(launch.status == 303)
            let labURL = try #require(launch.location)
            #expect(labURL.hasPrefix(e2e.baseURL + "/sandbox/skillable/lab/"))
            let lab = try await e2e.request(.GET, labURL)
            #expect(lab.status == 200 && lab.body.contains("Create a Virtual Machine in Azure") && lab.body.contains("Ada Lovelace"))

            // Skillable got an opaque user id, never the email, plus the names and email the LMS shared.
            let sandbox = try #require(e2e.gateway.skillableSandbox)
            let sent = try #require(await sandbox.state.lastQuery["launch"])
            // Opaque: a digest (hex), never the email, the names or the LMS's own user id.
            let userID = try #require(sent["userid"])
            #expect(userID.hasPrefix("lti-") && userID.dropFirst(4).allSatisfy(\.isHexDigit), "\(userID)")
            #expect(!userID.contains("example.edu") && !userID.contains("Ada") && !userID.contains("learner-42"))
            #expect(sent["email"] == "ada@example.edu" && sent["firstname"] == "Ada" && sent["lastname"] == "Lovelace")
            #expect(sent["labid"] == "1001")

            // Recorded: who, platform, deployment, lab, outcome, lab instance id.
            let record = try #require(try await e2e.gateway.store.recentLaunches(limit: 1).first)
            #expect(record.outcome == "launched" && record.labID == "1001" && record.registrationID == e2e.registrationA.id)
            #expect(record.deploymentID == "dep-a" && record.subject == "learner-42" && record.learnerID == sent["userid"])
            #expect(record.labInstanceID != nil && labURL.hasSuffix("/" + (record.labInstanceID ?? "-")))
            #expect(record.id == launch.reference)

            // The same learner later gets the same opaque id.
            _ = try await e2e.fullLaunch(labID: "1002")
            #expect(await sandbox.state.lastQuery["launch"]?["userid"] == sent["userid"])
        }
    }

    @Test("a browser keeps at most eight logins' state cookies of each kind: a login expires the oldest beyond them")
    func stateCookiesBounded() async throws {
        try await withEndToEnd { e2e in
            let plain = (0..<10).map { "__Host-lti_gw_state_old\($0)=s\($0)" }
            let partitioned = (0..<3).map { "__Host-lti_gw_pstate_old\($0)=s\($0)" }
            let cookie = (["theme=dark"] + plain + partitioned).joined(separator: "; ")
            let query = FormEncoding.encode([
                ("iss", e2e.platformA.issuer), ("login_hint", "user-hint"), ("target_link_uri", e2e.baseURL + "/lti/launch"),
                ("client_id", e2e.platformA.clientID),
            ])
            let login = try await e2e.request(.GET, "/lti/login?" + query, cookie: cookie)
            #expect(login.status == 302)
            let setCookies = login.headers["Set-Cookie"]
            let expired = setCookies.filter { $0.contains("Max-Age=0") }.compactMap { $0.split(separator: "=").first.map(String.init) }
            // 10 old plain ones + the new one: the three oldest go; 3 partitioned + 1 new: none goes; other cookies are not ours.
            #expect(expired == ["__Host-lti_gw_state_old0", "__Host-lti_gw_state_old1", "__Host-lti_gw_state_old2"], "\(expired)")
            #expect(setCookies.filter { !$0.contains("Max-Age=0") }.count == 2)
        }
    }

    @Test("a launch's id_token and state are read from the POST body only: in the query string they count for nothing")
    func launchParametersFromBodyOnly() async throws {
        try await withEndToEnd { e2e in
            let login = try await e2e.login(e2e.platformA)
            let token = e2e.platformA.sign(e2e.claims(e2e.platformA, login))
            let query = FormEncoding.encode([("id_token", token), ("state", login.state)])
            let inQuery = try await e2e.request(.POST, "/lti/launch?" + query, form: [], cookie: login.cookie)
            #expect(inQuery.status == 400)
            let reference = try #require(inQuery.reference)
            #expect(!e2e.logs.lines(containing: "gw.request.id=\(reference)").filter { $0.contains("gw.error=state_missing") }.isEmpty)
            #expect(await e2e.gateway.skillableSandbox?.state.lastQuery["launch"] == nil)
            // The state was not consumed: the same launch in the body goes through.
            let inBody = try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie)
            #expect(inBody.status == 303)
        }
    }

    @Test("platform B's learners launch too: registrations are separate")
    func secondPlatform() async throws {
        try await withEndToEnd { e2e in
            let response = try await e2e.fullLaunch(e2e.platformB)
            #expect(response.status == 303, "\(response.body)")
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.registrationID == e2e.registrationB.id)
        }
    }

    @Test("a link without labid gets a page naming the problem, and Skillable is not called")
    func missingLabID() async throws {
        try await withEndToEnd { e2e in
            let response = try await e2e.fullLaunch(labID: nil)
            #expect(response.status == 400)
            #expect(response.body.contains("does not name a lab") && response.body.contains("labid"))
            #expect(await e2e.sandboxCalls == 0)
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "labid_missing")
            let invalid = try await e2e.fullLaunch(labID: "<script>alert(1)</script>")
            #expect(invalid.status == 400 && !invalid.body.contains("<script>"))
        }
    }

    @Test(
        "Skillable results other than success get a page by cause, with the reference id, recorded with the raw code",
        arguments: [
            (3, 503, "No lab capacity"), (20, 409, "Too many labs"), (6, 409, "saved copy"), (140, 502, "refused the request"),
            (160, 409, "More information"), (110, 503, "not available"),
        ])
    func skillableResults(code: Int, status: Int, text: String) async throws {
        try await withEndToEnd { e2e in
            await e2e.gateway.skillableSandbox?.state.scriptLaunchResults([code])
            let response = try await e2e.fullLaunch()
            #expect(response.status == status)
            #expect(response.body.contains(text))
            #expect(!response.body.contains("· rule"))  // vendor refusals name no LTI rule
            let reference = try #require(response.reference)
            #expect(response.body.contains(reference))
            let record = try #require(try await e2e.gateway.store.launch(id: reference))
            #expect(record.vendorResultCode == code && record.outcome == "skillable_result_\(code)")
            #expect(!e2e.logs.lines(containing: "gw.request.id=\(reference)").filter { $0.contains("skillable.result=\(code)") }.isEmpty)
        }
    }

    @Test("a lab Skillable does not have or cannot launch (Result 0 naming its profile) is not available: opening it again will not help")
    func labNotAvailable() async throws {
        try await withEndToEnd { e2e in
            let missing = try await e2e.fullLaunch(labID: "9999")  // no such profile in the sandbox
            #expect(missing.status == 400 && missing.body.contains("This lab is not available") && missing.body.contains("will not help"))
            #expect(!missing.body.contains("try again"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "lab_unavailable")
            let notLaunchable = try await e2e.fullLaunch(labID: "1004")  // a profile that is not Complete
            #expect(notLaunchable.status == 400 && notLaunchable.body.contains("This lab is not available"))
            // Any other Result 0 stays a failure worth another try.
            await e2e.gateway.skillableSandbox?.state.scriptLaunchResults([0])
            let other = try await e2e.fullLaunch()
            #expect(other.status == 502 && other.body.contains("could not start this lab") && other.body.contains("try again"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skillable_result_0")
        }
    }

    @Test("a refusal after the launch was validated links back to the course (launch_presentation.return_url), only an https one")
    func backToTheCourse() async throws {
        try await withEndToEnd { e2e in
            func launch(returnURL: String?) async throws -> BrowserResponse {
                try await e2e.fullLaunch(labID: nil) { claims in
                    if let returnURL { claims[LTIClaim.launchPresentation] = ["document_target": "iframe", "return_url": returnURL] }
                }
            }
            let linked = try await launch(returnURL: "https://lms.example.edu/courses/9/modules?a=1&b=\"2")
            #expect(
                linked.status == 400
                    && linked.body.contains(#"href="https://lms.example.edu/courses/9/modules?a=1&amp;b=&quot;2">Back to your course</a>"#))
            for unsafe in ["javascript:alert(1)", "http://lms.example.edu/course", "//lms.example.edu/x", "data:text/html,hi"] {
                let page = try await launch(returnURL: unsafe)
                #expect(page.status == 400 && !page.body.contains("Back to your course") && !page.body.contains(unsafe), "\(unsafe)")
            }
            #expect(try await launch(returnURL: nil).body.contains("Back to your course") == false)
            // Each learner's page carries their own way back: pages with one are not served from the shared cache.
            let other = try await launch(returnURL: "https://lms.example.edu/courses/10")
            #expect(other.body.contains("courses/10") && !other.body.contains("courses/9"))
        }
    }

    @Test("a learner is written when new, changed or not seen for an hour; a repeated launch writes nothing")
    func identityWrittenWhenChanged() async throws {
        try await withEndToEnd { e2e in
            func stored() async throws -> LearnerIdentity {
                try #require(
                    try await e2e.gateway.store.identity(
                        issuer: e2e.platformA.issuer, trustAnchor: e2e.registrationA.jwksURL, subject: "steady-learner"))
            }
            let learner: (inout [String: Any]) -> Void = { $0["sub"] = "steady-learner" }
            #expect(try await e2e.fullLaunch(labID: nil, learner).status == 400)
            let first = try await stored()
            e2e.clock.advance(600)
            #expect(try await e2e.fullLaunch(labID: nil, learner).status == 400)
            #expect(try await stored() == first)  // unchanged: not written
            e2e.clock.advance(60)
            #expect(
                try await e2e.fullLaunch(labID: nil) {
                    $0["sub"] = "steady-learner"; $0["email"] = "new@example.edu"
                }.status == 400)
            let renamed = try await stored()
            #expect(renamed.email == "new@example.edu" && renamed.id == first.id && renamed.lastSeen > first.lastSeen)
            e2e.clock.advance(3601)
            #expect(
                try await e2e.fullLaunch(labID: nil) {
                    $0["sub"] = "steady-learner"; $0["email"] = "new@example.edu"
                }.status == 400)
            #expect(try await stored().lastSeen > renamed.lastSeen)  // an hour on: seen again
        }
    }

    @Test("Skillable down on every attempt: a clear page, no lab, the launch recorded as unavailable")
    func skillableDown() async throws {
        try await withEndToEnd { e2e in
            await e2e.gateway.skillableSandbox?.state.scriptFailures([.serverError, .serverError, .serverError], command: "launch")
            let response = try await e2e.fullLaunch()
            #expect(response.status == 502)
            #expect(response.body.contains("not answering") && !response.body.contains("Server Error"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skillable_unavailable")
        }
    }

    @Test("two racing posts of one launch: exactly one lab, the other refused")
    func racingPosts() async throws {
        try await withEndToEnd { e2e in
            let login = try await e2e.login(e2e.platformA)
            let token = e2e.platformA.sign(e2e.claims(e2e.platformA, login))
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie).status } }
                var all: [Int] = []
                for try await status in group { all.append(status) }
                return all.sorted()
            }
            #expect(statuses == [303, 401, 401, 401])
            #expect(await e2e.gateway.skillableSandbox?.state.calls["launch"] == 1)
        }
    }

    @Test("a platform that rotates its key: the unknown kid triggers one re-fetch, then launches work; re-fetches are rate-limited")
    func platformKeyRotation() async throws {
        try await withEndToEnd(configure: { $0.lti.jwksRefetchInterval = .seconds(30) }) { e2e in
            #expect(try await e2e.fullLaunch().status == 303)
            #expect(e2e.platformServer.fetchCount("/jwks-a") == 1)
            #expect(try await e2e.fullLaunch().status == 303)
            #expect(e2e.platformServer.fetchCount("/jwks-a") == 1)  // cached per URL

            let rotated = TestPlatform(
                issuer: e2e.platformA.issuer, clientID: e2e.platformA.clientID, deploymentID: "dep-a",
                kid: "a-key-2", privateKey: TestKeys.attacker)
            e2e.platformServer.publish("/jwks-a", TestPlatform.jwks([("a-key-1", TestKeys.platformA), ("a-key-2", TestKeys.attacker)]))
            e2e.clock.advance(31)  // past the re-fetch interval
            #expect(try await e2e.fullLaunch(rotated) { $0["sub"] = "learner-after-rotation" }.status == 303)
            #expect(e2e.platformServer.fetchCount("/jwks-a") == 2)
            // Another unknown kid right away: refused without hammering the platform.
            let unknown = try await e2e.fullLaunch(
                TestPlatform(
                    issuer: e2e.platformA.issuer, clientID: "client-a", deploymentID: "dep-a",
                    kid: "a-key-3", privateKey: TestKeys.attacker))
            #expect(unknown.status == 401)
            #expect(e2e.platformServer.fetchCount("/jwks-a") == 2)
        }
    }

    @Test("login refusals are pages with a reason and reference: unknown issuer, missing parameters, foreign target")
    func loginRefusals() async throws {
        try await withEndToEnd { e2e in
            let unknown = try await e2e.request(
                .GET, "/lti/login?iss=https%3A%2F%2Fnope.example&login_hint=x&target_link_uri=\(e2e.baseURL)/lti/launch")
            #expect(unknown.status == 400 && unknown.body.contains("No platform is registered"))
            let missing = try await e2e.request(.POST, "/lti/login", form: [("iss", e2e.platformA.issuer)])
            #expect(missing.status == 400 && missing.body.contains("login_hint"))
            let foreign = try await e2e.request(
                .POST, "/lti/login",
                form: [
                    ("iss", e2e.platformA.issuer), ("login_hint", "x"),
                    ("target_link_uri", "https://evil.example/"),
                ])
            #expect(foreign.status == 400 && foreign.body.contains("outside this gateway"))
            for response in [unknown, missing, foreign] {
                let reference = try #require(response.reference)
                #expect(response.body.contains(reference))
                #expect(!e2e.logs.lines(containing: "gw.request.id=\(reference)").isEmpty)
            }
        }
    }

    @Test("health, readiness, metrics and the tool's JWKS")
    func operations() async throws {
        try await withEndToEnd { e2e in
            _ = try await e2e.fullLaunch()
            _ = try await e2e.fullLaunch(labID: nil)
            #expect(try await e2e.request(.GET, "/healthz").status == 200)
            let ready = try await e2e.request(.GET, "/readyz")
            // The built-in fakes answer here, and readiness says so: no one mistakes a demo for a deployment.
            #expect(ready.status == 200 && ready.body.contains("sandbox: fake Skillable and SkyPrep"))
            #expect(!e2e.logs.lines(containing: "SANDBOX: the built-in fakes answer").isEmpty)
            // Metrics only with the operators' token: not to anyone on the learner-facing listener.
            #expect(try await e2e.request(.GET, "/metrics").status == 401)
            #expect(try await e2e.request(.GET, "/metrics", headers: [("Authorization", "Bearer wrong-token")]).status == 401)
            let metrics = try await e2e.metrics()
            #expect(metrics.contains(#"lti_launches_total{outcome="launched"}"#))
            #expect(metrics.contains(#"lti_launches_total{outcome="labid_missing"}"#))
            #expect(metrics.contains("skillable_request_duration_seconds"))
            #expect(metrics.contains(#"http_route="/lti/launch""#))
            let jwks = try await e2e.request(.GET, "/.well-known/jwks.json")
            #expect(jwks.status == 200 && jwks.headers.first(name: "Cache-Control")?.contains("max-age") == true)
            let document = try JSONSerialization.jsonObject(with: Data(jwks.body.utf8)) as? [String: [[String: String]]]
            let key = try #require(document?["keys"]?.first)
            #expect(key["kty"] == "RSA" && key["alg"] == "RS256" && key["use"] == "sig" && key["kid"] != nil && key["n"] != nil)
            #expect(key["d"] == nil && key["p"] == nil && key["q"] == nil)
            let missing = try await e2e.request(.GET, "/no/such/page")
            #expect(missing.status == 404 && missing.body.contains("Page not found"))
        }
    }
}

@Suite("No open redirect (checklist \"Launch\" rule 12)")
struct RedirectPolicyTests {
    @Test("a lab URL on a host other than the gateway's, Skillable's or the configured lab hosts is never followed")
    func foreignLabURL() async throws {
        try await withEndToEnd { e2e in
            for (index, foreign) in [
                "https://evil.example/phish", "javascript:alert(1)", "https://labondemand.com.evil.example/x",
                "http://labs.labondemand.com/plain-http",
            ].enumerated() {
                await e2e.gateway.skillableSandbox?.state.scriptLabURLs([foreign])
                let response = try await e2e.fullLaunch { $0["sub"] = "redirect-\(index)" }
                #expect(response.status == 502, "\(foreign)")
                #expect(response.location == nil && !response.body.contains(foreign))
                #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "lab_url_refused")
            }
            // The operator's log names the refused host (never the whole URL) and the setting that allows more.
            #expect(e2e.logs.lines(containing: "evil.example, which is not an allowed host (see SKILLABLE_LAB_HOSTS)").count >= 1)
            #expect(e2e.logs.lines(containing: "/phish").isEmpty)
            await e2e.gateway.skillableSandbox?.state.scriptLabURLs(["https://labs.labondemand.com/LabClient/abc"])
            let allowed = try await e2e.fullLaunch { $0["sub"] = "redirect-allowed" }
            #expect(allowed.status == 303 && allowed.location == "https://labs.labondemand.com/LabClient/abc")
        }
    }
}

@Suite("Background clean-up")
struct CleanupTests {
    @Test("expired login states are deleted by the background service")
    func expiredStateCleaned() async throws {
        try await withEndToEnd(configure: { $0.server.cleanupInterval = .milliseconds(200) }) { e2e in
            _ = try await e2e.login(e2e.platformA)
            _ = try await e2e.login(e2e.platformA)
            e2e.clock.advance(700)
            let cleaned = await eventually { !e2e.logs.lines(containing: "gw.cleanup.rows=2").isEmpty }
            #expect(cleaned)
            // The service got there first: nothing expired is left for a manual clean-up.
            #expect(try await e2e.gateway.store.deleteExpired(now: e2e.clock.now) == 0)
        }
    }
}

@Suite("Learner pages: advice by cause, and a launch address opened directly")
struct LearnerAdviceTests {
    @Test("a refusal a fresh launch can get past says to open the activity again; one it cannot says whom to tell, with the reference")
    func adviceByCause() async throws {
        try await withEndToEnd { e2e in
            let login = try await e2e.login(e2e.platformA)
            let stale = try await e2e.launch(
                idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, login)), state: "no-such-state", cookie: login.cookie)
            #expect(stale.status == 401 && stale.body.contains("open the activity again") && !stale.body.contains("will not help"), "\(stale.body)")
            let unknownDeployment = try await e2e.fullLaunch { $0[LTIClaim.deploymentID] = "another-install" }
            #expect(unknownDeployment.status == 400, "\(unknownDeployment.body)")
            #expect(unknownDeployment.body.contains("will not help") && unknownDeployment.body.contains("instructor or LMS administrator"))
            #expect(!unknownDeployment.body.contains("open the activity again"))
            let reference = try #require(unknownDeployment.reference)
            #expect(unknownDeployment.body.contains("When you ask for help, give this. Reference: <code>\(reference)</code> · rule "))
        }
    }

    @Test("reloading or bookmarking the launch address explains that launches start from the course")
    func launchAddressOpenedDirectly() async throws {
        try await withEndToEnd { e2e in
            for path in ["/lti/launch", "/lti/deep-link"] {
                let page = try await e2e.request(.GET, path)
                #expect(page.status == 405 && page.body.contains("Open this activity from your course"), "\(path): \(page.body)")
            }
        }
    }
}
