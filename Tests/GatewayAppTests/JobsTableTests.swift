import Foundation
import GatewayStorage
import Testing

@testable import GatewayApp

@Suite("jobs list: platform, email domain and age beside the opaque learner id, in aligned columns")
struct JobsTableTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func provisioning(learner: String, email: String?, registration: String, queued: TimeInterval, held: Bool = false) throws -> QueuedJob {
        let identity = LearnerIdentity(
            id: learner, issuer: "https://lms.example.edu", trustAnchor: "https://lms.example.edu/jwks", subject: "s-\(learner)", givenName: "Ada",
            familyName: "Lovelace", email: email, firstSeen: now, lastSeen: now)
        let request = SkyPrepProvisioningRequest(identity: identity, registrationID: registration, roles: [])
        return QueuedJob(
            kind: SkyPrepProvisioningQueue.kind, key: learner, payload: try StoredJSON.encode(request), revision: 1, attempts: held ? 3 : 1,
            nextRunAt: now.addingTimeInterval(30), lastError: held ? "email_in_use: SkyPrep has another user with this email" : nil,
            failureCode: held ? "email_in_use" : nil, held: held, createdAt: now.addingTimeInterval(-queued))
    }

    @Test("each job's platform, only its email's domain, and its age; columns line up under their headers")
    func table() throws {
        let jobs = [
            try Self.provisioning(learner: "lrn_0123456789abcdef", email: "Ada.Lovelace@Example.EDU", registration: "plt_acme", queued: 300),
            try Self.provisioning(learner: "lrn_2", email: nil, registration: "plt_other", queued: 3 * 86_400 + 5, held: true),
            QueuedJob(
                kind: ScoreOutbox.kind, key: "90210", payload: "{}", revision: 1, attempts: 0, nextRunAt: Self.now, lastError: nil, held: false,
                createdAt: Self.now.addingTimeInterval(-42)),
        ]
        let table = PlatformAdministration.jobsTable(jobs, now: Self.now)
        let lines = table.components(separatedBy: "\n")
        #expect(!table.contains("Ada.Lovelace") && !table.contains("@"), "an email address is personal data")
        let header = lines[0]
        for column in ["KIND", "KEY", "PLATFORM", "EMAIL DOMAIN", "AGE", "STATE", "ATTEMPTS", "NEXT RUN", "LAST ERROR"] {
            #expect(header.contains(column), "\(column) missing: \(header)")
        }
        func cell(_ line: String, _ column: String) -> String {
            guard let start = header.range(of: column)?.lowerBound else { return "?" }
            let offset = header.distance(from: header.startIndex, to: start)
            return String(line.dropFirst(offset).prefix { $0 != " " })
        }
        #expect(cell(lines[1], "KEY") == "lrn_0123456789abcdef")
        #expect(cell(lines[1], "PLATFORM") == "plt_acme" && cell(lines[1], "EMAIL DOMAIN") == "example.edu" && cell(lines[1], "AGE") == "5m")
        #expect(cell(lines[1], "STATE") == "waiting")
        #expect(cell(lines[2], "PLATFORM") == "plt_other" && cell(lines[2], "EMAIL DOMAIN") == "-" && cell(lines[2], "AGE") == "3d")
        #expect(cell(lines[2], "STATE") == "held" && cell(lines[2], "LAST ERROR") == "[email_in_use]")
        #expect(cell(lines[3], "PLATFORM") == "-" && cell(lines[3], "AGE") == "42s")
        #expect(table.contains("lti-gateway jobs retry <key>"), "held jobs say how to release them")
        #expect(PlatformAdministration.jobsTable([], now: Self.now) == "No queued jobs.\n")
    }

    @Test(
        "ages in their largest whole unit",
        arguments: [
            (0.0, "0s"), (42.0, "42s"), (59.0, "59s"), (60.0, "1m"), (3599.0, "59m"), (10_799.0, "2h"), (10_800.0, "3h"), (180_000.0, "2d"),
            (-5.0, "0s"),
        ] as [(Double, String)])
    func age(seconds: Double, expected: String) {
        #expect(AdministrationTables.age(since: Self.now.addingTimeInterval(-seconds), now: Self.now) == expected)
    }
}
