/// Exponential backoff: the wait before attempt `n + 1` is `base × 2^(n-1)`, at most `cap`, spread by `jitter`.
///
/// The one retry schedule of the gateway: Skillable launches, SkyPrep calls and SkyPrep provisioning jobs.
public struct Backoff: Sendable, Equatable {
    /// How waits are spread so that many clients retrying together do not retry in step.
    public enum Jitter: Sendable, Equatable {
        /// Exactly the exponential bound.
        case none
        /// Uniformly random between zero and the bound ("full jitter").
        case full
        /// The bound times a random factor within ±`fraction` (e.g. 0.2 → 0.8…1.2 × the bound).
        case proportional(Double)
    }

    public var base: Duration
    public var cap: Duration
    public var jitter: Jitter

    public init(base: Duration, cap: Duration, jitter: Jitter) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
    }

    /// The exponential bound after `attempt` failed attempts (1 → `base`), never above `cap`.
    public func bound(afterAttempt attempt: Int) -> Duration {
        let doublings = min(max(attempt - 1, 0), 40)
        let seconds = min(base.totalSeconds * Double(UInt64(1) << doublings), cap.totalSeconds)
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// The wait after `attempt` failed attempts, jitter applied.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let bound = bound(afterAttempt: attempt)
        switch jitter {
        case .none: return bound
        case .full: return .nanoseconds(Int64.random(in: 0...max(Int64(bound.totalSeconds * 1e9), 1)))
        case .proportional(let fraction):
            return .nanoseconds(Int64((bound.totalSeconds * Double.random(in: (1 - fraction)...(1 + fraction)) * 1e9).rounded()))
        }
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var totalSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
