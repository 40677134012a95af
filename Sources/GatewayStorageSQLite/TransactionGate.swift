/// Keeps a store's single statements and its multi-statement transactions apart, in arrival order.
///
/// Single statements run together (they share one connection, which runs them one at a time); a
/// transaction runs alone. So no statement of this store ever waits for the write lock inside SQLite
/// while the transaction holding it needs one of the few NIO thread-pool threads to finish.
actor TransactionGate {
    private var statements = 0
    private var inTransaction = false
    private var waiters: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    /// Runs one statement: waits only for a running or earlier-queued transaction.
    func statement<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if inTransaction || !waiters.isEmpty {
            await withCheckedContinuation { waiters.append((false, $0)) }
        } else {
            statements += 1
        }
        defer { finishStatement() }
        return try await body()
    }

    /// Runs a transaction alone: after the statements already running, before those that come later.
    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if inTransaction || statements > 0 || !waiters.isEmpty {
            await withCheckedContinuation { waiters.append((true, $0)) }
        } else {
            inTransaction = true
        }
        defer { finishTransaction() }
        return try await body()
    }

    private func finishStatement() {
        statements -= 1
        admit()
    }

    private func finishTransaction() {
        inTransaction = false
        admit()
    }

    /// Lets in, from the front of the queue, one transaction or every statement up to the next transaction.
    private func admit() {
        guard !inTransaction, let first = waiters.first else { return }
        if first.exclusive {
            guard statements == 0 else { return }
            waiters.removeFirst()
            inTransaction = true
            first.continuation.resume()
            return
        }
        while let next = waiters.first, !next.exclusive {
            waiters.removeFirst()
            statements += 1
            next.continuation.resume()
        }
    }
}
