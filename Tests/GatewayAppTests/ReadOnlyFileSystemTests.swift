import Foundation
import GatewayApp
import GatewayStorage
import GatewayStorageSQLite
import LTITestSupport
import Logging
import Testing

/// A folder on a read-only file system (a tmpfs mounted read-only), where the machine allows mounting; removed after.
struct ReadOnlyMount {
    let path: String

    static func run(_ command: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Whether this machine lets the tests mount a file system (root with the capability, as in CI here).
    static let isAvailable: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("gw-mount-probe-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]) == 0 else { return false }
        _ = run(["umount", probe])
        return true
    }()

    /// Mounts a tmpfs, lets `prepare` write into it, remounts it read-only and runs `body` on it.
    static func with(prepare: (String) async throws -> Void, _ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-readonly-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #require(run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", path]) == 0)
        defer { _ = run(["umount", path]) }
        try await prepare(path)
        try #require(run(["mount", "-o", "remount,ro", path]) == 0)
        try await body(path)
    }
}

/// Reliability #17.11: a start on a read-only file system is a one-line error naming what could not be written.
@Suite("Start on a read-only file system", .serialized, .enabled(if: ReadOnlyMount.isAvailable, "this machine does not allow mounting"))
struct ReadOnlyFileSystemTests {
    /// Opens the store and builds the gateway as `serve` does; the error it stops with.
    static func startError(database: String, keys: String) async -> (any Error)? {
        var settings = GatewaySettings()
        settings.database.url = "sqlite:" + database
        settings.keys.directory = keys
        do {
            try await withStore(settings: settings, logger: Logger(label: "test")) { store in
                _ = try await buildGateway(settings: settings, store: store, logger: Logger(label: "test"))
            }
            return nil
        } catch {
            return error
        }
    }

    static func expectOneLine(_ error: (any Error)?, naming path: String) {
        let text = error.map { "\($0)" } ?? "(started)"
        #expect(error != nil, "started on a read-only file system")
        #expect(!text.contains("\n") && text.contains(path), "\(text)")
    }

    @Test("a database folder that cannot be created")
    func newDatabase() async throws {
        let writable = FileManager.default.temporaryDirectory.appendingPathComponent("gw-rw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: writable) }
        try await ReadOnlyMount.with(prepare: { _ in }) { path in
            Self.expectOneLine(await Self.startError(database: path + "/data/gateway.sqlite", keys: writable + "/keys"), naming: path + "/data")
        }
    }

    @Test("an existing database that cannot be written")
    func existingDatabase() async throws {
        let writable = FileManager.default.temporaryDirectory.appendingPathComponent("gw-rw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: writable) }
        try await ReadOnlyMount.with(prepare: { path in
            let store = try await SQLiteGatewayStore.open(path: path + "/data/gateway.sqlite", logger: Logger(label: "test"))
            try await store.migrate()
            try await store.close()
        }) { path in
            Self.expectOneLine(await Self.startError(database: path + "/data/gateway.sqlite", keys: writable + "/keys"), naming: path + "/data")
        }
    }

    @Test("a keys folder that cannot be created")
    func keysFolder() async throws {
        let writable = FileManager.default.temporaryDirectory.appendingPathComponent("gw-rw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: writable) }
        try await ReadOnlyMount.with(prepare: { _ in }) { path in
            Self.expectOneLine(await Self.startError(database: writable + "/gateway.sqlite", keys: path + "/keys"), naming: path + "/keys")
        }
    }
}
