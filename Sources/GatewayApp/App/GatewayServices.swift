import Foundation
import GatewayStorage
import Logging
import ServiceLifecycle

/// Runs until graceful shutdown, then closes a resource (database, HTTP client) after the server stopped.
struct ClosingService: Service {
    let name: String
    let close: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        // Closing must happen also when the group was cancelled: run it in a task that is not.
        let close = self.close
        try await Task { try await close() }.value
    }
}

/// Runs `work` every `interval` until graceful shutdown.
struct PeriodicService: Service {
    let interval: Duration
    let work: @Sendable () async -> Void

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: interval)
                    await work()
                }
            }
        } catch is CancellationError {
            return
        }
    }
}

/// Runs a queue's worker loop until graceful shutdown.
struct JobWorkerService: Service {
    let poll: Duration
    let work: @Sendable (Duration) async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await work(poll) }
    }
}

/// Deletes expired login states, used nonces and picker sessions.
struct ExpiredStateCleaner: Sendable {
    let store: any ExpiredStateStore
    let now: @Sendable () -> Date
    let logger: Logger

    func cleanOnce() async {
        do {
            let removed = try await store.deleteExpired(now: now())
            if removed > 0 { logger.debug("expired login state removed", metadata: ["gw.cleanup.rows": "\(removed)"]) }
        } catch {
            logger.warning("expired-state cleanup failed", metadata: ["error": "\(error)"])
        }
    }

    func service(every interval: Duration) -> PeriodicService {
        PeriodicService(interval: interval) { await cleanOnce() }
    }
}
