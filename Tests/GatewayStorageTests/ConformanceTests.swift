import Foundation
import GatewayStorage
import GatewayStorageSQLite
import GatewayStorageTesting
import LTICore
import LTITestSupport
import Logging
import Testing

/// Every backend passes the same conformance suite.
@Suite("Store conformance")
struct ConformanceTests {
    @Test("memory store", arguments: GatewayStoreConformance.checks)
    func memory(check: GatewayStoreConformance.Check) async throws {
        let store = MemoryGatewayStore()
        try await store.migrate()
        try await check.run(store)
    }

    @Test("SQLite store", arguments: GatewayStoreConformance.checks)
    func sqlite(check: GatewayStoreConformance.Check) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLiteGatewayStore.open(path: folder.appendingPathComponent("test.sqlite").path, logger: Logger(label: "test"))
        try await store.migrate()
        do {
            try await check.run(store)
        } catch {
            try await store.close()
            throw error
        }
        try await store.close()
    }
}

@Suite("SQLite store specifics")
struct SQLiteStoreTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("gw-sqlite-\(UUID().uuidString)/gateway.sqlite").path
    }

    /// Opens `count` stores on one file, runs `body`, and closes every store whatever happens.
    func withStores(_ count: Int, path: String, logger: Logger = Logger(label: "t"),
                    _ body: ([SQLiteGatewayStore]) async throws -> Void) async throws {
        var stores: [SQLiteGatewayStore] = []
        do {
            for _ in 0..<count { stores.append(try await SQLiteGatewayStore.open(path: path, logger: logger)) }
            try await body(stores)
        } catch {
            for store in stores { try? await store.close() }
            throw error
        }
        for store in stores { try await store.close() }
    }

    @Test("migrations apply once, also when run again and by a second store on the same file")
    func migrationsIdempotent() async throws {
        let recorder = LogRecorder()
        try await withStores(2, path: temporaryPath(), logger: recorder.logger()) { stores in
            async let a: Void = stores[0].migrate()
            async let b: Void = stores[1].migrate()
            _ = try await (a, b)
            try await stores[0].migrate()
        }
        let applied = recorder.lines(containing: "applied database migration")
        for version in 1...4 {
            #expect(applied.filter { $0.contains("db.migration=\(version) ") }.count == 1, "migration \(version)")
        }
        #expect(applied.count == 4)
    }

    @Test("what was stored survives closing and reopening the file")
    func durable() async throws {
        let path = temporaryPath()
        try await withStores(1, path: path) { stores in
            try await stores[0].migrate()
            try await GatewayStoreConformance.checks[0].run(stores[0])
        }
        try await withStores(1, path: path) { stores in
            try await stores[0].migrate()
            #expect(try await stores[0].registration(id: "r1")?.deploymentIDs == ["dep-1", "dep-2"])
        }
    }

    @Test("racing state consumers across two connections to one file: exactly one wins")
    func raceAcrossConnections() async throws {
        try await withStores(2, path: temporaryPath()) { stores in
            try await stores[0].migrate()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            for round in 0..<10 {
                let state = "race-\(round)"
                try await stores[0].saveLoginState(.init(state: state, nonce: "n", registrationID: "r", targetLinkURI: "t",
                                                         createdAt: now, expiresAt: now.addingTimeInterval(60)))
                let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<8 { group.addTask { try await stores[i % 2].consumeLoginState(state, now: now) != nil } }
                    var count = 0
                    for try await won in group where won { count += 1 }
                    return count
                }
                #expect(wins == 1, "round \(round)")
            }
        }
    }
}

@Suite("Signing key store conformance")
struct SigningKeyStoreConformanceTests {
    @Test("file store", arguments: SigningKeyStoreConformance.checks)
    func file(check: SigningKeyStoreConformance.Check) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await check.run(FileSigningKeyStore(folder: folder), FileSigningKeyStore(folder: folder))
    }

    @Test("file store: key files are 0600 in a 0700 folder, and a readable key file is refused")
    func permissions() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = FileSigningKeyStore(folder: folder)
        let ring = try await store.updateKeyRing { try $0.readied(now: Date(), generate: { try ToolKey.generate(now: Date()) }) }
        let fm = FileManager.default
        #expect((try fm.attributesOfItem(atPath: folder)[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        for key in ring.keys {
            #expect((try fm.attributesOfItem(atPath: "\(folder)/\(key.kid).pem")[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
        let active = try #require(ring.active)
        try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(folder)/\(active.kid).pem")
        do {
            _ = try await store.loadKeyRing()
            Issue.record("a world-readable key was accepted")
        } catch let error as StorageError {
            #expect(error.code == .insecure && error.message.contains("chmod 600"))
        }
    }
}
