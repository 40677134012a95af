import Synchronization

/// An operation that did not finish within its deadline.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    /// The deadline that passed.
    public let limit: Duration
    /// An error for an operation that took longer than `limit`.
    public init(limit: Duration) { self.limit = limit }
    public var description: String { "no result within \(limit)" }
}

/// Runs `operation`, or throws ``DeadlineExceeded`` once `limit` has passed — without waiting for it: the operation is
/// cancelled and left to end in the background, so even work that does not answer cancellation cannot hold the caller
/// past the deadline (a health probe behind a database that waits on a lock, a whole outbound exchange).
public func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let work = Task { try await operation() }
    let outcome = FirstOutcome<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            outcome.wait(continuation)
            let timer = Task {
                do { try await Task.sleep(for: limit) } catch { return }  // cancelled: the work's outcome came first
                if outcome.settle(.failure(DeadlineExceeded(limit: limit))) { work.cancel() }
            }
            Task {
                let result = await work.result
                // Settled before the timer is stopped: a stopped timer never passes for a deadline.
                outcome.settle(result)
                timer.cancel()
            }
        }
    } onCancel: {
        work.cancel()
        outcome.settle(.failure(CancellationError()))
    }
}

/// The first of several racing outcomes, handed once to a waiting continuation.
private final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
    }
    private let state = Mutex(State())

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLock { state in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let ready { continuation.resume(with: ready) }
    }

    /// Settles with `result` unless already settled; whether this call settled it.
    @discardableResult
    func settle(_ result: Result<T, any Error>) -> Bool {
        let (settled, continuation): (Bool, CheckedContinuation<T, any Error>?) = state.withLock { state in
            guard state.result == nil else { return (false, nil) }
            state.result = result
            defer { state.continuation = nil }
            return (true, state.continuation)
        }
        continuation?.resume(with: result)
        return settled
    }
}
