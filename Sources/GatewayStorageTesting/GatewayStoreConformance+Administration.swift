import Foundation
import GatewayStorage
import LTICore

extension GatewayStoreConformance {
    static func launch(
        _ id: String, registration: String = "r1", learner: String = "l1", lab: String = "42", outcome: String = "launched", at seconds: TimeInterval
    )
        -> LaunchRecord
    {
        LaunchRecord(
            id: id, registrationID: registration, deploymentID: "dep-1", learnerID: learner, subject: "sub", messageType: "LtiResourceLinkRequest",
            resourceLinkID: nil, contextID: nil, labID: lab, outcome: outcome, vendorResultCode: nil, labInstanceID: nil, agsLineItem: nil,
            createdAt: epoch.addingTimeInterval(seconds))
    }

    static func apiKey(_ id: String, digest: String, expiresAt: Date? = nil) -> StoredAPIKey {
        StoredAPIKey(
            id: id, name: "name \(id)", scopes: ["platforms.read", "launches.read"], prefix: "sk_test_abcd", secretDigest: digest,
            createdBy: "cli", createdAt: epoch, expiresAt: expiresAt)
    }

    static let administrationChecks: [Check] = [
        Check(name: "a registration's endpoints and deployments are replaced together; issuer and client id stay") { store in
            try await store.addRegistration(registration("r1", deployments: ["dep-1", "dep-2"]))
            var changed = registration("r1", deployments: ["dep-3", "dep-1"])
            changed.issuer = "https://elsewhere.example"
            changed.authURL = "https://lms.example.edu/auth2"
            changed.jwksURL = "https://lms.example.edu/jwks2"
            try expect(try await store.updateRegistration(changed), "update refused")
            let found = try await store.registration(id: "r1")
            try expect(
                found?.deploymentIDs == ["dep-3", "dep-1"] && found?.authURL == "https://lms.example.edu/auth2"
                    && found?.jwksURL == "https://lms.example.edu/jwks2" && found?.issuer == "https://lms.example.edu",
                "read back \(String(describing: found))")
            try expect(try await store.updateRegistration(registration("none")) == false, "unknown registration updated")
        },
        Check(name: "launches are filtered and paged newest first, stable when launches are added between pages") { store in
            for (index, (registration, lab)) in [("r1", "42"), ("r2", "42"), ("r1", "7"), ("r1", "42"), ("r1", "42")].enumerated() {
                try await store.recordLaunch(launch("launch-\(index)", registration: registration, lab: lab, at: Double(index)))
            }
            // Two launches in the same second: the id orders them.
            try await store.recordLaunch(launch("launch-4b", at: 4))
            var query = LaunchQuery(registrationID: "r1", labID: "42", limit: 2)
            let first = try await store.launches(matching: query)
            try expect(first.map(\.id) == ["launch-4b", "launch-4"], "first page \(first.map(\.id))")
            try await store.recordLaunch(launch("launch-new", at: 10))
            query.after = ListPosition(time: first[1].createdAt, id: first[1].id)
            let second = try await store.launches(matching: query)
            try expect(second.map(\.id) == ["launch-3", "launch-0"], "second page \(second.map(\.id))")
            query.after = ListPosition(time: second[1].createdAt, id: second[1].id)
            try expect(try await store.launches(matching: query).isEmpty, "a third page")
            let window = try await store.launches(
                matching: LaunchQuery(createdFrom: epoch.addingTimeInterval(1), createdBefore: epoch.addingTimeInterval(3), limit: 10))
            try expect(window.map(\.id) == ["launch-2", "launch-1"], "time window \(window.map(\.id))")
            let byOutcome = try await store.launches(matching: LaunchQuery(learnerID: "l1", outcome: "none", limit: 10))
            try expect(byOutcome.isEmpty, "outcome filter \(byOutcome.map(\.id))")
        },
        Check(name: "API keys are found by the digest of their secret, listed, marked used and deleted") { store in
            try await store.addAPIKey(apiKey("key_a", digest: "digest-a"))
            try await store.addAPIKey(apiKey("key_b", digest: "digest-b", expiresAt: epoch.addingTimeInterval(60)))
            do {
                try await store.addAPIKey(apiKey("key_c", digest: "digest-a"))
                try expect(false, "a second key with the same secret digest was stored")
            } catch let error as StorageError {
                try expect(error.code == .duplicate, "duplicate digest: \(error)")
            }
            try expect(
                try await store.apiKey(secretDigest: "digest-b") == apiKey("key_b", digest: "digest-b", expiresAt: epoch.addingTimeInterval(60)),
                "by digest")
            try expect(try await store.apiKey(secretDigest: "digest-x") == nil, "unknown digest found")
            try await store.markAPIKeyUsed(id: "key_a", at: epoch.addingTimeInterval(100))
            try await store.markAPIKeyUsed(id: "key_a", at: epoch.addingTimeInterval(50))
            try expect(try await store.apiKey(id: "key_a")?.lastUsedAt == epoch.addingTimeInterval(100), "last used went back in time")
            try expect(try await store.apiKeys().map(\.id) == ["key_a", "key_b"], "listed")
            try expect(try await store.deleteAPIKey(id: "key_a"), "delete refused")
            try expect(try await store.deleteAPIKey(id: "key_a") == false, "deleted twice")
            try expect(try await store.apiKey(secretDigest: "digest-a") == nil, "a deleted key is still found")
        },
        Check(name: "audit events are listed newest first and paged") { store in
            for index in 0..<5 {
                try await store.recordAuditEvent(
                    AuditEvent(
                        id: "evt-\(index)", actor: "cli", action: "platform.create", target: "r\(index)",
                        at: epoch.addingTimeInterval(Double(index / 2))))
            }
            let first = try await store.auditEvents(after: nil, limit: 3)
            try expect(first.map(\.id) == ["evt-4", "evt-3", "evt-2"], "first page \(first.map(\.id))")
            let rest = try await store.auditEvents(after: ListPosition(time: first[2].at, id: first[2].id), limit: 3)
            try expect(rest.map(\.id) == ["evt-1", "evt-0"], "second page \(rest.map(\.id))")
            try expect(rest.last == AuditEvent(id: "evt-0", actor: "cli", action: "platform.create", target: "r0", at: epoch), "round trip")
        },
        Check(name: "one deployment is added or removed at a time; the last one stays") { store in
            try await store.addRegistration(registration("r1", deployments: ["dep-1"]))
            try expect(try await store.addDeployment("dep-2", registrationID: "r1"), "add refused")
            try expect(try await store.addDeployment("dep-3", registrationID: "none") == false, "added to no registration")
            do {
                _ = try await store.addDeployment("dep-2", registrationID: "r1")
                try expect(false, "a deployment was added twice")
            } catch let error as StorageError {
                try expect(error.code == .duplicate, "duplicate: \(error)")
            }
            try expect(try await store.registration(id: "r1")?.deploymentIDs == ["dep-1", "dep-2"], "order")
            try expect(try await store.removeDeployment("dep-1", registrationID: "r1"), "remove refused")
            try expect(try await store.removeDeployment("dep-2", registrationID: "r1") == false, "the last deployment was removed")
            try expect(try await store.registration(id: "r1")?.deploymentIDs == ["dep-2"], "after removal")
        },
        Check(name: "a launch is found by its lab instance; lab events keep what they do not carry; webhook events are remembered") { store in
            var first = launch("a", at: 0)
            first.labInstanceID = "inst-1"
            first.agsLineItems = "https://lms/lineitems"
            first.agsScopes = ["https://purl.imsglobal.org/spec/lti-ags/scope/score"]
            var second = launch("b", at: 5)
            second.labInstanceID = "inst-1"
            try await store.recordLaunch(first)
            try await store.recordLaunch(second)
            try expect(try await store.launch(labInstanceID: "inst-1")?.id == "b", "the newest launch of the instance")
            try expect(try await store.launch(id: "a") == first, "AGS fields round-trip")
            try await store.recordLabEvent(launchID: "b", state: "scored", completionStatus: 2, endedAt: nil)
            try await store.recordLabEvent(launchID: "b", state: "torn-down", completionStatus: nil, endedAt: epoch.addingTimeInterval(60))
            let found = try await store.launch(id: "b")
            try expect(
                found?.labState == "torn-down" && found?.completionStatus == 2 && found?.endedAt == epoch.addingTimeInterval(60),
                "lifecycle \(String(describing: found))")
            try expect(try await store.webhookEventHandled(event: "scored", labInstanceID: "inst-1") == false, "unknown event handled")
            try await store.recordWebhookEvent(event: "scored", labInstanceID: "inst-1", at: epoch, expiresAt: epoch.addingTimeInterval(60))
            try await store.recordWebhookEvent(event: "scored", labInstanceID: "inst-1", at: epoch, expiresAt: epoch.addingTimeInterval(60))
            try expect(try await store.webhookEventHandled(event: "scored", labInstanceID: "inst-1"), "handled event forgotten")
            try expect(try await store.webhookEventHandled(event: "saved", labInstanceID: "inst-1") == false, "another event counted")
            _ = try await store.deleteExpired(now: epoch.addingTimeInterval(61))
            try expect(try await store.webhookEventHandled(event: "scored", labInstanceID: "inst-1") == false, "kept past its expiry")
        },
        Check(name: "jobs are counted and listed by kind") { store in
            for key in ["a", "b"] { try await store.enqueueJob(kind: "score", key: key, payload: "{}", runAt: epoch) }
            try await store.enqueueJob(kind: "other", key: "c", payload: "{}", runAt: epoch)
            let claimed = try await store.claimJobs(
                kind: "score", key: "b", now: epoch, leaseUntil: epoch.addingTimeInterval(30), worker: "w", limit: 1)
            guard let job = claimed.first else { throw Failure(description: "job b not claimed") }
            try await store.failJob(job, worker: "w", failure: JobFailure(code: "x", detail: "x"), retryAt: nil)
            let counts = try await store.jobCounts(kind: "score")
            try expect(counts.waiting == 1 && counts.held == 1, "counts \(counts)")
            try expect(try await store.queuedJobs(kind: "score", limit: 10).map(\.key) == ["a", "b"], "listed by kind")
        },
    ]
}
