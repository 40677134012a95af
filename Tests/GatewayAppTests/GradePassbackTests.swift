import AsyncHTTPClient
import CryptoExtras
import Foundation
import GatewayStorage
import GatewayStorageSQLite
import GatewaySupport
import LTICore
import LTITestSupport
import Logging
import NIOCore
import NIOHTTP1
import PlatformServices
import Synchronization
import Testing

@testable import GatewayApp

@Suite("Grade passback: Skillable's webhooks, the durable score outbox, and the LMS gradebook", .serialized)
struct GradePassbackTests {
    static let secret = "webhook-secret-0123456789"

    static func configure(_ settings: inout GatewaySettings) {
        settings.skillable.webhookSecret = secret
        settings.lti.scoreRetry = .milliseconds(50)
        settings.server.jobPollInterval = .milliseconds(100)
    }

    /// A gateway (SQLite, then PostgreSQL) with platform A's token endpoint on a simulated gradebook.
    static func withGradebook(
        configure extra: @escaping (inout GatewaySettings) -> Void = { _ in }, _ body: (EndToEnd, GradebookServer) async throws -> Void
    ) async throws {
        try await withEndToEnd(configure: {
            configure(&$0); extra(&$0)
        }) { e2e in
            let gradebook = GradebookServer()
            try await gradebook.run(clientID: e2e.platformA.clientID) {
                gradebook.verifyingKeys.withLock { keys in
                    for key in e2e.gateway.toolKeys.ring.keys { keys[key.kid] = key.privateKey.publicKey }
                }
                _ = try await e2e.gateway.administration.updatePlatform(
                    id: e2e.registrationA.id, .init(tokenURL: gradebook.base + "/token"), by: .commandLine)
                try await body(e2e, gradebook)
            }
        }
    }

    /// A launch of platform A whose AGS claim offers `lineItem` (or only the line items) with the score scope; its lab
    /// instance and its record.
    static func gradedLaunch(
        _ e2e: EndToEnd, _ gradebook: GradebookServer, lineItem: String? = "/lineitems/1", labID: String = "1001", subject: String = "learner-42"
    ) async throws -> LaunchRecord {
        let response = try await e2e.fullLaunch(labID: labID) { claims in
            claims["sub"] = subject
            var endpoint: [String: Any] = [
                "scope": [AGSScope.score, AGSScope.lineItem], "lineitems": gradebook.base + "/lineitems",
            ]
            if let lineItem { endpoint["lineitem"] = lineItem.hasPrefix("http") ? lineItem : gradebook.base + lineItem }
            claims[LTIClaim.agsEndpoint] = endpoint
        }
        #expect(response.status == 303, "\(response.body)")
        let launch = try #require(try await e2e.gateway.store.recentLaunches(limit: 1).first)
        #expect(launch.labInstanceID != nil && launch.agsScopes.contains(AGSScope.score))
        return launch
    }

    static func details(_ launch: LaunchRecord, score: Double? = 8, maximum: Double? = 10, extra: String = "") -> String {
        let number: (Double?) -> String = { $0.map { String($0) } ?? "null" }
        return """
            {"Id":\(launch.labInstanceID ?? "0"),"UserId":5023932,"UserExternalId":"\(launch.learnerID)","LabProfileId":1001,
             "LabProfileName":"Networking basics","Start":1671565852,"End":null,"State":20,"CompletionStatus":2,
             "ExamPassed":null,"ExamScore":\(number(score)),"ExamMaxPossibleScore":\(number(maximum)),"ExamPassingScore":7\(extra)}
            """
    }

    static func webhook(_ e2e: EndToEnd, _ event: String, _ body: String, authorization: String? = "Bearer \(secret)") async throws -> BrowserResponse
    {
        var request = HTTPClientRequest(url: e2e.baseURL + "/webhooks/skillable/" + event)
        request.method = .POST
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await e2e.http.execute(request, timeout: .seconds(30))
        return BrowserResponse(
            status: Int(response.status.code), headers: response.headers, body: String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    static func outboxEmpty(_ e2e: EndToEnd) async throws -> Bool {
        try await e2e.gateway.store.queuedJobs(kind: ScoreOutbox.kind, limit: 10).isEmpty
    }

    @Test("a scored lab reaches the gradebook: token by a signed assertion, the score as AGS wants it; a retried webhook is handled once")
    func scoreReachesGradebook() async throws {
        try await Self.withGradebook { e2e, gradebook in
            let launch = try await Self.gradedLaunch(e2e, gradebook)
            let answered = try await Self.webhook(e2e, "scored", Self.details(launch))
            #expect(answered.status == 200 && answered.body == #"{"status":"score_queued"}"#, "\(answered.body)")
            #expect(await eventually { gradebook.scores.count == 1 }, "no score arrived: \(e2e.logs.lines(containing: "score").suffix(5))")
            let score = try #require(gradebook.scores.first)
            #expect(score["userId"] as? String == "learner-42")
            #expect(score["scoreGiven"] as? Double == 8 && score["scoreMaximum"] as? Double == 10)
            #expect(score["activityProgress"] as? String == "Completed" && score["gradingProgress"] as? String == "FullyGraded")
            #expect((score["timestamp"] as? String).flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) } != nil)
            let posted = try #require(gradebook.requests("/lineitems/1/scores").last)
            #expect(posted.headers["content-type"] == "application/vnd.ims.lis.v1.score+json")
            #expect(posted.headers["user-agent"]?.isEmpty == false)
            let tokenRequest = try #require(gradebook.requests("/token").first)
            #expect(tokenRequest.body.contains("scope=https%3A%2F%2Fpurl.imsglobal.org%2Fspec%2Flti-ags%2Fscope%2Fscore"), "\(tokenRequest.body)")
            #expect(await eventually { try await Self.outboxEmpty(e2e) }, "the delivered score stayed queued")

            // Skillable retries: the same event of the same lab is handled once, and nothing more is sent.
            let again = try await Self.webhook(e2e, "scored", Self.details(launch))
            #expect(again.status == 200 && again.body == #"{"status":"duplicate"}"#)
            #expect(try await Self.outboxEmpty(e2e) && gradebook.scores.count == 1)

            // A second learner's score reuses the cached token.
            let second = try await Self.gradedLaunch(e2e, gradebook, labID: "1002", subject: "learner-43")
            #expect(try await Self.webhook(e2e, "scored", Self.details(second, score: 3)).status == 200)
            #expect(await eventually { gradebook.scores.count == 2 })
            #expect(gradebook.requests("/token").count == 1, "the access token was not cached")
            #expect(e2e.logs.all.allSatisfy { !$0.contains("token-1") && !$0.contains(Self.secret) }, "a token or the secret was logged")
            #expect(try await e2e.metrics().contains("ags_score_deliveries_total"))
            // tool-config tells Skillable's administrator where to send which event.
            let config = try jsonObject(try await e2e.request(.GET, "/lti/config"))
            let hooks = try #require((config["skillable_webhooks"] as? [String: Any])?["events"] as? [[String: Any]])
            #expect(hooks.compactMap { $0["url"] as? String }.contains(e2e.baseURL + "/webhooks/skillable/scored"))
        }
    }

    @Test("webhooks without the secret are refused and change nothing; Basic with the secret as password is accepted; bad bodies are 400")
    func webhookAuthentication() async throws {
        try await Self.withGradebook { e2e, gradebook in
            let launch = try await Self.gradedLaunch(e2e, gradebook)
            for authorization in [
                nil, "Bearer wrong-secret-0123456789", "Bearer " + Self.secret + "x", "Basic " + Data("skillable:wrong".utf8).base64EncodedString(),
                Self.secret,
            ] {
                let refused = try await Self.webhook(e2e, "scored", Self.details(launch), authorization: authorization)
                #expect(
                    refused.status == 401 && refused.headers.first(name: "Content-Type")?.hasPrefix("application/json") == true,
                    "\(String(describing: authorization))")
            }
            #expect(try await Self.outboxEmpty(e2e))
            #expect(try await e2e.gateway.store.launch(id: launch.id)?.labState == nil, "a refused webhook changed the launch")
            #expect(e2e.logs.lines(containing: "gw.error=unauthorized").isEmpty == false)

            for (body, status) in [
                ("{not json", 400), (#"{"UserId":1}"#, 400), (#"{"Id":"../../etc"}"#, 400),
                ("{\"Id\":1,\"x\":\"" + String(repeating: "y", count: 70_000) + "\"}", 413),
            ] {
                #expect(try await Self.webhook(e2e, "torn-down", body).status == status, "\(body.prefix(30))")
            }
            #expect(try await Self.webhook(e2e, "Scored!", Self.details(launch)).status == 400)

            let basic = "Basic " + Data("skillable:\(Self.secret)".utf8).base64EncodedString()
            let accepted = try await Self.webhook(
                e2e, "torn-down", Self.details(launch, extra: #","Extra":1"#).replacingOccurrences(of: #""End":null"#, with: #""End":1671569452"#),
                authorization: basic)
            #expect(accepted.status == 200 && accepted.body.contains("recorded"), "\(accepted.body)")
            let recorded = try #require(try await e2e.gateway.store.launch(id: launch.id))
            #expect(
                recorded.labState == "torn-down" && recorded.completionStatus == 2 && recorded.endedAt == Date(timeIntervalSince1970: 1_671_569_452))
            let key = try await e2e.adminKey([.launchesRead])
            let listed = try jsonObject(try await e2e.api(.GET, "/api/v1/launches/\(launch.id)", key: key))
            #expect(listed["lab_state"] as? String == "torn-down" && listed["ended_at"] as? String == "2022-12-20T20:50:52Z")
            #expect(try await Self.webhook(e2e, "lab-profile-changed", Self.details(launch)).body.contains("recorded"), "unknown events are accepted")
            for event in ["saved", "resumed"] {
                #expect(try await Self.webhook(e2e, event, #"{"Id":\#(launch.labInstanceID ?? "0"),"CompletionStatus":"odd"}"#).status == 200)
                #expect(try await e2e.gateway.store.launch(id: launch.id)?.labState == event, "a field of another type is taken as absent")
            }
            #expect(try await Self.webhook(e2e, "scored", #"{"Id":424242}"#).body.contains("unmatched"))
            // Another user's event for this lab instance: nothing is sent to this learner's gradebook.
            let forged = Self.details(launch).replacingOccurrences(of: launch.learnerID, with: "someone-else")
            #expect(try await Self.webhook(e2e, "scored", forged).body.contains("unmatched"))
            #expect(try await Self.outboxEmpty(e2e))
        }
        try await withEndToEnd { e2e in
            let refused = try await Self.webhook(e2e, "scored", #"{"Id":1}"#)
            #expect(refused.status == 401 && refused.body.contains("not enabled"), "without GATEWAY_WEBHOOK_SECRET every webhook is refused")
        }
    }

    @Test("an LMS that is down gets the score later; one that refuses it holds it as failed for an operator, who retries it")
    func retriesAndFailures() async throws {
        try await Self.withGradebook(configure: { $0.lti.scoreAttempts = 3 }) { e2e, gradebook in
            gradebook.scoreFailures.withLock { $0 = [503, 500] }
            let launch = try await Self.gradedLaunch(e2e, gradebook)
            #expect(try await Self.webhook(e2e, "scored", Self.details(launch)).status == 200)
            #expect(await eventually { gradebook.scores.count == 1 }, "not delivered after the outage")
            #expect(gradebook.requests("/lineitems/1/scores").count == 3)

            // A refusal retrying cannot change: held at once.
            gradebook.scoreStatus.withLock { $0 = 400 }
            let refused = try await Self.gradedLaunch(e2e, gradebook, labID: "1002", subject: "learner-43")
            let instance = try #require(refused.labInstanceID)
            #expect(try await Self.webhook(e2e, "scored", Self.details(refused)).status == 200)
            let key = try await e2e.adminKey([.outboxRead, .outboxWrite])
            #expect(await eventually { try jsonList(try await e2e.api(.GET, "/api/v1/outbox", key: key)).first?["state"] as? String == "failed" })
            let failed = try #require(try jsonList(try await e2e.api(.GET, "/api/v1/outbox", key: key)).first)
            #expect(failed["id"] as? String == instance && failed["launch_id"] as? String == refused.id && failed["attempts"] as? Int == 1)
            #expect((failed["last_error"] as? String)?.contains("ags_rejected") == true)
            #expect(await eventually { try await e2e.metrics().contains("gateway_outbox_failed 1") })

            // Fixed at the LMS: the operator retries it.
            gradebook.scoreStatus.withLock { $0 = nil }
            let retried = try await e2e.api(.POST, "/api/v1/outbox/\(instance)/retry", key: key)
            #expect(retried.status == 200, "\(retried.body)")
            #expect(await eventually { gradebook.scores.count == 2 })
            // The LMS has the score a moment before the outbox records the delivery: wait for that, then nothing is left.
            #expect(await eventually { try await e2e.gateway.store.queuedJob(kind: ScoreOutbox.kind, key: instance) == nil })
            #expect(try await e2e.api(.POST, "/api/v1/outbox/\(instance)/retry", key: key).status == 404)

            // Down for longer than its attempts: held after the last one.
            gradebook.scoreStatus.withLock { $0 = 503 }
            let outage = try await Self.gradedLaunch(e2e, gradebook, labID: "1003", subject: "learner-44")
            #expect(try await Self.webhook(e2e, "scored", Self.details(outage)).status == 200)
            #expect(await eventually { try await e2e.gateway.store.queuedJob(kind: ScoreOutbox.kind, key: outage.labInstanceID ?? "")?.held == true })
            #expect(try await e2e.gateway.store.queuedJob(kind: ScoreOutbox.kind, key: outage.labInstanceID ?? "")?.attempts == 3)
            // The LMS is back: a retry gets the attempts afresh, and the score arrives.
            gradebook.scoreStatus.withLock { $0 = nil }
            #expect(try await e2e.api(.POST, "/api/v1/outbox/\(outage.labInstanceID ?? "")/retry", key: key).status == 200)
            #expect(await eventually { gradebook.scores.count == 3 })

            // A line item the gateway will not call (plain http to another machine): held, and no token sent there.
            let plain = try await Self.gradedLaunch(
                e2e, gradebook, lineItem: "http://grades.example.edu/lineitems/9", labID: "1001", subject: "learner-45")
            #expect(try await Self.webhook(e2e, "scored", Self.details(plain)).status == 200)
            #expect(
                await eventually {
                    try await e2e.gateway.store.queuedJob(kind: ScoreOutbox.kind, key: plain.labInstanceID ?? "")?.failureCode == "ags_url_refused"
                })
        }
    }

    @Test("a launch with only the line items URL: the resource link's column is found, or created once, and scored")
    func lineItemFoundOrCreated() async throws {
        try await Self.withGradebook { e2e, gradebook in
            let launch = try await Self.gradedLaunch(e2e, gradebook, lineItem: nil)
            #expect(try await Self.webhook(e2e, "scored", Self.details(launch)).status == 200)
            #expect(await eventually { gradebook.scores.count == 1 })
            let created = try #require(gradebook.lineItems.withLock { $0 }.first)
            #expect(created["resourceId"] == "1001" && created["resourceLinkId"] == "resource-link-7" && created["label"] == "Networking basics")
            #expect(gradebook.requests("/lineitems?resource_link_id=resource-link-7").count == 1)
            let posted = try #require(gradebook.requests("/lineitems/").last)
            #expect(posted.path == "/lineitems/100/scores")

            let again = try await Self.gradedLaunch(e2e, gradebook, lineItem: nil, subject: "learner-43")
            #expect(try await Self.webhook(e2e, "scored", Self.details(again)).status == 200)
            #expect(await eventually { gradebook.scores.count == 2 })
            #expect(gradebook.lineItems.withLock { $0.count } == 1, "the column was created twice")
            // Every scope asked for is one the tool's registrations request (tool-config, dynamic registration), and all are used.
            let asked = gradebook.requests("/token").flatMap { request in
                URLComponents(string: "?" + request.body)?.queryItems?.first { $0.name == "scope" }?.value?.split(separator: " ").map(String.init)
                    ?? []
            }
            #expect(Set(asked) == Set(AGSScope.requested), "\(asked)")
        }
    }

    @Test("a token the LMS stops accepting is dropped and fetched again once")
    func expiredToken() async throws {
        try await Self.withGradebook { e2e, gradebook in
            let first = try await Self.gradedLaunch(e2e, gradebook)
            #expect(try await Self.webhook(e2e, "scored", Self.details(first)).status == 200)
            #expect(await eventually { gradebook.scores.count == 1 })
            _ = gradebook.revoked.withLock { $0.insert("token-1") }
            // The platform refuses the next token request (its cache of the tool's keys lags a rotation): tried again.
            gradebook.tokenRefusals.withLock { $0 = 1 }
            let second = try await Self.gradedLaunch(e2e, gradebook, labID: "1002", subject: "learner-43")
            #expect(try await Self.webhook(e2e, "scored", Self.details(second)).status == 200)
            #expect(await eventually { gradebook.scores.count == 2 })
            #expect(gradebook.requests("/token").count == 3)
        }
    }

    @Test("a score queued before a restart is delivered by the next process on the same database")
    func survivesRestart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-outbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gateway.sqlite").path
        let gradebook = GradebookServer()
        let key = try ToolKey.generate(bits: 2048, now: Date())
        try await gradebook.run(clientID: "client-r") {
            gradebook.verifyingKeys.withLock { $0[key.kid] = key.privateKey.publicKey }
            let registration = PlatformRegistration(
                id: "plt_r", issuer: "https://lms.example", clientID: "client-r", authURL: "https://lms.example/auth",
                tokenURL: gradebook.base + "/token",
                jwksURL: "https://lms.example/jwks", deploymentIDs: ["d"], createdAt: Date())
            let launch = LaunchRecord(
                id: "launch-r", registrationID: "plt_r", deploymentID: "d", learnerID: "learner-r", subject: "sub-r",
                messageType: "LtiResourceLinkRequest",
                resourceLinkID: "rl", contextID: nil, labID: "1001", outcome: "launched", vendorResultCode: 1, labInstanceID: "777",
                agsLineItem: gradebook.base + "/lineitems/1", agsScopes: [AGSScope.score], createdAt: Date())
            func outbox(_ store: SQLiteGatewayStore) -> ScoreOutbox {
                let http = HTTPClient.shared
                return ScoreOutbox(
                    store: store, client: AGSClient(http: http, signer: { ToolTokenSigner(activeKey: key) }, logger: Logger(label: "ags")),
                    logger: Logger(label: "outbox"), lease: 30, retry: Backoff(base: .milliseconds(10), cap: .seconds(1), jitter: .none),
                    maxAttempts: 5,
                    now: { Date() })
            }
            // First process: the LMS is down; the score is queued and its one attempt fails.
            gradebook.scoreStatus.withLock { $0 = 503 }
            let first = try await SQLiteGatewayStore.open(path: path, logger: Logger(label: "db"))
            try await first.whileRunning {
                try await first.migrate()
                try await first.addRegistration(registration)
                try await first.recordLaunch(launch)
                let queue = outbox(first)
                try await queue.enqueue(
                    ScoreDelivery(launchID: "launch-r", labInstanceID: "777", scoreGiven: 5, scoreMaximum: 10, scoredAt: Date(), labName: nil))
                #expect(await queue.runDue() == 1)
            }
            try await first.close()
            #expect(gradebook.scores.isEmpty)
            // Next process, LMS back: the queued score is delivered.
            gradebook.scoreStatus.withLock { $0 = nil }
            let second = try await SQLiteGatewayStore.open(path: path, logger: Logger(label: "db"))
            try await second.whileRunning {
                try await second.migrate()
                let queue = outbox(second)
                #expect(await eventually { await queue.runDue() > 0 && gradebook.scores.count == 1 })
                #expect(try await second.queuedJobs(kind: ScoreOutbox.kind, limit: 10).isEmpty)
            }
            try await second.close()
        }
    }
}
