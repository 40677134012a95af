import Foundation
import GatewayStorage
import GatewaySupport
import LTICore
import Logging
import Metrics

/// One kind of durable job on this instance: claims due jobs of its kind (from any instance's queueing), runs each
/// under a short lease renewed while it runs, and settles it — done, due again after a backoff, or held for an
/// operator when retrying cannot help or its attempts ran out. Used by SkyPrep provisioning and score delivery.
final class DurableJobs: Sendable {
    /// How a failed run is settled.
    struct Failure: Sendable {
        /// Stable code kept with the job (`jobs list`, `outbox list`).
        var code: String
        /// Whether running it again later may succeed (else it is held at once).
        var transient: Bool
    }

    let kind: String
    let store: any JobQueueStore
    let workerID: String
    let lease: TimeInterval
    /// Waits before a failed job runs again.
    let retry: Backoff
    /// A job failing this many times is held for an operator; nil: retried for as long as it is transient.
    let maxAttempts: Int?
    /// The log field naming a job's key (`gw.learner`, `gw.launch`).
    let keyField: String
    /// What the logs and `…_total` counter call this work (`SkyPrep provisioning`, `skyprep_provisioning`).
    let name: String
    let metric: String
    let logger: Logger
    let now: @Sendable () -> Date
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>

    init(
        kind: String, store: any JobQueueStore, lease: TimeInterval, retry: Backoff, maxAttempts: Int? = nil, keyField: String, name: String,
        metric: String, logger: Logger, now: @escaping @Sendable () -> Date
    ) {
        self.kind = kind
        self.store = store
        self.workerID = "worker-" + SecureRandom.token().prefix(12)
        self.lease = lease
        self.retry = retry
        self.maxAttempts = maxAttempts
        self.keyField = keyField
        self.name = name
        self.metric = metric
        self.logger = logger
        self.now = now
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues (or replaces the payload of) job `key`, due now; `wake` starts this instance's worker on it at once.
    func enqueue(key: String, payload: String, wake: Bool = true) async throws {
        try await store.enqueueJob(kind: kind, key: key, payload: payload, runAt: now())
        if wake { wakeUp.yield() }
    }

    /// Starts this instance's worker on the due jobs (one queued by another write, with its caller's).
    func wake() {
        wakeUp.yield()
    }

    /// Claims the due job `key` (or any due job), to this worker for one lease.
    func claim(key: String?, limit: Int = 1) async throws -> [QueuedJob] {
        let now = now()
        return try await store.claimJobs(kind: kind, key: key, now: now, leaseUntil: now.addingTimeInterval(lease), worker: workerID, limit: limit)
    }

    /// Runs due jobs with `perform`, up to `limit`; how many ran. Each is claimed just before it runs — a job claimed
    /// early would sit out its short lease behind the others and be taken over by another worker.
    @discardableResult
    func runDue(limit: Int = 20, _ perform: @escaping @Sendable (QueuedJob) async throws -> Void) async -> Int {
        var ran = 0
        while ran < limit, !Task.isCancelled {
            let job: QueuedJob
            do {
                guard let next = try await claim(key: nil).first else { break }
                job = next
            } catch {
                logger.warning("job queue unavailable", metadata: ["gw.job.kind": "\(kind)", "error": "\(error)"])
                break
            }
            _ = try? await perform(job)
            ran += 1
        }
        return ran
    }

    /// Runs due jobs with `perform` whenever woken (this instance queued one) and at least every `poll` (jobs queued
    /// by other instances, retries), until cancelled.
    func work(poll: Duration, _ perform: @escaping @Sendable (QueuedJob) async throws -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [wakeUps] in
                for await _ in wakeUps {
                    while !Task.isCancelled, await self.runDue(perform) > 0 {}
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: poll)
                    self.wakeUp.yield()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs `write` outside the caller's cancellation: a job's outcome is stored even while the gateway shuts down.
    private func settle(_ write: @escaping @Sendable () async throws -> Void) async throws {
        try await Task { try await write() }.value
    }

    /// Runs one claimed job with `body` and settles it: complete; or, on an error `classify` calls transient, due again
    /// after the backoff (at once when the run was cut short by shutdown) — unless its attempts ran out; else held.
    ///
    /// The lease is short and renewed every third of it while the job runs, so the jobs of a worker that died are due
    /// again within one lease; the job is settled even when the run was cancelled, so it never waits out a lease its
    /// worker gave up.
    func run<T: Sendable>(
        _ job: QueuedJob, classify: @Sendable (any Error) -> Failure, _ body: (QueuedJob) async throws -> T
    ) async throws -> T {
        let heartbeat = Task { [store, workerID, lease, now, logger, keyField] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lease / 3))
                guard !Task.isCancelled else { return }
                let renewed = try? await store.renewJobLease(job, worker: workerID, until: now().addingTimeInterval(lease))
                if renewed == false { logger.warning("job lease lost while it ran", metadata: [keyField: "\(job.key)"]) }
                if renewed == true { logger.debug("job lease renewed", metadata: [keyField: "\(job.key)"]) }
            }
        }
        defer { heartbeat.cancel() }
        do {
            let result = try await body(job)
            try await settle { [store, workerID] in try await store.completeJob(job, worker: workerID) }
            return result
        } catch {
            let cancelled = Task.isCancelled || error is CancellationError
            var failure =
                (error as? StorageError).map { Failure(code: "storage_\($0.code.rawValue)", transient: $0.code != .corrupt) } ?? classify(error)
            if cancelled { failure.transient = true }
            let exhausted = !cancelled && maxAttempts.map { job.attempts >= $0 } == true
            let delay = cancelled ? 0 : retry.delay(afterAttempt: max(1, job.attempts)).totalSeconds
            let retryAt = failure.transient && !exhausted ? now().addingTimeInterval(delay) : nil
            Counter(label: "\(metric)_total", dimensions: [("outcome", retryAt == nil ? "held" : "retry")]).increment()
            logger.warning(
                "\(name) failed",
                metadata: [
                    keyField: "\(job.key)", "gw.job.attempt": "\(job.attempts)", "gw.job.failure": "\(failure.code)", "error": "\(error)",
                    "gw.job.next": "\(retryAt.map { ISO8601DateFormatter().string(from: $0) } ?? "held for an operator")",
                ])
            do {
                let stored = JobFailure(code: failure.code, detail: String(describing: error).prefix(500).description)
                try await settle { [store, workerID] in try await store.failJob(job, worker: workerID, failure: stored, retryAt: retryAt) }
            } catch {
                logger.error("job not settled; it runs again after its lease", metadata: [keyField: "\(job.key)", "error": "\(error)"])
            }
            throw error
        }
    }
}
