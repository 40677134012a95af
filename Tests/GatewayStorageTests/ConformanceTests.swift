import Foundation
import GatewayStorage
import GatewayStoragePostgres
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

    @Test("SQLite: learners stored before trust anchors keep their ids under the key set that launched them")
    func sqliteTrustAnchorMigration() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLiteGatewayStore.open(path: folder.appendingPathComponent("test.sqlite").path, logger: Logger(label: "test"))
        do {
            try await TrustAnchorMigrationCheck.run(store, before: 9) { version in
                if let version { try await store.migrate(through: version) } else { try await store.migrate() }
            }
        } catch {
            try await store.close()
            throw error
        }
        try await store.close()
    }
}

/// The same checks against a real PostgreSQL server, each on a fresh database (scripts/with-postgres.sh).
@Suite("Store conformance: PostgreSQL", .enabled(if: TemporaryPostgresDatabase.isAvailable, "GATEWAY_TEST_POSTGRES_URL is not set"))
struct PostgresConformanceTests {
    /// Opens a migrated store on a fresh database, runs `body`, and closes it on every path.
    static func withStore(_ body: (PostgresGatewayStore) async throws -> Void) async throws {
        try await TemporaryPostgresDatabase.with { url in
            let store = PostgresGatewayStore.open(settings: try PostgresSettings(url: url), logger: Logger(label: "test"))
            try await store.whileRunning {
                try await store.migrate()
                try await body(store)
            }
        }
    }

    @Test("PostgreSQL: learners stored before trust anchors keep their ids under the key set that launched them")
    func trustAnchorMigration() async throws {
        try await TemporaryPostgresDatabase.with { url in
            let store = PostgresGatewayStore.open(settings: try PostgresSettings(url: url), logger: Logger(label: "test"))
            try await store.whileRunning {
                try await TrustAnchorMigrationCheck.run(store, before: 5) { version in
                    if let version { try await store.migrate(through: version) } else { try await store.migrate() }
                }
            }
        }
    }

    @Test("PostgreSQL store", arguments: GatewayStoreConformance.checks)
    func postgres(check: GatewayStoreConformance.Check) async throws {
        try await Self.withStore { try await check.run($0) }
    }

    @Test("signing keys in PostgreSQL", arguments: SigningKeyStoreConformance.checks)
    func signingKeys(check: SigningKeyStoreConformance.Check) async throws {
        let kek = try #require(KeyEncryptionKey(base64: Data(repeating: 7, count: 32).base64EncodedString()))
        try await TemporaryPostgresDatabase.with { url in
            let settings = try PostgresSettings(url: url)
            let (a, b) = (
                PostgresGatewayStore.open(settings: settings, logger: Logger(label: "a")),
                PostgresGatewayStore.open(settings: settings, logger: Logger(label: "b"))
            )
            try await a.whileRunning {
                try await b.whileRunning {
                    try await a.migrate()
                    try await b.migrate()
                    try await check.run(PostgresSigningKeyStore(store: a, encryption: kek), PostgresSigningKeyStore(store: b, encryption: kek))
                }
            }
        }
    }

    @Test("private keys are sealed at rest: the stored text is not the PEM, and another encryption key cannot open it")
    func sealedAtRest() async throws {
        let kek = try #require(KeyEncryptionKey(base64: Data(repeating: 7, count: 32).base64EncodedString()))
        let wrong = try #require(KeyEncryptionKey(base64: Data(repeating: 8, count: 32).base64EncodedString()))
        try await Self.withStore { store in
            let keys = PostgresSigningKeyStore(store: store, encryption: kek)
            let ring = try await keys.updateKeyRing { try $0.readied(now: Date(), generate: { try ToolKey.generate(now: Date()) }) }
            let active = try #require(ring.active)
            let sealed = try await store.sealedPrivateKeys()
            #expect(sealed.count == ring.keys.count)
            #expect(sealed.allSatisfy { $0.hasPrefix("v1.") && !$0.contains("PRIVATE KEY") })
            let marker = active.privateKeyPEM.split(separator: "\n")[1]
            #expect(!sealed.contains { $0.contains(marker) })
            await #expect(throws: StorageError.self) { _ = try await PostgresSigningKeyStore(store: store, encryption: wrong).loadKeyRing() }
            #expect(try await keys.loadKeyRing().active?.kid == active.kid)
        }
    }

    @Test("instances migrating at the same moment apply each migration once")
    func concurrentMigrations() async throws {
        try await TemporaryPostgresDatabase.with { url in
            let recorder = LogRecorder()
            let settings = try PostgresSettings(url: url)
            let stores = (0..<3).map { _ in PostgresGatewayStore.open(settings: settings, logger: recorder.logger()) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.whileRunning { try await store.migrate() } } }
                try await group.waitForAll()
            }
            // Each migration once in all, whichever instance applied it.
            let applied = recorder.lines(containing: "applied database migration")
            #expect(applied.count == PostgresGatewayStore.migrationCount)
            for version in 1...PostgresGatewayStore.migrationCount {
                #expect(applied.filter { $0.contains("db.migration=\(version) ") }.count == 1, "migration \(version)")
            }
        }
    }
}

@Suite("SQLite store specifics")
struct SQLiteStoreTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("gw-sqlite-\(UUID().uuidString)/gateway.sqlite").path
    }

    /// Opens `count` stores on one file, runs `body`, and closes every store whatever happens; then removes the file's
    /// folder unless `removeAfter` is false.
    func withStores(
        _ count: Int, path: String, logger: Logger = Logger(label: "t"), removeAfter: Bool = true,
        _ body: ([SQLiteGatewayStore]) async throws -> Void
    ) async throws {
        var stores: [SQLiteGatewayStore] = []
        defer { if removeAfter { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) } }
        do {
            // A minute for another store's write lock: on a starved machine two racing stores can wait longer
            // than a launch would be allowed to, and the point here is atomicity, not speed.
            for _ in 0..<count { stores.append(try await SQLiteGatewayStore.open(path: path, logger: logger, busyTimeout: .seconds(60))) }
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
        let versions = SQLiteGatewayStore.migrationCount
        for version in 1...versions {
            #expect(applied.filter { $0.contains("db.migration=\(version) ") }.count == 1, "migration \(version)")
        }
        #expect(applied.count == versions)
    }

    @Test("writes kept together stay together inside a group commit: a duplicate undoes its own write whole, not the group's others")
    func togetherInAGroup() async throws {
        try await withStores(1, path: temporaryPath()) { stores in
            let store = stores[0]
            try await store.migrate()
            let epoch = Date(timeIntervalSince1970: 1_800_000_000)
            func learner(_ i: Int) -> LearnerIdentity {
                LearnerIdentity(
                    id: "lti-g\(i)", issuer: "i", trustAnchor: "a", subject: "g\(i)", givenName: nil, familyName: nil, email: nil,
                    firstSeen: epoch, lastSeen: epoch)
            }
            func launch(_ id: String, learner i: Int) -> LaunchRecord {
                LaunchRecord(
                    id: id, registrationID: "r", deploymentID: "d", learnerID: "lti-g\(i)", subject: "g\(i)",
                    messageType: "LtiResourceLinkRequest", resourceLinkID: nil, contextID: nil, labID: "1", outcome: "pending",
                    vendorResultCode: nil, labInstanceID: nil, agsLineItem: nil, createdAt: epoch)
            }
            try await store.recordLaunch(launch("taken", learner: 0), learner: learner(0), job: nil)
            // Many writers at once, so that they are committed in groups; every fourth reuses the taken launch id.
            let refused = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 1...200 {
                    group.addTask {
                        do {
                            try await store.recordLaunch(
                                launch(i % 4 == 0 ? "taken" : "l\(i)", learner: i), learner: learner(i),
                                job: JobToQueue(kind: "test.kind", key: "lti-g\(i)", payload: "{}", runAt: epoch))
                            return false
                        } catch let error as StorageError where error.code == .duplicate {
                            return true
                        }
                    }
                }
                var refused = 0
                for try await wasRefused in group where wasRefused { refused += 1 }
                return refused
            }
            #expect(refused == 50)
            for i in 1...200 {
                let stored = try await store.identity(issuer: "i", trustAnchor: "a", subject: "g\(i)") != nil
                #expect(stored == (i % 4 != 0), "learner \(i): stored \(stored)")
                let queued = try await store.queuedJob(kind: "test.kind", key: "lti-g\(i)") != nil
                #expect(queued == (i % 4 != 0), "job \(i): queued \(queued)")
                if i % 4 != 0 { #expect(try await store.launch(id: "l\(i)") != nil, "launch \(i) lost") }
            }
        }
    }

    @Test("the database folder is 0700 and the database file 0600: only its owner reads login states and emails")
    func fileModes() async throws {
        let path = temporaryPath()
        try await withStores(1, path: path) { stores in
            try await stores[0].migrate()
            let fm = FileManager.default
            #expect(
                (try fm.attributesOfItem(atPath: (path as NSString).deletingLastPathComponent)[.posixPermissions] as? NSNumber)?.intValue == 0o700)
            for file in [path, path + "-wal"] where fm.fileExists(atPath: file) {
                #expect((try fm.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(file)")
            }
        }
    }

    @Test("what was stored survives closing and reopening the file")
    func durable() async throws {
        let path = temporaryPath()
        try await withStores(1, path: path, removeAfter: false) { stores in
            try await stores[0].migrate()
            try await GatewayStoreConformance.checks[0].run(stores[0])
        }
        try await withStores(1, path: path) { stores in
            try await stores[0].migrate()
            #expect(try await stores[0].registration(id: "r1")?.deploymentIDs == ["dep-1", "dep-2"])
        }
    }

    @Test("writes arriving together are committed together: a duplicate key fails alone, every other write lands")
    func groupCommit() async throws {
        try await withStores(1, path: temporaryPath()) { stores in
            let store = stores[0]
            try await store.migrate()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            // 30 saves of one state and 30 of distinct states, all at once.
            let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
                for i in 0..<60 {
                    let state = i % 2 == 0 ? "shared" : "own-\(i)"
                    group.addTask {
                        let saved =
                            (try? await store.saveLoginState(
                                LoginState(
                                    state: state, nonce: "n-\(i)", registrationID: "r", targetLinkURI: "https://tool.example/launch",
                                    createdAt: now, expiresAt: now.addingTimeInterval(600)))) != nil
                        return (state, saved)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0.0 == "shared" && $0.1 }.count == 1)
            #expect(outcomes.filter { $0.0 != "shared" && !$0.1 }.isEmpty)
            for i in stride(from: 1, to: 60, by: 2) {
                #expect(try await store.consumeLoginState("own-\(i)", now: now)?.nonce == "n-\(i)")
            }
            #expect(try await store.consumeLoginState("shared", now: now) != nil)
        }
    }

    @Test("racing state consumers across two connections to one file: exactly one wins")
    func raceAcrossConnections() async throws {
        try await withStores(2, path: temporaryPath()) { stores in
            try await stores[0].migrate()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            for round in 0..<10 {
                let state = "race-\(round)"
                try await stores[0].saveLoginState(
                    .init(
                        state: state, nonce: "n", registrationID: "r", targetLinkURI: "t",
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

    @Test("file store: every key file others may read is named in the one refusal, with the chmod that fixes them all")
    func everyExposedKeyNamed() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = FileSigningKeyStore(folder: folder)
        let ring = try await store.updateKeyRing { try $0.readied(now: Date(), generate: { try ToolKey.generate(now: Date()) }) }
        let paths = ring.keys.map { "\(folder)/\($0.kid).pem" }
        #expect(paths.count == 2)
        for path in paths { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path) }
        do {
            _ = try await store.loadKeyRing()
            Issue.record("world-readable keys were accepted")
        } catch let error as StorageError {
            #expect(error.code == .insecure)
            for path in paths { #expect(error.message.contains("\(path) (mode 644)"), "\(error.message)") }
            #expect(error.message.hasSuffix("run: chmod 600 \(paths.joined(separator: " "))"), "\(error.message)")
        }
    }

    @Test("file store: a keys folder others may write to is refused; updates leave no temporary file behind")
    func folderAndTemporaryFiles() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = FileSigningKeyStore(folder: folder)
        let now = Date()
        _ = try await store.updateKeyRing { try $0.readied(now: now, generate: { try ToolKey.generate(now: now) }) }
        _ = try await store.updateKeyRing {
            try $0.rotated(now: now, grace: 60, minimumNextAge: 0, force: true, generate: { try ToolKey.generate(now: now) })
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(!names.contains { $0.contains(".tmp-") }, "\(names)")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder)
        do {
            _ = try await store.loadKeyRing()
            Issue.record("a keys folder writable by everyone was accepted")
        } catch let error as StorageError {
            #expect(error.code == .insecure && error.message.contains("chmod 700"))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: folder)
        #expect(try await store.loadKeyRing().keys.count == 3)
    }
}

/// The two SQL backends keep the same tables with the same columns (their migration histories differ in number:
/// released migrations are never edited), so that one set of statements (`GatewaySQL`) serves both.
@Suite("SQL schemas", .enabled(if: TemporaryPostgresDatabase.isAvailable, "GATEWAY_TEST_POSTGRES_URL is not set"))
struct SQLSchemaTests {
    @Test("every table has the same columns in SQLite and in PostgreSQL, and both have the same tables")
    func sameColumns() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-schema-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sqlite = try await SQLiteGatewayStore.open(path: folder.appendingPathComponent("gateway.sqlite").path, logger: Logger(label: "test"))
        try await sqlite.migrate()
        let tables = try await sqlite.read(SQLStatement("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"), [])
            .compactMap { try $0.text("name") }.sorted()
        #expect(tables.contains("launches"))
        var sqliteColumns: [String: Set<String>] = [:]
        for table in tables {
            let rows = try await sqlite.read(SQLStatement("SELECT name FROM pragma_table_info('\(table)')"), [])
            sqliteColumns[table] = Set(try rows.compactMap { try $0.text("name") })
        }
        try await sqlite.close()
        try await PostgresConformanceTests.withStore { postgres in
            let postgresTables = try await postgres.read(
                SQLStatement("SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema()"), []
            ).compactMap { try $0.text("name") }.sorted()
            // PostgreSQL also keeps the signing keys (several instances share them); SQLite's gateway keeps them in files.
            #expect(postgresTables.filter { !["tool_keys", "tool_key_ring"].contains($0) } == tables)
            for table in tables {
                let rows = try await postgres.read(
                    SQLStatement("SELECT column_name::text AS name FROM information_schema.columns WHERE table_name = ?"), [.text(table)])
                let columns = Set(try rows.compactMap { try $0.text("name") })
                #expect(
                    !columns.isEmpty && columns == sqliteColumns[table],
                    "\(table): PostgreSQL \(columns.sorted()), SQLite \(sqliteColumns[table]?.sorted() ?? [])")
            }
        }
    }
}
