import Synchronization
import Testing

@testable import GatewayStorageSQLite

@Suite("SQLite transaction gate")
struct TransactionGateTests {
    /// Who is inside the gate: how often a transaction shared it, and how many statements were in at once.
    final class Occupancy: Sendable {
        private let state = Mutex<(statements: Int, transactions: Int, overlaps: Int, mostStatements: Int)>((0, 0, 0, 0))
        func enter(transaction: Bool) {
            state.withLock { s in
                if transaction { s.transactions += 1 } else { s.statements += 1 }
                if s.transactions > 1 || (s.transactions == 1 && s.statements > 0) { s.overlaps += 1 }
                s.mostStatements = max(s.mostStatements, s.statements)
            }
        }
        func leave(transaction: Bool) { state.withLock { s in if transaction { s.transactions -= 1 } else { s.statements -= 1 } } }
        var overlaps: Int { state.withLock { $0.overlaps } }
        var mostStatements: Int { state.withLock { $0.mostStatements } }
    }

    @Test("statements run together, a transaction never overlaps a statement or another transaction, and every caller gets in")
    func exclusion() async throws {
        let gate = TransactionGate()
        let occupancy = Occupancy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                let transaction = i % 10 == 3
                group.addTask {
                    let work: @Sendable () async throws -> Void = {
                        occupancy.enter(transaction: transaction)
                        try await Task.sleep(for: .microseconds(200))
                        occupancy.leave(transaction: transaction)
                    }
                    if transaction { try await gate.run(work) } else { try await gate.statement(work) }
                }
            }
            try await group.waitForAll()
        }
        #expect(occupancy.overlaps == 0)
        #expect(occupancy.mostStatements > 1, "statements never ran together")
    }
}
