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
///
/// The deadline is kept by ``DeadlineTimers`` (one sleeping task for the whole process, about
/// ``DeadlineTimers/resolution`` late at most), not by a timer of its own: a call costs one task, the operation's.
public func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let outcome = FirstOutcome<T>()
    let work = Task {
        let result: Result<T, any Error>
        do { result = .success(try await operation()) } catch { result = .failure(error) }
        outcome.settle(result)
    }
    let timer = DeadlineTimers.shared.schedule(at: .now + limit) {
        if outcome.settle(.failure(DeadlineExceeded(limit: limit))) { work.cancel() }
    }
    defer { DeadlineTimers.shared.cancel(timer) }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            outcome.wait(continuation)
        }
    } onCancel: {
        work.cancel()
        outcome.settle(.failure(CancellationError()))
    }
}

/// The first of several racing outcomes, handed once to a waiting continuation. Once handed over, the result is not
/// kept: a late racer finds the outcome settled and holds nothing.
private final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var settled = false
    }
    private let state = Mutex(State())

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLock { state in
            guard let result = state.result else {
                state.continuation = continuation
                return nil
            }
            state.result = nil
            return result
        }
        if let ready { continuation.resume(with: ready) }
    }

    /// Settles with `result` unless already settled; whether this call settled it.
    @discardableResult
    func settle(_ result: Result<T, any Error>) -> Bool {
        let (settled, continuation): (Bool, CheckedContinuation<T, any Error>?) = state.withLock { state in
            guard !state.settled else { return (false, nil) }
            state.settled = true
            guard let continuation = state.continuation else {
                state.result = result  // kept until the caller waits for it
                return (true, nil)
            }
            state.continuation = nil
            return (true, continuation)
        }
        continuation?.resume(with: result)
        return settled
    }
}

/// Every pending deadline of the process, kept by one sleeping task: it wakes when the earliest is due (no more often
/// than ``resolution``), runs what is due, and ends when none is left. A deadline costs a dictionary entry and a heap
/// slot instead of a timer of the runtime's, whose arming and cancelling wake a thread of their own every time.
public final class DeadlineTimers: Sendable {
    /// The process's timers.
    public static let shared = DeadlineTimers()
    /// About how late a deadline may fire: wake-ups of the sleeping task are at least this far apart.
    public static let resolution: Duration = .milliseconds(10)

    /// A scheduled deadline, to cancel it.
    public struct Timer: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private struct Due: Comparable {
        var at: ContinuousClock.Instant
        var id: UInt64
        static func < (a: Due, b: Due) -> Bool { (a.at, a.id) < (b.at, b.id) }
    }

    private struct State {
        var nextID: UInt64 = 0
        /// The deadlines not yet fired or cancelled: when each is due, and what it does.
        var pending: [UInt64: (at: ContinuousClock.Instant, fire: @Sendable () -> Void)] = [:]
        /// When each pending deadline is due; a cancelled one stays until its time comes, nothing is pending, or the
        /// cancelled ones outnumber the pending ones (then the heap is rebuilt from the pending ones).
        var schedule = MinHeap<Due>()
        /// The sleeping task's generation and the time it wakes; nil: no task sleeps.
        var sleeper: (generation: UInt64, task: Task<Void, Never>, wakesAt: ContinuousClock.Instant)?
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Runs `fire` at `at` (at most ``resolution`` later), unless cancelled first.
    public func schedule(at: ContinuousClock.Instant, _ fire: @escaping @Sendable () -> Void) -> Timer {
        let (timer, replaced): (Timer, Task<Void, Never>?) = state.withLock { state in
            state.nextID &+= 1
            let id = state.nextID
            state.pending[id] = (at, fire)
            state.schedule.insert(Due(at: at, id: id))
            if let sleeper = state.sleeper, sleeper.wakesAt <= at + Self.resolution { return (Timer(id: id), nil) }
            // No task sleeps, or it sleeps past this deadline: a new one takes over (the old one ends when it wakes).
            let replaced = state.sleeper?.task
            state.generation &+= 1
            let generation = state.generation
            state.sleeper = (generation, Task.detached { await self.sleep(generation: generation) }, at)
            return (Timer(id: id), replaced)
        }
        replaced?.cancel()
        return timer
    }

    /// Cancels `timer`; nothing happens when it already fired.
    public func cancel(_ timer: Timer) {
        state.withLock { state in
            state.pending[timer.id] = nil
            if state.pending.isEmpty {
                state.schedule.removeAll()
            } else if state.schedule.count > 2 * state.pending.count + 1024 {
                // Under steady load most entries are of calls that finished: keep the heap to the pending ones.
                var rebuilt = MinHeap<Due>()
                for (id, entry) in state.pending { rebuilt.insert(Due(at: entry.at, id: id)) }
                state.schedule = rebuilt
            }
        }
    }

    /// Starts a new sleeping task in place of `generation`, when that is still the current one and deadlines are pending.
    private func restart(ifCurrent generation: UInt64) {
        state.withLock { state in
            guard state.sleeper?.generation == generation else { return }
            state.sleeper = nil
            guard let first = state.schedule.first else { return }
            state.generation &+= 1
            let next = state.generation
            state.sleeper = (next, Task.detached { await self.sleep(generation: next) }, first.at)
        }
    }

    /// How many deadlines are pending (for tests).
    public var pendingCount: Int { state.withLock { $0.pending.count } }
    /// How many entries the schedule holds, cancelled ones included (for tests).
    public var scheduledCount: Int { state.withLock { $0.schedule.count } }

    private func sleep(generation: UInt64) async {
        while true {
            let (due, wakesAt): ([@Sendable () -> Void], ContinuousClock.Instant?) = state.withLock { state in
                guard state.sleeper?.generation == generation else { return ([], nil) }
                let now = ContinuousClock.now
                var due: [@Sendable () -> Void] = []
                while let first = state.schedule.first, first.at <= now {
                    state.schedule.removeFirst()
                    if let entry = state.pending.removeValue(forKey: first.id) { due.append(entry.fire) }
                }
                guard let first = state.schedule.first else {
                    state.sleeper = nil
                    return (due, nil)
                }
                let wakesAt = max(first.at, now + Self.resolution)
                state.sleeper?.wakesAt = wakesAt
                return (due, wakesAt)
            }
            for fire in due { fire() }
            guard let wakesAt else { return }
            do {
                try await Task.sleep(until: wakesAt, clock: .continuous)
            } catch {
                // Cancelled: replaced by a task that wakes earlier. Were it the current one, a new one takes over, so
                // that the pending deadlines still fire.
                restart(ifCurrent: generation)
                return
            }
        }
    }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []

    var first: Element? { items.first }
    var count: Int { items.count }

    mutating func insert(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        let first = items[0]
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }

    mutating func removeAll() { items.removeAll() }
}
