import Foundation
import GatewayApp
import GatewayStorage
import GatewaySupport
import LTICore
import LTITestSupport
import Logging
import Sandbox
import ServiceLifecycle
import Synchronization
import Testing

/// Whether the launch that got `response` queued SkyPrep provisioning (it decides before it answers).
func queuedProvisioning(_ e2e: EndToEnd, _ response: BrowserResponse) -> Bool {
    e2e.logs.lines(containing: "gw.request.id=\(response.reference ?? "-")").contains { $0.contains("SkyPrep provisioning queued") }
}

@Suite("End to end: SkyPrep just-in-time provisioning")
struct SkyPrepProvisioningTests {
    /// Retries and polls fast enough for a test.
    static func fastQueue(_ settings: inout GatewaySettings) {
        settings.skyPrep.retryDelay = .milliseconds(200)
        settings.server.jobPollInterval = .milliseconds(100)
    }

    func learnerID(_ e2e: EndToEnd, subject: String = "learner-42") async throws -> String {
        try #require(try await e2e.gateway.store.identity(issuer: e2e.platformA.issuer, trustAnchor: e2e.registrationA.jwksURL, subject: subject)).id
    }

    @Test("a first launch creates the SkyPrep user once; the same names make no call; new names update it")
    func createOnceThenUpdate() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let first = try await e2e.fullLaunch()
            #expect(first.status == 303)
            #expect(queuedProvisioning(e2e, first), "a first launch queues provisioning (and says so)")
            let settled1 = await eventually { try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty && fake.users.count == 1 }
            #expect(settled1)
            let id = try await learnerID(e2e)
            let user = try #require(fake.users.first)
            #expect(user.email == "ada@example.edu" && user.firstName == "Ada" && user.lastName == "Lovelace")
            #expect(user.userIdentifier == id && user.role == "learner")
            let account = try await e2e.gateway.store.skyPrepAccount(learnerID: id)
            #expect(account?.userID == user.id)

            // The launch decides before it answers: nothing queued now means no SkyPrep call can follow from it.
            let again = try await e2e.fullLaunch()
            #expect(again.status == 303)
            #expect(!queuedProvisioning(e2e, again))
            #expect(try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty)
            #expect(fake.calls["create_user"] == 1 && fake.calls["update_user"] == nil && fake.calls["get_users"] == nil)

            #expect(try await e2e.fullLaunch { $0["given_name"] = "Augusta" }.status == 303)
            let settled2 = await eventually { fake.users.first?.firstName == "Augusta" }
            #expect(settled2)
            #expect(fake.calls["create_user"] == 1 && fake.calls["update_user"] == 1)
            let remembered = await eventually { try await e2e.gateway.store.skyPrepAccount(learnerID: id)?.firstName == "Augusta" }
            #expect(remembered)
        }
    }

    @Test("two first launches of one learner at once make one create_user")
    func concurrentFirstLaunches() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let (a, b) = try await (e2e.login(e2e.platformA), e2e.login(e2e.platformA))
            async let first = e2e.launch(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, a)), state: a.state, cookie: a.cookie)
            async let second = e2e.launch(idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, b)), state: b.state, cookie: b.cookie)
            let statuses = try await [first.status, second.status]
            #expect(statuses == [303, 303])
            let settled3 = await eventually { try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty && fake.users.count == 1 }
            #expect(settled3)
            // Both launches had queued their work before answering, and the queue is empty: every job ran.
            #expect(fake.calls["create_user"] == 1 && fake.calls["update_user"] == nil)
            #expect(fake.users.count == 1)
        }
    }

    @Test("SkyPrep down during a lab launch: the lab launches, the provisioning waits in the queue and completes later")
    func outageDoesNotBlockTheLab() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            fake.setOutage(.serverError)
            let response = try await e2e.fullLaunch()
            #expect(response.status == 303)
            #expect(response.location?.contains("/sandbox/skillable/lab/") == true)
            let id = try await learnerID(e2e)
            let settled4 = await eventually { (try await e2e.gateway.store.queuedJobs(limit: 5).first?.lastError?.contains("server_error")) == true }
            #expect(settled4)
            let queued = try #require(try await e2e.gateway.store.queuedJobs(limit: 5).first)
            #expect(queued.key == id && !queued.held)
            #expect(fake.users.isEmpty)
            fake.setOutage(nil)
            let settled5 = await eventually { try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty && fake.users.count == 1 }
            #expect(settled5)
            #expect(try await e2e.gateway.store.skyPrepAccount(learnerID: id) != nil)
            #expect(e2e.logs.lines(containing: "SkyPrep provisioning failed").isEmpty == false)
        }
    }

    @Test("a running job keeps its short lease by heartbeat, and shutdown releases it at once instead of leaving it leased")
    func leaseHeartbeatAndRelease() async throws {
        // SkyPrep answers every call slowly: the job runs for seconds, longer than a third of its lease.
        try await withStallingServer(stall: .seconds(6)) { port in
            let configure: (inout GatewaySettings) -> Void = { settings in
                Self.fastQueue(&settings)
                settings.server.jobLease = .seconds(3)
                settings.server.shutdownTimeout = .milliseconds(200)
                settings.skyPrep.baseURL = "http://127.0.0.1:\(port)/admin/api"
                settings.skyPrep.acctKey = "acme.skyprepapp.com"
                settings.skyPrep.apiKey = "test-skyprep-key"
            }
            try await withEndToEnd(configure: configure) { e2e in
                #expect(try await e2e.fullLaunch().status == 303)
                let store = e2e.gateway.store
                let kind = "skyprep.provision"
                // The worker holds the job; its first lease ends here.
                var key = ""
                var firstLease = Date.distantPast
                let claimed = await eventually {
                    guard let job = try await store.queuedJobs(limit: 1).first, let lease = try await store.jobLease(kind: kind, key: job.key)
                    else { return false }
                    (key, firstLease) = (job.key, lease)
                    return true
                }
                try #require(claimed, "the job was not taken")
                // While the job runs (SkyPrep is slow), its lease moves on: the heartbeat.
                let renewed = await eventually { (try await store.jobLease(kind: kind, key: key) ?? .distantPast) > firstLease }
                #expect(renewed, "no heartbeat while the job ran")
                // Past its first lease the running job is still not another worker's.
                let meanwhile = try await store.claimJobs(
                    kind: kind, key: nil, now: firstLease.addingTimeInterval(0.1), leaseUntil: Date().addingTimeInterval(60),
                    worker: "another-instance", limit: 1)
                #expect(meanwhile.isEmpty, "a running job was taken over")
                // Shutdown cuts the run short: the job is released, due at once for another instance.
                let (group, task) = (e2e.groups[1], e2e.tasks.withLock { $0[1] })
                await group.triggerGracefulShutdown()
                _ = try await withDeadline(.seconds(10)) { try? await task.value }
                // Another instance (a store of its own on the same database) finds the job due now.
                let afterShutdown = try await withStore(settings: e2e.settings, logger: Logger(label: "another-instance"), migrate: false) {
                    try await $0.claimJobs(
                        kind: "skyprep.provision", key: nil, now: Date(), leaseUntil: Date().addingTimeInterval(60), worker: "another-instance",
                        limit: 1)
                }
                #expect(afterShutdown.count == 1, "the job stayed leased to an instance that stopped")
            }
        }
    }

    @Test("no email: skipped by default (the lab launches); with a synthetic-address rule, provisioned as <learner id>@domain")
    func noEmailRules() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let skipped = try await e2e.fullLaunch { $0["email"] = nil }
            #expect(skipped.status == 303)
            #expect(!queuedProvisioning(e2e, skipped))
            let nothingQueued = try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty
            #expect(fake.calls["create_user"] == nil && nothingQueued)

            let options = PlatformSkyPrepOptions(syntheticEmailDomain: "learners.example.edu")
            #expect(try await e2e.gateway.store.setSkyPrepOptions(options, registrationID: e2e.registrationA.id))
            #expect(try await e2e.fullLaunch { $0["email"] = nil }.status == 303)
            let id = try await learnerID(e2e)
            let settled6 = await eventually { fake.users.first?.email == "\(id)@learners.example.edu" }
            #expect(settled6)
        }
    }

    @Test("two LMS identities sharing an email are never linked unless the platform allows it")
    func sharedEmail() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let store = e2e.gateway.store
            #expect(try await e2e.fullLaunch().status == 303)
            let settled7 = await eventually { fake.users.count == 1 }
            #expect(settled7)
            // A second learner of the same LMS whose email is the same (a shared or reused address).
            #expect(try await e2e.fullLaunch { $0["sub"] = "learner-43" }.status == 303)
            let settled8 = await eventually { (try await store.queuedJobs(limit: 5).first?.held) == true }
            #expect(settled8)
            let held = try #require(try await store.queuedJobs(limit: 5).first)
            #expect(held.lastError?.contains("email_in_use") == true && held.failureCode == "email_in_use")
            let other = try await learnerID(e2e, subject: "learner-43")
            #expect(try await store.skyPrepAccount(learnerID: other) == nil)
            #expect(fake.users.count == 1)

            // The operator allows linking by email and retries the held job.
            #expect(try await store.setSkyPrepOptions(PlatformSkyPrepOptions(linkByEmail: true), registrationID: e2e.registrationA.id))
            #expect(try await store.releaseJob(kind: "skyprep.provision", key: other, now: e2e.clock.now))
            let settled9 = await eventually { (try await store.skyPrepAccount(learnerID: other)) != nil }
            #expect(settled9)
            #expect(try await store.skyPrepAccount(learnerID: other)?.userID == fake.users.first?.id)
            #expect(fake.users.count == 1)
        }
    }

    @Test("an existing SkyPrep learner made by hand is linked only with linking by email, and linking never changes its role")
    func existingUserAndRoles() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let store = e2e.gateway.store
            let existing = fake.addUser(email: "ada@example.edu", firstName: "A", lastName: "L")
            #expect(
                try await store.setSkyPrepOptions(
                    PlatformSkyPrepOptions(linkByEmail: true, roleMap: ["Instructor": "manager"]),
                    registrationID: e2e.registrationA.id))
            #expect(try await e2e.fullLaunch { $0[LTIClaim.roles] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"] }.status == 303)
            let id = try await learnerID(e2e)
            let settled10 = await eventually { (try await store.skyPrepAccount(learnerID: id))?.userID == existing }
            #expect(settled10)
            #expect(fake.users.count == 1 && fake.users.first?.role == "learner" && fake.users.first?.firstName == "Ada")
        }
    }

    @Test("linking by email never takes over a SkyPrep administrator's account: the job is held, the account untouched, sign-in refused")
    func privilegedAccountNotLinked() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            let store = e2e.gateway.store
            let admin = fake.addUser(email: "ada@example.edu", firstName: "Site", lastName: "Admin", role: "admin")
            #expect(try await store.setSkyPrepOptions(PlatformSkyPrepOptions(linkByEmail: true), registrationID: e2e.registrationA.id))
            #expect(try await e2e.fullLaunch().status == 303)
            let id = try await learnerID(e2e)
            let held = await eventually { (try await store.queuedJob(kind: "skyprep.provision", key: id))?.held == true }
            #expect(held)
            #expect(try await store.queuedJob(kind: "skyprep.provision", key: id)?.failureCode == "privileged_account")
            #expect(try await store.skyPrepAccount(learnerID: id) == nil)
            let user = try #require(fake.users.first { $0.id == admin })
            #expect(user.role == "admin" && user.firstName == "Site" && fake.calls["update_user"] == nil)
            let sso = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["destination": "skyprep"] }
            #expect(sso.status == 409 && fake.calls["get_login_key"] == nil)
        }
    }

    @Test("SSO provisions first: the user carries our learner id; enrolled in the course; an email owned by another identity is refused")
    func ssoProvisionsAndEnrols() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            #expect(
                try await e2e.gateway.store.setSkyPrepOptions(PlatformSkyPrepOptions(allowedCourseIDs: ["77"]), registrationID: e2e.registrationA.id))
            let response = try await e2e.fullLaunch(labID: nil) { $0[LTIClaim.custom] = ["skyprep_course_id": "77"] }
            #expect(response.status == 303)
            let id = try await learnerID(e2e)
            #expect(fake.users.first?.userIdentifier == id && fake.users.first?.courseIDs == ["77"])
            #expect(fake.calls["create_user"] == 1)

            // Another identity with the same email must not be signed into this account.
            let other = try await e2e.fullLaunch(labID: nil) {
                $0[LTIClaim.custom] = ["destination": "skyprep"]; $0["sub"] = "learner-43"
            }
            #expect(other.status == 409 && other.body.contains("another SkyPrep account"))
            #expect(fake.calls["get_login_key"] == 1)
        }
    }

    @Test("provisioning off for a platform: no SkyPrep call on launches")
    func provisioningOff() async throws {
        try await withEndToEnd(configure: Self.fastQueue) { e2e in
            let fake = try #require(e2e.gateway.skyPrepSandbox)
            #expect(try await e2e.gateway.store.setSkyPrepOptions(PlatformSkyPrepOptions(provisioning: false), registrationID: e2e.registrationA.id))
            let launched = try await e2e.fullLaunch()
            #expect(launched.status == 303)
            #expect(!queuedProvisioning(e2e, launched))
            #expect(try await e2e.gateway.store.queuedJobs(limit: 5).isEmpty)
            #expect(fake.calls.isEmpty)
        }
    }
}
