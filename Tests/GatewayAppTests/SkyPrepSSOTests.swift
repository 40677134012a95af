import Foundation
import GatewayApp
import GatewayStorage
import LTICore
import LTITestSupport
import NIOHTTP1
import Sandbox
import Testing

@Suite("End to end: SSO into SkyPrep")
struct SkyPrepSSOTests {
    @Test("destination=skyprep signs the learner in: get_login_key with autocreate and a one-time link, then 303")
    func ssoRedirect() async throws {
        try await withEndToEnd { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let response = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["destination": "skyprep"] }
            #expect(response.status == 303)
            let url = try #require(response.location)
            #expect(url.hasPrefix(e2e.baseURL + "/sandbox/skyprep/login/"))
            #expect(try await e2e.request(.GET, url).body.contains("Signed in to SkyPrep"))
            let sent = try #require(fake.lastForm["get_login_key"])
            #expect(sent["user_email"] == "ada@example.edu" && sent["first_name"] == "Ada" && sent["last_name"] == "Lovelace")
            #expect(sent["autocreate"] == "1" && sent["key_type"] == "otl" && sent["user_groups"] == nil)
            #expect(fake.users.map(\.email) == ["ada@example.edu"])
            #expect(await e2e.gateway.skillableSandbox?.state.totalCalls == 0)
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skyprep_sso")
        }
    }

    @Test("with group sync the LMS course becomes the learner's SkyPrep group, under the platform's prefix; skyprep_course_id also selects SkyPrep")
    func groups() async throws {
        try await withEndToEnd(configure: { $0.skyPrep.groupSync = true }) { e2e in
            #expect(
                try await e2e.gateway.store.setSkyPrepOptions(PlatformSkyPrepOptions(allowedCourseIDs: ["77"]), registrationID: e2e.registrationA.id))
            let response = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77"] }
            #expect(response.status == 303)
            let sent = try #require(e2e.gateway.skyPrepSandbox?.lastForm["get_login_key"])
            // Never a bare course title: a course titled like an administrator's group must not join it.
            #expect(sent["user_groups"] == "LMS: Networking 101" && sent["autocreate_user_groups"] == "1")
            #expect(
                try await e2e.gateway.store.setSkyPrepOptions(
                    PlatformSkyPrepOptions(allowedCourseIDs: ["77"], groupPrefix: "Acme LMS / "), registrationID: e2e.registrationA.id))
            #expect(try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77"] }.status == 303)
            #expect(e2e.gateway.skyPrepSandbox?.lastForm["get_login_key"]?["user_groups"] == "Acme LMS / Networking 101")
        }
    }

    @Test("a link naming a SkyPrep course the platform does not allow is refused (one of several too), with nothing enrolled")
    func courseAllowList() async throws {
        try await withEndToEnd { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let none = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77"] }
            #expect(none.status == 403 && none.body.contains("may not use"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skyprep_course_not_allowed")
            #expect(
                try await e2e.gateway.store.setSkyPrepOptions(PlatformSkyPrepOptions(allowedCourseIDs: ["77"]), registrationID: e2e.registrationA.id))
            let mixed = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77;99"] }
            #expect(mixed.status == 403)
            #expect(fake.calls["enroll_user_in_courses"] == nil && fake.calls["get_login_key"] == nil)
            #expect(try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77"] }.status == 303)
            #expect(fake.calls["enroll_user_in_courses"] == 1)
        }
    }

    @Test("provisioning off: no sign-in into an account the gateway did not create or link, even one with the LMS email (an administrator's)")
    func onlyLinkedAccounts() async throws {
        try await withEndToEnd { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            _ = fake.addUser(email: "ada@example.edu", firstName: "SkyPrep", lastName: "Administrator")
            #expect(try await e2e.gateway.store.setSkyPrepOptions(PlatformSkyPrepOptions(provisioning: false), registrationID: e2e.registrationA.id))
            let refused = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["destination": "skyprep"] }
            #expect(refused.status == 403 && refused.body.contains("Your SkyPrep account is not linked"))
            #expect(fake.calls["get_login_key"] == nil)
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skyprep_account_not_linked")

            // Once an account is linked to this learner, sign-in uses that account's email.
            let learner = try #require(try await e2e.gateway.store.recentLaunches(limit: 1).first?.learnerID)
            try await e2e.gateway.store.saveSkyPrepAccount(
                SkyPrepAccount(
                    learnerID: learner, userID: 4242, email: "ada.linked@example.edu", firstName: "Ada", lastName: "Lovelace", role: "learner",
                    updatedAt: Date()))
            let linked = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["destination": "skyprep"] }
            #expect(linked.status == 303)
            #expect(fake.lastForm["get_login_key"]?["user_email"] == "ada.linked@example.edu")
        }
    }

    @Test("no email from the LMS: a clear page; SkyPrep down: a clear page with the reference id")
    func failures() async throws {
        try await withEndToEnd { e2e in
            let noEmail = try await e2e.fullLaunch(labID: nil) {
                $0[LTIClaim.custom] = ["destination": "skyprep"]; $0["email"] = nil
            }
            #expect(noEmail.status == 400 && noEmail.body.contains("does not share your email"))
            #expect(e2e.gateway.skyPrepSandbox?.calls["get_login_key"] == nil)
            e2e.gateway.skyPrepSandbox?.scriptFailures([.serverError, .serverError, .serverError])
            let down = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["destination": "skyprep"] }
            #expect(down.status == 502 && down.body.contains("SkyPrep is not available"))
            #expect(down.body.contains(try #require(down.reference)))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 1).first?.outcome == "skyprep_unavailable")
        }
    }
}
