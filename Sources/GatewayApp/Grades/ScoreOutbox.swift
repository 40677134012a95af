import Foundation
import GatewayStorage
import GatewaySupport
import LTICore
import Logging
import Metrics
import PlatformServices

/// One score to deliver to a platform's gradebook: the durable outbox job's payload.
struct ScoreDelivery: Codable, Sendable, Equatable {
    var launchID: String
    var labInstanceID: String
    var scoreGiven: Double
    var scoreMaximum: Double
    /// When Skillable scored the lab (the webhook's arrival): the LMS keeps the newest score per learner and column.
    var scoredAt: Date
    /// The lab's name, for a gradebook column the gateway creates.
    var labName: String?
}

/// Why a delivery stopped for good.
enum ScoreDeliveryError: Error, CustomStringConvertible {
    case launchMissing(String)
    case platformMissing(String)
    case noGradebook(String)

    var code: String {
        switch self {
        case .launchMissing: "launch_missing"
        case .platformMissing: "platform_removed"
        case .noGradebook: "no_gradebook"
        }
    }

    var description: String {
        switch self {
        case .launchMissing(let id): "launch_missing: launch \(id) is no longer recorded"
        case .platformMissing(let id): "platform_removed: platform \(id) is no longer registered"
        case .noGradebook(let id): "no_gradebook: launch \(id) carries no AGS line item or line items URL with the score scope"
        }
    }
}

/// The durable outbox of scores (SPEC "Grade passback"): a scored lab is queued as a job before its webhook is
/// answered; workers of any instance deliver it to the LMS with backoff and jitter, across restarts, until the LMS
/// takes it — or, after `GATEWAY_SCORE_ATTEMPTS` attempts (or a refusal retrying cannot change), hold it as failed
/// for an operator (`outbox list`, `outbox retry`, the admin API's `outbox`).
final class ScoreOutbox: Sendable {
    static let kind = "ags.score"

    let store: any LaunchStore & RegistrationStore & JobQueueStore
    let client: AGSClient
    let logger: Logger
    let jobs: DurableJobs

    init(
        store: any LaunchStore & RegistrationStore & JobQueueStore, client: AGSClient, logger: Logger, lease: TimeInterval, retry: Backoff,
        maxAttempts: Int, now: @escaping @Sendable () -> Date
    ) {
        self.store = store
        self.client = client
        self.logger = logger
        jobs = DurableJobs(
            kind: Self.kind, store: store, lease: lease, retry: retry, maxAttempts: maxAttempts, keyField: "lab.instance",
            name: "score delivery", metric: "ags_score_deliveries", logger: logger, now: now)
    }

    /// Queues `delivery` (keyed by its lab instance: one score per lab) and wakes this instance's worker.
    func enqueue(_ delivery: ScoreDelivery) async throws {
        try await jobs.enqueue(key: delivery.labInstanceID, payload: try StoredJSON.encode(delivery))
    }

    @discardableResult
    func runDue(limit: Int = 20) async -> Int {
        await jobs.runDue(limit: limit) { job in try await self.run(job) }
    }

    func work(poll: Duration) async {
        await jobs.work(poll: poll) { job in try await self.run(job) }
    }

    /// Publishes how many deliveries wait and how many failed (`gateway_outbox_pending`, `gateway_outbox_failed`).
    func publishDepth() async {
        do {
            let counts = try await store.jobCounts(kind: Self.kind)
            Gauge(label: "gateway_outbox_pending").record(counts.waiting)
            Gauge(label: "gateway_outbox_failed").record(counts.held)
        } catch {
            logger.warning("outbox depth not read", metadata: ["error": "\(error)"])
        }
    }

    private func run(_ job: QueuedJob) async throws {
        try await jobs.run(
            job,
            classify: { error in
                if let error = error as? AGSError { return DurableJobs.Failure(code: error.code.rawValue, transient: error.transient) }
                if let error = error as? ScoreDeliveryError { return DurableJobs.Failure(code: error.code, transient: false) }
                return DurableJobs.Failure(code: "error", transient: true)
            }
        ) { job in
            let delivery = try StoredJSON.decode(ScoreDelivery.self, from: job.payload, what: "the payload of job \(job.kind) \(job.key)")
            try await deliver(delivery)
            Counter(label: "ags_score_deliveries_total", dimensions: [("outcome", "delivered")]).increment()
            logger.info(
                "score delivered",
                metadata: [
                    "lab.instance": "\(delivery.labInstanceID)", "gw.launch": "\(delivery.launchID)", "gw.job.attempt": "\(job.attempts)",
                    "ags.score": "\(delivery.scoreGiven)/\(delivery.scoreMaximum)",
                ])
        }
    }

    /// Posts the score to the launch's line item — the one the launch named, or the resource link's column in the
    /// context's line items, found or created (resourceId = the lab id).
    func deliver(_ delivery: ScoreDelivery) async throws {
        guard let launch = try await store.launch(id: delivery.launchID) else { throw ScoreDeliveryError.launchMissing(delivery.launchID) }
        guard let registration = try await store.registration(id: launch.registrationID) else {
            throw ScoreDeliveryError.platformMissing(launch.registrationID)
        }
        let account = PlatformServiceAccount(id: registration.id, clientID: registration.clientID, tokenURL: registration.tokenURL)
        let lineItem: String
        guard launch.offersGradebook else { throw ScoreDeliveryError.noGradebook(launch.id) }
        if let named = launch.agsLineItem {
            lineItem = named
        } else if let lineItems = launch.agsLineItems {
            lineItem = try await client.lineItem(
                in: lineItems, resourceLinkID: launch.resourceLinkID, resourceID: launch.labID ?? delivery.labInstanceID,
                label: delivery.labName ?? "Lab \(launch.labID ?? "")", scoreMaximum: delivery.scoreMaximum, account: account)
        } else {
            throw ScoreDeliveryError.noGradebook(launch.id)
        }
        try await client.postScore(
            AGSScore(userID: launch.subject, scoreGiven: delivery.scoreGiven, scoreMaximum: delivery.scoreMaximum, timestamp: delivery.scoredAt),
            lineItem: lineItem, account: account)
    }
}
