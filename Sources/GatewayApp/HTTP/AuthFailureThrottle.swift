import Foundation
import NIOCore
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
                // Still full of live windows: forget the oldest one (one pass, no sort).
                if entries.count >= capacity, let oldest = entries.min(by: { $0.value.windowStart < $1.value.windowStart })?.key {
                    entries[oldest] = nil
                }
            }
            entries[address] = Entry(failures: 1, windowStart: now)
        }
    }

    /// The client a peer address counts as: its IPv4 address, or the /64 network of its IPv6 address (one
    /// subscriber's whole allocation, which it could otherwise walk through).
    static func client(_ address: SocketAddress?) -> String {
        guard let ip = address?.ipAddress else { return "unknown" }
        guard case .v6 = address else { return ip }
        var groups = ip.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if let gap = groups.firstIndex(of: ""), ip.contains("::") {
            let present = groups.filter { !$0.isEmpty }.count
            groups.replaceSubrange(gap...gap, with: Array(repeating: "0", count: 8 - present))
            groups = groups.filter { !$0.isEmpty }
        }
        return groups.prefix(4).joined(separator: ":") + "::/64"
    }
}
