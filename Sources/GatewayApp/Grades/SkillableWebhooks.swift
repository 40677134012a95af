import Foundation
import GatewayStorage
import LTICore
import Logging
import PlatformServices

/// Skillable's lab-details body (lti-advantage.md §5); every field but the lab instance id may be missing or null.
struct SkillableLabDetails: Decodable, Sendable {
    /// The lab instance (`Id`), a number in Skillable's examples; taken as text.
    var instanceID: String
    var userExternalID: String?
    var labProfileID: Int?
    var labProfileName: String?
    var end: Double?
    var lastActivity: Double?
    var completionStatus: Int?
    var examScore: Double?
    var examMaxPossibleScore: Double?

    enum CodingKeys: String, CodingKey {
        case instanceID = "Id"
        case userExternalID = "UserExternalId"
        case labProfileID = "LabProfileId"
        case labProfileName = "LabProfileName"
        case end = "End"
        case lastActivity = "LastActivity"
        case completionStatus = "CompletionStatus"
        case examScore = "ExamScore"
        case examMaxPossibleScore = "ExamMaxPossibleScore"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let number = try? c.decode(Int64.self, forKey: .instanceID) {
            instanceID = String(number)
        } else {
            instanceID = try c.decode(String.self, forKey: .instanceID)
        }
        guard (1...64).contains(instanceID.count), instanceID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw DecodingError.dataCorruptedError(forKey: .instanceID, in: c, debugDescription: "not a lab instance id")
        }
        // Only the id is required; a field of an unexpected type is taken as absent (a 400 would make Skillable give up
        // on the event after its retries, and the score with it).
        userExternalID = (try? c.decodeIfPresent(String.self, forKey: .userExternalID)) ?? nil
        labProfileID = (try? c.decodeIfPresent(Int.self, forKey: .labProfileID)) ?? nil
        labProfileName = (try? c.decodeIfPresent(String.self, forKey: .labProfileName)) ?? nil
        end = (try? c.decodeIfPresent(Double.self, forKey: .end)) ?? nil
        lastActivity = (try? c.decodeIfPresent(Double.self, forKey: .lastActivity)) ?? nil
        completionStatus = (try? c.decodeIfPresent(Int.self, forKey: .completionStatus)) ?? nil
        examScore = (try? c.decodeIfPresent(Double.self, forKey: .examScore)) ?? nil
        examMaxPossibleScore = (try? c.decodeIfPresent(Double.self, forKey: .examMaxPossibleScore)) ?? nil
    }
}

extension LaunchRecord {
    /// Whether the launch's platform offered a gradebook the outbox can post to: the score scope, and a line item —
    /// named, or found or created in the context's line items (which needs the line item scope).
    var offersGradebook: Bool {
        agsScopes.contains(AGSScope.score) && (agsLineItem != nil || (agsLineItems != nil && agsScopes.contains(AGSScope.lineItem)))
    }
}

/// What became of one webhook delivery.
enum WebhookOutcome: String, Sendable {
    /// A score was queued for the LMS's gradebook.
    case scoreQueued = "score_queued"
    /// The lab's state was recorded on its launch (no score to send).
    case recorded
    /// This event of this lab instance was handled before (Skillable retries): nothing done again.
    case duplicate
    /// No launch of this gateway started this lab instance: nothing to do.
    case unmatched
}

/// Handles Skillable's lab events (SPEC "Grade passback"): each event of a lab instance once, matched to the launch
/// that started the lab; the lab's state goes on the launch record, and a score of a launch whose platform offered
/// a gradebook (AGS with the score scope) is queued in the durable outbox — all stored before the webhook is answered.
struct SkillableWebhooks: Sendable {
    let store: any LaunchStore & WebhookEventStore
    let outbox: ScoreOutbox
    let now: @Sendable () -> Date
    /// How long a handled event is remembered (long after Skillable's last retry).
    var memory: TimeInterval = 7 * 86_400

    /// Event names as they appear in the URL: lower-case words joined by `-`.
    static func isEventName(_ name: String) -> Bool {
        (1...40).contains(name.count) && name.allSatisfy { ("a"..."z").contains($0) || $0 == "-" }
    }

    func handle(event: String, details: SkillableLabDetails, logger: Logger) async throws -> WebhookOutcome {
        let instance = details.instanceID
        if try await store.webhookEventHandled(event: event, labInstanceID: instance) { return .duplicate }
        let outcome = try await apply(event: event, details: details, logger: logger)
        // Remembered last: a crash before this line makes Skillable's retry run it again (the outbox job is keyed by
        // the lab instance, so it is queued once either way) — nothing is lost.
        try await store.recordWebhookEvent(event: event, labInstanceID: instance, at: now(), expiresAt: now().addingTimeInterval(memory))
        return outcome
    }

    private func apply(event: String, details: SkillableLabDetails, logger: Logger) async throws -> WebhookOutcome {
        guard let launch = try await store.launch(labInstanceID: details.instanceID) else { return .unmatched }
        if let external = details.userExternalID, external != launch.learnerID {
            logger.warning(
                "webhook's user is not the launch's learner; ignored",
                metadata: ["lab.instance": "\(details.instanceID)", "gw.launch": "\(launch.id)"])
            return .unmatched
        }
        let ended = event == "torn-down" ? details.end.map(Date.init(timeIntervalSince1970:)) ?? now() : nil
        try await store.recordLabEvent(launchID: launch.id, state: event, completionStatus: details.completionStatus, endedAt: ended)
        guard event == "scored" else { return .recorded }
        guard let given = details.examScore, let maximum = details.examMaxPossibleScore, maximum > 0, given >= 0, given.isFinite else {
            logger.info("lab scored without a score to send", metadata: ["lab.instance": "\(details.instanceID)", "gw.launch": "\(launch.id)"])
            return .recorded
        }
        guard launch.offersGradebook else {
            logger.info(
                "lab scored; its launch offered no gradebook", metadata: ["lab.instance": "\(details.instanceID)", "gw.launch": "\(launch.id)"])
            return .recorded
        }
        try await outbox.enqueue(
            ScoreDelivery(
                // Skillable's own time when it gave one: a redelivery of the same score carries the same timestamp.
                launchID: launch.id, labInstanceID: details.instanceID, scoreGiven: given, scoreMaximum: maximum,
                scoredAt: (details.end ?? details.lastActivity).map(Date.init(timeIntervalSince1970:)) ?? now(),
                labName: details.labProfileName))
        return .scoreQueued
    }
}
