import GatewayStorage
import LTITestSupport
import Synchronization
import Testing

@testable import GatewayStorageSQLite

@Suite("SQLite group commit")
struct WriteBatcherTests {
    /// A statement runner that holds every statement until the test opens it.
    final class HeldDatabase: Sendable {
        private let held = Mutex<[CheckedContinuation<Void, Never>]>([])
        private let opened = Mutex(false)
        var running: Int { held.withLock { $0.count } }

        func run() async {
            await withCheckedContinuation { continuation in
                let open = opened.withLock { $0 }
                if open { continuation.resume() } else { held.withLock { $0.append(continuation) } }
            }
        }

        func open() {
            opened.withLock { $0 = true }
            for continuation in held.withLock({ held in
                defer { held = [] }; return held
            }) { continuation.resume() }
        }
    }

    @Test("a write past the waiting bound is refused at once as unavailable, and the queued ones still complete")
    func boundedQueue() async throws {
        let database = HeldDatabase()
        let batcher = WriteBatcher(
            maximumWaiting: 4,
            runOne: { _ in
                await database.run()
                return []
            },
            runGroup: { group in
                await database.run()
                for write in group { write.continuation.resume(returning: []) }
            })
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { _ = try await batcher.write("first", []) }
            try #require(await eventually { database.running == 1 })
            for index in 0..<4 { tasks.addTask { _ = try await batcher.write("queued \(index)", []) } }
            try #require(await eventually { batcher.waitingCount == 4 })
            do {
                _ = try await batcher.write("one too many", [])
                Issue.record("a write past the bound was queued")
            } catch let error as StorageError {
                #expect(error.code == .unavailable)
            }
            database.open()
            try await tasks.waitForAll()
        }
        #expect(batcher.waitingCount == 0)
    }
}
