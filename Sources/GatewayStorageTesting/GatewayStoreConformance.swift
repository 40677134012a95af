import Foundation
import GatewayStorage
import LTICore

/// The behaviour every ``GatewayStore`` backend must show, as named checks.
///
/// A backend's test target runs each check against a fresh, migrated store:
/// `@Test(arguments: GatewayStoreConformance.checks) func conformance(check:) async throws`.
public enum GatewayStoreConformance {
    /// One named behaviour.
    public struct Check: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (any GatewayStore) async throws -> Void
        public var description: String { name }
    }

    /// Thrown when a backend does not behave as required.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static func expect(
        _ condition: Bool, _ message: @autoclosure () -> String,
        file: StaticString = #fileID, line: UInt = #line
    ) throws {
        if !condition { throw Failure(description: "\(file):\(line): \(message())") }
    }

    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    static func registration(
        _ id: String, issuer: String = "https://lms.example.edu", clientID: String? = nil,
        deployments: [String] = ["dep-1"]
    ) -> PlatformRegistration {
        PlatformRegistration(
            id: id, issuer: issuer, clientID: clientID ?? "client-\(id)",
            authURL: "https://lms.example.edu/auth", tokenURL: "https://lms.example.edu/token",
            jwksURL: "https://lms.example.edu/jwks", deploymentIDs: deployments, createdAt: epoch)
    }

    static func loginState(_ state: String, expiresIn: TimeInterval = 600, storage: Bool = false) -> LoginState {
        LoginState(
            state: state, nonce: "nonce-\(state)", registrationID: "reg", targetLinkURI: "https://tool/lti/launch",
            createdAt: epoch, expiresAt: epoch.addingTimeInterval(expiresIn), loginHint: "hint-\(state)",
            ltiMessageHint: storage ? "message-\(state)" : nil, deploymentHint: storage ? "dep-\(state)" : nil,
            restartKey: storage ? "restart-\(state)" : nil, storageSecretDigest: storage ? "digest-\(state)" : nil,
            storageFrame: storage ? "post_message_forwarding" : nil, startedInNewWindow: !storage)
    }

    /// Every check.
    public static let checks: [Check] = coreChecks + administrationChecks

    static let coreChecks: [Check] = [
        Check(name: "registrations round-trip with deployments") { store in
            let r = registration("r1", deployments: ["dep-1", "dep-2"])
            try await store.addRegistration(r)
            let found = try await store.registration(id: "r1")
            try expect(found == r, "read back \(String(describing: found))")
            try expect(try await store.allRegistrations() == [r], "listed")
        },
        Check(name: "one issuer may hold many client ids, found by issuer") { store in
            try await store.addRegistration(registration("a", clientID: "c1"))
            try await store.addRegistration(registration("b", clientID: "c2"))
            try await store.addRegistration(registration("c", issuer: "https://other.example", clientID: "c1"))
            let found = try await store.registrations(issuer: "https://lms.example.edu")
            try expect(Set(found.map(\.id)) == ["a", "b"], "found \(found.map(\.id))")
        },
        Check(name: "the same issuer and client id twice is a duplicate") { store in
            try await store.addRegistration(registration("a", clientID: "c1"))
            do {
                try await store.addRegistration(registration("b", clientID: "c1"))
                try expect(false, "second add succeeded")
            } catch let error as StorageError {
                try expect(error.code == .duplicate, "code \(error.code)")
            }
        },
        Check(name: "removing a registration removes it and its deployments") { store in
            try await store.addRegistration(registration("a"))
            try expect(try await store.removeRegistration(id: "a"), "not removed")
            try expect(try await store.registration(id: "a") == nil, "still found")
            try expect(try await store.removeRegistration(id: "a") == false, "removed twice")
            try await store.addRegistration(registration("a2"))
            try expect(try await store.registration(id: "a2")?.deploymentIDs == ["dep-1"], "deployments of re-added")
        },
        Check(name: "launch options: defaults until set, stored per registration, refused for an unknown one") { store in
            try await store.addRegistration(registration("a"))
            try expect(try await store.launchOptions(registrationID: "a") == PlatformLaunchOptions(), "defaults")
            let options = PlatformLaunchOptions(
                maxActiveLabs: 3, maxSavedLabs: 1, durationMinutes: 45, regionID: 7, lang: "pt-BR",
                sendTag: false, sendContextVariables: true)
            try expect(try await store.setLaunchOptions(options, registrationID: "a"), "not stored")
            try expect(try await store.launchOptions(registrationID: "a") == options, "read back")
            try expect(try await store.setLaunchOptions(options, registrationID: "missing") == false, "stored for a missing registration")
        },
        Check(name: "a login state is consumed once") { store in
            try await store.saveLoginState(loginState("s1"))
            let first = try await store.consumeLoginState("s1", now: epoch)
            try expect(first == loginState("s1"), "first consume \(String(describing: first))")
            try expect(try await store.consumeLoginState("s1", now: epoch) == nil, "second consume succeeded")
            try expect(try await store.consumeLoginState("never", now: epoch) == nil, "unknown consumed")
        },
        Check(name: "a login state is read without being consumed, by state and by restart key") { store in
            try await store.saveLoginState(loginState("plain"))
            try await store.saveLoginState(loginState("stored", storage: true))
            for state in ["plain", "stored"] {
                let expected = loginState(state, storage: state == "stored")
                try expect(try await store.loginState(state, now: epoch) == expected, "read \(state)")
            }
            try expect(
                try await store.loginState(restartKey: "restart-stored", now: epoch) == loginState("stored", storage: true), "read by restart key")
            // A login saved without a restart key gets one when asked, once; the first key stays.
            try expect(try await store.assignRestartKey("restart-plain", toState: "plain", now: epoch) == "restart-plain", "assigned")
            try expect(try await store.assignRestartKey("another", toState: "plain", now: epoch) == "restart-plain", "assigned twice")
            try expect(try await store.loginState(restartKey: "restart-plain", now: epoch)?.state == "plain", "read by assigned key")
            try expect(try await store.assignRestartKey("k", toState: "never", now: epoch) == nil, "assigned to an unknown state")
            try expect(try await store.assignRestartKey("k", toState: "plain", now: epoch.addingTimeInterval(601)) == nil, "assigned when expired")
            try expect(try await store.loginState("stored", now: epoch.addingTimeInterval(601)) == nil, "expired state read")
            try expect(
                try await store.loginState(restartKey: "restart-stored", now: epoch.addingTimeInterval(601)) == nil,
                "expired state read by restart key")
            try expect(try await store.loginState("restart-stored", now: epoch) == nil, "a restart key read as a state")
            try expect(try await store.loginState(restartKey: "stored", now: epoch) == nil, "a state read as a restart key")
            try expect(try await store.consumeLoginState("stored", now: epoch) == loginState("stored", storage: true), "reading consumed it")
            try expect(try await store.loginState("stored", now: epoch) == nil, "read after consumption")
        },
        Check(name: "an expired login state cannot be consumed") { store in
            try await store.saveLoginState(loginState("s1", expiresIn: 10))
            try expect(try await store.consumeLoginState("s1", now: epoch.addingTimeInterval(11)) == nil, "expired consumed")
        },
        Check(name: "of many racing consumers of one state exactly one wins") { store in
            try await store.saveLoginState(loginState("race"))
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<16 { group.addTask { try await store.consumeLoginState("race", now: epoch) != nil } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            try expect(wins == 1, "\(wins) winners")
        },
        Check(name: "expired states are cleaned up, live ones kept") { store in
            try await store.saveLoginState(loginState("old", expiresIn: 10))
            try await store.saveLoginState(loginState("live", expiresIn: 1000))
            let removed = try await store.deleteExpired(now: epoch.addingTimeInterval(100))
            try expect(removed == 1, "removed \(removed)")
            try expect(try await store.loginState("old", now: epoch) == nil, "expired state kept")
            try expect(try await store.consumeLoginState("live", now: epoch) != nil, "live state gone")
        },
        Check(name: "a migrated store takes the readiness write, again and again") { store in
            try await store.checkWritable(now: epoch)
            try await store.checkWritable(now: epoch.addingTimeInterval(1))
        },
        Check(name: "clean-up deletes expired rows past one batch, and counts them all") { store in
            // 2,500 expired logins: more than two batches of the clean-up's 1,000, and one live login that stays.
            for index in 0..<2500 { try await store.saveLoginState(loginState("old-\(index)", expiresIn: 10)) }
            try await store.saveLoginState(loginState("live", expiresIn: 1000))
            let removed = try await store.deleteExpired(now: epoch.addingTimeInterval(100))
            try expect(removed == 2500, "removed \(removed)")
            try expect(try await store.loginState("old-2499", now: epoch) == nil, "expired state kept")
            try expect(try await store.loginState("live", now: epoch) != nil, "live state gone")
        },
        Check(name: "an identity keeps its id and first-seen time and takes new names") { store in
            let first = LearnerIdentity(
                id: "u1", issuer: "i", trustAnchor: "https://lms/jwks", subject: "s", givenName: "Ada", familyName: "L", email: nil,
                firstSeen: epoch, lastSeen: epoch)
            _ = try await store.upsertIdentity(first)
            var second = first
            second.id = "u-other"
            second.givenName = "Augusta"
            second.email = "ada@example.edu"
            second.firstSeen = epoch.addingTimeInterval(50)
            second.lastSeen = epoch.addingTimeInterval(50)
            let stored = try await store.upsertIdentity(second)
            try expect(stored.id == "u1" && stored.firstSeen == epoch, "identity changed: \(stored)")
            try expect(stored.givenName == "Augusta" && stored.email == "ada@example.edu", "names not updated")
            try expect(try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "s") == stored, "read back")
            try expect(try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "other") == nil, "unknown found")
            // The same issuer and sub asserted through another key set is another learner.
            var elsewhere = first
            elsewhere.id = "u-elsewhere"
            elsewhere.trustAnchor = "https://self-hosted.example/jwks"
            let other = try await store.upsertIdentity(elsewhere)
            try expect(other.id == "u-elsewhere", "the same sub under another key set took the first learner: \(other)")
            try expect(
                try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "s")?.id == "u1", "the first learner changed")
        },
        Check(name: "a lab session's launch is used once, by one of racing callers, and not after it expired") { store in
            try await store.saveLabSession(id: "ls1", data: #"{"learner":"u1"}"#, expiresAt: epoch.addingTimeInterval(900))
            try expect(
                try await store.labSession(id: "ls1")
                    == StoredLabSession(
                        data: #"{"learner":"u1"}"#, expiresAt: epoch.addingTimeInterval(900), launchUsed: false), "read back")
            let winners = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<6 { group.addTask { try await store.useLabSessionLaunch(id: "ls1", now: epoch) } }
                var won = 0
                for try await data in group where data != nil { won += 1 }
                return won
            }
            try expect(winners == 1, "\(winners) launches from one page")
            try expect(try await store.labSession(id: "ls1")?.launchUsed == true, "use not recorded")
            try await store.saveLabSession(id: "ls2", data: "{}", expiresAt: epoch.addingTimeInterval(10))
            try expect(try await store.useLabSessionLaunch(id: "ls2", now: epoch.addingTimeInterval(10)) == nil, "used after expiry")
            try expect(try await store.useLabSessionLaunch(id: "unknown", now: epoch) == nil, "an unknown session was used")
            _ = try await store.deleteExpired(now: epoch.addingTimeInterval(100))
            try expect(try await store.labSession(id: "ls2") == nil, "an expired lab session was kept")
        },
        Check(name: "a lab start is claimed by one of racing holders, shared once it succeeded, and free again after") { store in
            let claims = try await withThrowingTaskGroup(of: LabStartClaim.self) { group in
                for holder in 0..<6 {
                    group.addTask {
                        try await store.claimLabStart(
                            learnerID: "u1", labID: "42", holder: "h\(holder)", now: epoch, until: epoch.addingTimeInterval(30))
                    }
                }
                var all: [LabStartClaim] = []
                for try await claim in group { all.append(claim) }
                return all
            }
            try expect(claims.filter { $0 == .claimed }.count == 1 && claims.filter { $0 == .running }.count == 5, "claims \(claims)")
            // Which holder won is not known here: every holder tries to share; only the winner's outcome counts.
            for holder in 0..<6 {
                try await store.finishLabStart(
                    learnerID: "u1", labID: "42", holder: "h\(holder)", outcome: "lab-\(holder)", sharedUntil: epoch.addingTimeInterval(40))
            }
            let shared = try await store.claimLabStart(
                learnerID: "u1", labID: "42", holder: "late", now: epoch.addingTimeInterval(35), until: epoch.addingTimeInterval(65))
            guard case .finished(let outcome) = shared, outcome.hasPrefix("lab-") else { throw Failure(description: "not shared: \(shared)") }
            // A shared start whose lab ended is forgotten: the next click claims anew; a start under way is not forgotten.
            try await store.forgetLabStart(learnerID: "u1", labID: "42")
            try expect(
                try await store.claimLabStart(
                    learnerID: "u1", labID: "42", holder: "later", now: epoch.addingTimeInterval(36), until: epoch.addingTimeInterval(70))
                    == .claimed, "a forgotten start was still shared")
            try await store.forgetLabStart(learnerID: "u1", labID: "42")
            try expect(
                try await store.claimLabStart(
                    learnerID: "u1", labID: "42", holder: "other", now: epoch.addingTimeInterval(36), until: epoch.addingTimeInterval(70))
                    == .running, "a start under way was forgotten")
            // A start that failed frees the claim at once.
            try await store.finishLabStart(learnerID: "u1", labID: "42", holder: "later", outcome: nil, sharedUntil: epoch)
            try expect(
                try await store.claimLabStart(
                    learnerID: "u1", labID: "42", holder: "next", now: epoch.addingTimeInterval(37), until: epoch.addingTimeInterval(71))
                    == .claimed, "not free after a failed start")
            // A shared outcome ends with its join window.
            try await store.finishLabStart(learnerID: "u1", labID: "42", holder: "next", outcome: "lab", sharedUntil: epoch.addingTimeInterval(41))
            try expect(
                try await store.claimLabStart(
                    learnerID: "u1", labID: "42", holder: "after", now: epoch.addingTimeInterval(41), until: epoch.addingTimeInterval(71))
                    == .claimed, "not free after the join window")
            // Another learner's start is independent.
            try expect(
                try await store.claimLabStart(
                    learnerID: "u2", labID: "42", holder: "x", now: epoch.addingTimeInterval(41), until: epoch.addingTimeInterval(71))
                    == .claimed, "another learner waited")
            // A holder's own unfinished claim (its end was never stored) does not make it wait for itself.
            try expect(
                try await store.claimLabStart(
                    learnerID: "u3", labID: "42", holder: "h", now: epoch, until: epoch.addingTimeInterval(30)) == .claimed, "first claim")
            try expect(
                try await store.claimLabStart(
                    learnerID: "u3", labID: "42", holder: "h", now: epoch.addingTimeInterval(1), until: epoch.addingTimeInterval(31))
                    == .claimed, "a holder waited for its own stale claim")
            // A holder that died: its claim ends at its expiry.
            try expect(
                try await store.claimLabStart(
                    learnerID: "u1", labID: "42", holder: "after-crash", now: epoch.addingTimeInterval(71), until: epoch.addingTimeInterval(99))
                    == .claimed, "a dead holder's claim outlived its expiry")
        },
        Check(name: "a picker session is consumed once, keeps data exactly (or its absence), and expires") { store in
            let withData = DeepLinkSession(
                id: "p1", registrationID: "r", deploymentID: "d", returnURL: "https://lms/return",
                data: #"{"opaque":"x y\u00e9"} "#, acceptMultiple: true, acceptLineItem: false,
                createdAt: epoch, expiresAt: epoch.addingTimeInterval(600))
            var without = withData
            without.id = "p2"
            without.data = nil
            without.expiresAt = epoch.addingTimeInterval(10)
            try await store.saveDeepLinkSession(withData)
            try await store.saveDeepLinkSession(without)
            try expect(try await store.consumeDeepLinkSession(id: "p1", now: epoch) == withData, "read back with data")
            try expect(try await store.consumeDeepLinkSession(id: "p1", now: epoch) == nil, "consumed twice")
            try expect(try await store.consumeDeepLinkSession(id: "p2", now: epoch.addingTimeInterval(11)) == nil, "expired consumed")
            var racing = withData
            racing.id = "p3"
            try await store.saveDeepLinkSession(racing)
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { try await store.consumeDeepLinkSession(id: "p3", now: epoch) != nil } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            try expect(wins == 1, "\(wins) winners")
            var dataless = without
            dataless.id = "p4"
            dataless.expiresAt = epoch.addingTimeInterval(600)
            try await store.saveDeepLinkSession(dataless)
            try expect(try await store.consumeDeepLinkSession(id: "p4", now: epoch)?.data == nil, "absent data came back")
        },
        Check(name: "launches are recorded and listed newest first") { store in
            for i in 0..<3 {
                try await store.recordLaunch(
                    LaunchRecord(
                        id: "l\(i)", registrationID: "r", deploymentID: "d", learnerID: "u", subject: "s",
                        messageType: "LtiResourceLinkRequest", resourceLinkID: "rl", contextID: i == 0 ? nil : "ctx", labID: "42",
                        outcome: "launched", vendorResultCode: 1, labInstanceID: "99\(i)", agsLineItem: nil,
                        createdAt: epoch.addingTimeInterval(Double(i))))
            }
            let recent = try await store.recentLaunches(limit: 2)
            try expect(recent.map(\.id) == ["l2", "l1"], "order \(recent.map(\.id))")
            let first = try await store.launch(id: "l0")
            try expect(
                first?.contextID == nil && first?.labInstanceID == "990" && first?.vendorResultCode == 1, "read back \(String(describing: first))")
        },
        Check(name: "a launch, its learner and its job are stored together: all, or — when the launch's id is taken — none") { store in
            let learner = LearnerIdentity(
                id: "lti-t1", issuer: "i", trustAnchor: "https://lms/jwks", subject: "together", givenName: "Ada", familyName: "L",
                email: "ada@example.edu", firstSeen: epoch, lastSeen: epoch)
            var launch = LaunchRecord(
                id: "t1", registrationID: "r", deploymentID: "d", learnerID: "lti-t1", subject: "together",
                messageType: "LtiResourceLinkRequest", resourceLinkID: "rl", contextID: "ctx", labID: "42", outcome: "pending",
                vendorResultCode: nil, labInstanceID: nil, agsLineItem: nil, createdAt: epoch)
            let job = JobToQueue(kind: "test.kind", key: "lti-t1", payload: "{\"n\":1}", runAt: epoch)
            try await store.recordLaunch(launch, learner: learner, job: job)
            try expect(try await store.launch(id: "t1")?.outcome == "pending", "launch not stored")
            try expect(try await store.queuedJob(kind: "test.kind", key: "lti-t1")?.payload == "{\"n\":1}", "job not queued")
            try expect(try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "together") == learner, "learner not stored")
            // A known learner is updated as by an upsert: names, email and last seen; id and first seen kept.
            var again = learner
            again.id = "lti-other"
            again.givenName = "Augusta"
            again.firstSeen = epoch.addingTimeInterval(60)
            again.lastSeen = epoch.addingTimeInterval(60)
            launch.id = "t2"
            try await store.recordLaunch(launch, learner: again, job: nil)
            let updated = try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "together")
            try expect(
                updated?.id == "lti-t1" && updated?.givenName == "Augusta" && updated?.firstSeen == epoch
                    && updated?.lastSeen == epoch.addingTimeInterval(60), "learner not updated in place: \(String(describing: updated))")
            // The launch's id is taken: the write is refused as a duplicate and its learner is not stored either.
            var stranger = learner
            stranger.subject = "stranger"
            stranger.id = "lti-stranger"
            do {
                try await store.recordLaunch(
                    launch, learner: stranger, job: JobToQueue(kind: "test.kind", key: "lti-stranger", payload: "{}", runAt: epoch))
                throw StorageError(.corrupt, "a second launch with one id was stored")
            } catch let error as StorageError where error.code == .duplicate {}
            try expect(
                try await store.identity(issuer: "i", trustAnchor: "https://lms/jwks", subject: "stranger") == nil,
                "the learner of a refused launch was stored")
            try expect(try await store.queuedJob(kind: "test.kind", key: "lti-stranger") == nil, "the job of a refused launch was queued")
            // A launch alone, and one with a job but no learner to store.
            launch.id = "t3"
            try await store.recordLaunch(launch, learner: nil, job: JobToQueue(kind: "test.kind", key: "lti-t1", payload: "{\"n\":2}", runAt: epoch))
            try expect(try await store.queuedJob(kind: "test.kind", key: "lti-t1")?.payload == "{\"n\":2}", "the job's payload not replaced")
            launch.id = "t4"
            try await store.recordLaunch(launch, learner: nil, job: nil)
            try expect(try await store.launch(id: "t4") != nil, "a launch alone not stored")
        },
        Check(name: "a launch recorded as pending gets its outcome in place; one never recorded is recorded whole") { store in
            var launch = LaunchRecord(
                id: "p1", registrationID: "r", deploymentID: "d", learnerID: "u", subject: "s", messageType: "LtiResourceLinkRequest",
                resourceLinkID: "rl", contextID: "ctx", labID: "42", outcome: "pending", vendorResultCode: nil, labInstanceID: nil,
                agsLineItem: nil, createdAt: epoch)
            try await store.recordLaunch(launch)
            try expect(try await store.launch(id: "p1")?.outcome == "pending", "pending not stored")
            launch.outcome = "launched"
            launch.vendorResultCode = 1
            launch.labInstanceID = "777"
            try await store.completeLaunch(launch)
            let completed = try await store.launch(id: "p1")
            try expect(
                completed?.outcome == "launched" && completed?.vendorResultCode == 1 && completed?.labInstanceID == "777"
                    && completed?.labID == "42", "completed \(String(describing: completed))")
            try expect(try await store.recentLaunches(limit: 10).count == 1, "completing added a record")
            launch.id = "p2"
            try await store.completeLaunch(launch)
            try expect(try await store.launch(id: "p2")?.outcome == "launched", "an outcome without a pending record was lost")
        },
        Check(name: "SkyPrep options: defaults until set, stored per registration, refused for an unknown one") { store in
            try await store.addRegistration(registration("r1"))
            try expect(try await store.skyPrepOptions(registrationID: "r1") == PlatformSkyPrepOptions(), "defaults")
            let options = PlatformSkyPrepOptions(
                provisioning: false, account: "acme.skyprepapp.com", apiKeyVariable: "SKYPREP_API_KEY_ACME",
                groupSync: true, linkByEmail: true, syntheticEmailDomain: "learners.example.edu",
                roleMap: ["Instructor": "manager"], enrolOnSSO: false)
            try expect(try await store.setSkyPrepOptions(options, registrationID: "r1"), "set refused")
            try expect(try await store.skyPrepOptions(registrationID: "r1") == options, "read back")
            try expect(try await store.launchOptions(registrationID: "r1") == PlatformLaunchOptions(), "launch options touched")
            try expect(try await store.setSkyPrepOptions(options, registrationID: "nope") == false, "unknown registration accepted")
        },
        Check(name: "SkyPrep accounts are saved, replaced and found by learner and by user") { store in
            var account = SkyPrepAccount(
                learnerID: "lti-1", userID: 5001, email: "ada@example.edu", firstName: "Ada", lastName: "L",
                role: "learner", updatedAt: epoch)
            try await store.saveSkyPrepAccount(account)
            account.firstName = "Augusta"
            account.role = "manager"
            try await store.saveSkyPrepAccount(account)
            try expect(try await store.skyPrepAccount(learnerID: "lti-1") == account, "read back")
            try expect(try await store.skyPrepAccount(learnerID: "lti-2") == nil, "unknown found")
            var other = account
            other.learnerID = "lti-0"
            try await store.saveSkyPrepAccount(other)
            try expect(try await store.skyPrepAccounts(userID: 5001).map(\.learnerID) == ["lti-0", "lti-1"], "by user")
        },
        Check(name: "a job is claimed when due, by one worker until its lease ends, and completed once") { store in
            try await store.enqueueJob(kind: "k", key: "a", payload: "{}", runAt: epoch.addingTimeInterval(10))
            let early = try await store.claimJobs(kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60), worker: "w1", limit: 10)
            try expect(early.isEmpty, "claimed before due")
            let claimed = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(10),
                leaseUntil: epoch.addingTimeInterval(70), worker: "w1", limit: 10)
            try expect(claimed.map(\.key) == ["a"] && claimed.first?.attempts == 1, "claimed \(claimed)")
            let leased = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(20),
                leaseUntil: epoch.addingTimeInterval(80), worker: "w2", limit: 10)
            try expect(leased.isEmpty, "a leased job was claimed again")
            // The first worker vanished: after the lease, another worker takes the job over.
            let takenOver = try await store.claimJobs(
                kind: "k", key: "a", now: epoch.addingTimeInterval(71),
                leaseUntil: epoch.addingTimeInterval(130), worker: "w2", limit: 10)
            try expect(takenOver.first?.attempts == 2, "not taken over after the lease: \(takenOver)")
            try await store.completeJob(claimed[0], worker: "w1")
            try expect(try await store.queuedJobs(limit: 10).count == 1, "completed by a worker that lost the lease")
            try await store.completeJob(takenOver[0], worker: "w2")
            try expect(try await store.queuedJobs(limit: 10).isEmpty, "not completed")
        },
        Check(name: "a heartbeat keeps a running job's lease; only its holder can renew it") { store in
            try await store.enqueueJob(kind: "k", key: "a", payload: "{}", runAt: epoch)
            let claimed = try await store.claimJobs(
                kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(30), worker: "w1", limit: 1)
            try expect(claimed.count == 1, "not claimed")
            try expect(try await store.jobLease(kind: "k", key: "a") == epoch.addingTimeInterval(30), "lease not read back")
            try expect(try await store.renewJobLease(claimed[0], worker: "w1", until: epoch.addingTimeInterval(60)), "holder could not renew")
            try expect(try await store.jobLease(kind: "k", key: "a") == epoch.addingTimeInterval(60), "renewed lease not read back")
            try expect(
                try await store.renewJobLease(claimed[0], worker: "w2", until: epoch.addingTimeInterval(90)) == false, "another worker renewed")
            let atOldEnd = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(31), leaseUntil: epoch.addingTimeInterval(61), worker: "w2", limit: 1)
            try expect(atOldEnd.isEmpty, "taken over although its lease was renewed")
            let afterNewEnd = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(61), leaseUntil: epoch.addingTimeInterval(91), worker: "w2", limit: 1)
            try expect(afterNewEnd.count == 1, "not taken over after the renewed lease")
            try expect(
                try await store.renewJobLease(claimed[0], worker: "w1", until: epoch.addingTimeInterval(120)) == false,
                "a worker that lost the job renewed it")
        },
        Check(name: "of many racing claimers each job goes to exactly one") { store in
            for i in 0..<5 { try await store.enqueueJob(kind: "k", key: "j\(i)", payload: "{}", runAt: epoch) }
            try await store.enqueueJob(kind: "other", key: "x", payload: "{}", runAt: epoch)
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for w in 0..<8 {
                    group.addTask {
                        try await store.claimJobs(
                            kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60),
                            worker: "w\(w)", limit: 2
                        ).map(\.key)
                    }
                }
                var all: [String] = []
                for try await keys in group { all += keys }
                return all
            }
            try expect(claims.sorted() == ["j0", "j1", "j2", "j3", "j4"], "claims \(claims.sorted())")
        },
        Check(name: "many workers draining a queue together claim every job exactly once") { store in
            let count = 60
            for i in 0..<count { try await store.enqueueJob(kind: "k", key: "j\(i)", payload: "{}", runAt: epoch) }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for w in 0..<16 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let jobs = try await store.claimJobs(
                                kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60),
                                worker: "w\(w)", limit: 2)
                            if jobs.isEmpty { return mine }
                            mine += jobs.map(\.key)
                        }
                    }
                }
                var all: [String] = []
                for try await keys in group { all += keys }
                return all
            }
            try expect(claims.count == count && Set(claims).count == count, "\(claims.count) claims of \(Set(claims).count) jobs")
        },
        Check(name: "a job enqueued again while running keeps its new input and runs again") { store in
            try await store.enqueueJob(kind: "k", key: "a", payload: "old", runAt: epoch)
            let first = try await store.claimJobs(kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60), worker: "w", limit: 1)
            try await store.enqueueJob(kind: "k", key: "a", payload: "new", runAt: epoch.addingTimeInterval(5))
            try await store.completeJob(first[0], worker: "w")
            let again = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(1),
                leaseUntil: epoch.addingTimeInterval(60), worker: "w", limit: 1)
            try expect(again.map(\.payload) == ["new"] && again[0].revision == first[0].revision + 1, "again \(again)")
        },
        Check(name: "a failed job waits for its retry time or, held, for an operator") { store in
            try await store.enqueueJob(kind: "k", key: "a", payload: "{}", runAt: epoch)
            try await store.enqueueJob(kind: "k", key: "b", payload: "{}", runAt: epoch)
            let jobs = try await store.claimJobs(kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60), worker: "w", limit: 2)
            guard let a = jobs.first(where: { $0.key == "a" }), let b = jobs.first(where: { $0.key == "b" }) else {
                throw Failure(description: "claimed \(jobs.map(\.key))")
            }
            try await store.failJob(
                a, worker: "w", failure: JobFailure(code: "skyprep_server_error", detail: "skyprep server_error http 500"),
                retryAt: epoch.addingTimeInterval(30))
            try await store.failJob(b, worker: "w", failure: JobFailure(code: "email_in_use", detail: "email_in_use: another user"), retryAt: nil)
            let soon = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(29), leaseUntil: epoch.addingTimeInterval(90),
                worker: "w", limit: 5)
            try expect(soon.isEmpty, "claimed before its retry time: \(soon.map(\.key))")
            let heldJob = try await store.queuedJob(kind: "k", key: "b")
            try expect(
                heldJob?.held == true && heldJob?.failureCode == "email_in_use" && heldJob?.lastError == "email_in_use: another user",
                "held job \(String(describing: heldJob))")
            try expect(try await store.queuedJob(kind: "k", key: "none") == nil, "unknown job found")
            let listed = try await store.queuedJobs(limit: 10)
            try expect(
                listed.first { $0.key == "b" }?.held == true && listed.first { $0.key == "a" }?.lastError == "skyprep server_error http 500",
                "listed \(listed)")
            let later = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(31), leaseUntil: epoch.addingTimeInterval(90),
                worker: "w", limit: 5)
            try expect(later.map(\.key) == ["a"], "later \(later.map(\.key))")
            try expect(try await store.releaseJob(kind: "k", key: "b", now: epoch.addingTimeInterval(40)), "release refused")
            try expect(try await store.releaseJob(kind: "k", key: "none", now: epoch) == false, "unknown job released")
            let released = try await store.claimJobs(
                kind: "k", key: "b", now: epoch.addingTimeInterval(40), leaseUntil: epoch.addingTimeInterval(90),
                worker: "w", limit: 5)
            try expect(released.map(\.key) == ["b"], "released job not claimable")
        },
        Check(name: "new input for a failed or held job keeps its backoff and its hold") { store in
            for key in ["waiting", "held"] { try await store.enqueueJob(kind: "k", key: key, payload: "{}", runAt: epoch) }
            let claimed = try await store.claimJobs(kind: "k", key: nil, now: epoch, leaseUntil: epoch.addingTimeInterval(60), worker: "w", limit: 2)
            for job in claimed {
                try await store.failJob(
                    job, worker: "w", failure: JobFailure(code: job.key == "held" ? "email_in_use" : "skyprep_server_error", detail: "x"),
                    retryAt: job.key == "held" ? nil : epoch.addingTimeInterval(300))
            }
            for key in ["waiting", "held"] {
                try await store.enqueueJob(kind: "k", key: key, payload: "{\"new\":1}", runAt: epoch.addingTimeInterval(1))
            }
            let due = try await store.claimJobs(
                kind: "k", key: nil, now: epoch.addingTimeInterval(2), leaseUntil: epoch.addingTimeInterval(60), worker: "w", limit: 5)
            try expect(due.isEmpty, "new input undid a backoff or a hold: \(due.map(\.key))")
            let held = try await store.queuedJob(kind: "k", key: "held")
            try expect(held?.held == true && held?.payload == "{\"new\":1}" && held?.revision == 2, "held job \(String(describing: held))")
            let waiting = try await store.queuedJob(kind: "k", key: "waiting")
            try expect(
                waiting?.nextRunAt == epoch.addingTimeInterval(300) && waiting?.payload == "{\"new\":1}", "waiting job \(String(describing: waiting))"
            )
        },
    ]
}

/// The trust-anchor migration (SQLite 10, PostgreSQL 6) on a store holding learners from before it.
public enum TrustAnchorMigrationCheck {
    /// Migrates `store` up to `before`, stores two registrations of one issuer with their own key sets and two learners
    /// the old way (one launched through the second registration, one never launched), migrates the rest, and checks
    /// that each learner kept their id under the right key set and that the other key set's same sub is another learner.
    public static func run<Store: SQLGatewayStore>(
        _ store: Store, before: Int, migrate: (_ through: Int?) async throws -> Void
    ) async throws {
        try await migrate(before)
        let issuer = "https://canvas.instructure.com"
        // Registrations as the schema of that time stores them (the columns they had then).
        for (id, jwks, created) in [("reg-cloud", "https://cloud.example/jwks", 0.0), ("reg-self", "https://self.example/jwks", 10.0)] {
            try await store.write(
                SQLStatement(
                    "INSERT INTO platform_registrations (id, issuer, client_id, auth_url, token_url, jwks_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    .text(id), .text(issuer), .text("client-\(id)"), .text("https://lms/auth"), .text("https://lms/token"), .text(jwks),
                    .time(GatewayStoreConformance.epoch.addingTimeInterval(created)),
                ])
        }
        let insertOld = SQLStatement(
            "INSERT INTO learner_identities (id, issuer, subject, given_name, family_name, email, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        for (id, subject) in [("lti-launched", "s1"), ("lti-never-launched", "s2")] {
            try await store.write(
                insertOld,
                [
                    .text(id), .text(issuer), .text(subject), .null, .null, .null, .time(GatewayStoreConformance.epoch),
                    .time(GatewayStoreConformance.epoch),
                ])
        }
        // The launch as the schema of that time stores it (the columns launches had then).
        try await store.write(
            SQLStatement(
                """
                INSERT INTO launches (id, registration_id, deployment_id, learner_id, subject, message_type, lab_id, outcome, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """),
            [
                .text("launch-1"), .text("reg-self"), .text("dep"), .text("lti-launched"), .text("s1"), .text("LtiResourceLinkRequest"),
                .text("42"), .text("launched"), .time(GatewayStoreConformance.epoch),
            ])
        try await migrate(nil)
        let launched = try await store.identity(issuer: issuer, trustAnchor: "https://self.example/jwks", subject: "s1")
        try GatewayStoreConformance.expect(launched?.id == "lti-launched", "the launched learner did not keep their id under their launch's key set")
        let neverLaunched = try await store.identity(issuer: issuer, trustAnchor: "https://cloud.example/jwks", subject: "s2")
        try GatewayStoreConformance.expect(
            neverLaunched?.id == "lti-never-launched", "a learner without launches did not take the issuer's first key set")
        try GatewayStoreConformance.expect(
            try await store.identity(issuer: issuer, trustAnchor: "https://cloud.example/jwks", subject: "s1") == nil,
            "the other key set's same sub is the old learner")
    }
}
