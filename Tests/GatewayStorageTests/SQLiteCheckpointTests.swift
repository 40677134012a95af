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

    @Test("only a key conflict is a duplicate; any other refused statement, and any statement after close, is unavailable")
    func refusalsByKind() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-refusals-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLiteGatewayStore.open(path: folder.appendingPathComponent("gateway.sqlite").path, logger: Logger(label: "test"))
        try await store.migrate()
        let state = LoginState(
            state: "s", nonce: "n", registrationID: "reg", targetLinkURI: "https://tool/lti/launch", createdAt: Date(),
            expiresAt: Date().addingTimeInterval(600))
        try await store.saveLoginState(state)
        func code(_ body: () async throws -> Void) async -> StorageError.Code? {
            do { try await body() } catch let error as StorageError { return error.code } catch { return nil }
            return nil
        }
        #expect(await code { try await store.saveLoginState(state) } == .duplicate)
        #expect(await code { try await store.write(SQLStatement("INSERT INTO login_states (state) VALUES ('x')"), []) } == .unavailable)
        try await store.close()
        #expect(await code { _ = try await store.loginState("s", now: Date()) } == .unavailable)
    }
}
