import GatewayStorage
import SQLiteNIO
import Synchronization

/// Group commit: single-statement writes that arrive while a write is running are committed together.
///
/// Each commit of SQLite's write-ahead log writes every page the transaction touched; launches arriving
/// together touch the same few pages (the login state and launch tables' last leaves), so one commit for
/// a group writes far less than one per statement. A statement that fails on a duplicate key is undone on its own and its caller gets the error, while the group carries
/// on; any other failure rolls the group back and every caller in it gets the error, so a caller is told
/// "done" only for a write that is committed.
final class WriteBatcher: Sendable {
    /// One statement with its values.
    typealias Statement = (sql: String, binds: [SQLiteData])

    /// A write waiting for its group: one statement, or several kept or undone together. Its caller gets the last
    /// statement's rows.
    struct Write: Sendable {
        var statements: [Statement]
        var continuation: CheckedContinuation<[SQLiteStoreRow], any Error>
    }

    /// Largest group: bounds the time one commit keeps the write lock.
    static let maximumGroup = 64

    /// Most writes waiting for a group: past it a write is refused at once (``StorageError/Code/unavailable``, which
    /// callers answer with 503), so a flood cannot grow the queue — and every waiting request — without bound.
    let maximumWaiting: Int

    private struct Queue {
        var waiting: [Write] = []
        var draining = false
    }

    private let queue = Mutex(Queue())
    /// Runs one write on its own (the common case at low load).
    private let runOne: @Sendable ([Statement]) async throws -> [SQLiteStoreRow]
    /// Runs several statements in one transaction, answering each.
    private let runGroup: @Sendable ([Write]) async -> Void

    init(
        maximumWaiting: Int = 4096,
        runOne: @escaping @Sendable ([Statement]) async throws -> [SQLiteStoreRow],
        runGroup: @escaping @Sendable ([Write]) async -> Void
    ) {
        self.maximumWaiting = maximumWaiting
        self.runOne = runOne
        self.runGroup = runGroup
    }

    /// Runs `sql` in the next group and returns its rows once the group is committed.
    func write(_ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteStoreRow] {
        try await write(together: [(sql, binds)])
    }

    /// Runs `statements` in the next group, kept or undone together, and returns the last one's rows once the group is
    /// committed.
    func write(together statements: [Statement]) async throws -> [SQLiteStoreRow] {
        try await withCheckedThrowingContinuation { continuation in
            let action: Action = queue.withLock { queue in
                guard queue.waiting.count < maximumWaiting else { return .refuse }
                queue.waiting.append(Write(statements: statements, continuation: continuation))
                guard !queue.draining else { return .queued }
                queue.draining = true
                return .startDraining
            }
            switch action {
            case .refuse:
                continuation.resume(
                    throwing: StorageError(.unavailable, "the database is behind: \(maximumWaiting) writes are waiting"))
            case .startDraining: Task { await self.drain() }
            case .queued: break
            }
        }
    }

    private enum Action { case refuse, startDraining, queued }

    /// Writes waiting for a group (not counting the group running).
    var waitingCount: Int { queue.withLock { $0.waiting.count } }

    /// Runs groups until nothing waits.
    private func drain() async {
        while true {
            let group: [Write] = queue.withLock { queue in
                let group = Array(queue.waiting.prefix(Self.maximumGroup))
                queue.waiting.removeFirst(group.count)
                if group.isEmpty { queue.draining = false }
                return group
            }
            guard let first = group.first else { return }
            if group.count == 1 {
                do {
                    first.continuation.resume(returning: try await runOne(first.statements))
                } catch {
                    first.continuation.resume(throwing: error)
                }
            } else {
                await runGroup(group)
            }
        }
    }
}
