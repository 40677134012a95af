import Foundation
import GatewayStorage
import GatewayStorageSQLite
import LTICore
import Logging
import Testing

@Suite("SQLite write-ahead log")
struct SQLiteCheckpointTests {
    /// SQLite's own checkpoint would move these rows only after 64 MiB of log; the store's checkpointer
    /// moves them into the database file within moments of the writes.
    @Test("written rows reach the database file in the background, long before the log's own threshold")
    func checkpointsInBackground() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-wal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gateway.sqlite").path
        let store = try await SQLiteGatewayStore.open(path: path, logger: Logger(label: "test"))
        try await store.migrate()
        func databaseFileSize() throws -> Int {
            try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        }
        // Let the migrations' checkpoint settle, then write about 600 KiB of login states.
        try await Task.sleep(for: .milliseconds(300))
        let before = try databaseFileSize()
        let padding = String(repeating: "n", count: 1000)
        for i in 0..<600 {
            try await store.saveLoginState(
                LoginState(
                    state: "\(i)-\(padding)", nonce: "nonce-\(i)", registrationID: "reg", targetLinkURI: "https://tool/lti/launch",
                    createdAt: Date(), expiresAt: Date().addingTimeInterval(600), loginHint: "hint"))
        }
        var after = before
        // Waits for the condition, with a deadline: the checkpointer runs within 50 ms of the writes when the machine is idle.
        try await store.whileRunning {
            let deadline = ContinuousClock.now + .seconds(10)
            while after < before + 500_000, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                after = try databaseFileSize()
            }
        }
        try await store.close()  // closing checkpoints too, so the file is measured before
        #expect(after >= before + 500_000, "database file at \(after) bytes, from \(before)")
    }
}
