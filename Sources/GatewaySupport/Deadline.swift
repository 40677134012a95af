/// An operation that did not finish within its deadline.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public let limit: Duration
    public init(limit: Duration) { self.limit = limit }
    public var description: String { "no result within \(limit)" }
}

/// Runs `operation`, or cancels it and throws ``DeadlineExceeded`` once `limit` has passed.
///
/// For a whole outbound exchange (request, answer head and body), where a client's own timeout covers only a part.
/// `operation` must end when cancelled (AsyncHTTPClient's requests and body reads do).
public func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        guard let value = first else { throw DeadlineExceeded(limit: limit) }
        return value
    }
}
