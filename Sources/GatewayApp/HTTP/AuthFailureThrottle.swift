import Foundation
import Synchronization

/// Slows down guessing: an address that fails admin API authentication `limit` times within `window` is refused
/// (429) until its window ends, before any key is looked up.
///
/// Behind a load balancer every client shares the balancer's address; the limit is then a ceiling on failures for all
/// of them together, which still bounds guessing.
final class AuthFailureThrottle: Sendable {
    struct Entry {
        var failures: Int
        var windowStart: ContinuousClock.Instant
    }

    let limit: Int
    let window: Duration
    /// Most addresses tracked; past it, the oldest windows are forgotten first.
    let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let entries = Mutex<[String: Entry]>([:])

    init(
        limit: Int = 10, window: Duration = .seconds(60), capacity: Int = 10_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self.now = now
    }

    /// The seconds `address` must wait before its next attempt; nil when it may try now.
    func waitBeforeNextAttempt(_ address: String) -> Int? {
        let now = now()
        return entries.withLock { entries in
            guard let entry = entries[address] else { return nil }
            let end = entry.windowStart + window
            guard now < end else {
                entries[address] = nil
                return nil
            }
            guard entry.failures >= limit else { return nil }
            return max(1, Int((end - now).components.seconds) + 1)
        }
    }

    /// Counts a failed authentication from `address`.
    func recordFailure(_ address: String) {
        let now = now()
        entries.withLock { entries in
            if var entry = entries[address], now < entry.windowStart + window {
                entry.failures += 1
                entries[address] = entry
                return
            }
            if entries.count >= capacity {
                entries = entries.filter { now < $0.value.windowStart + window }
                if entries.count >= capacity {
                    let oldest = entries.sorted { $0.value.windowStart < $1.value.windowStart }.prefix(entries.count - capacity + 1)
                    for (key, _) in oldest { entries[key] = nil }
                }
            }
            entries[address] = Entry(failures: 1, windowStart: now)
        }
    }
}
