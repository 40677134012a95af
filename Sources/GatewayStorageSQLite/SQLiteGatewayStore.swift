import Foundation
import GatewayStorage
import LTICore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The embedded ``GatewayStore``: one SQLite file in WAL mode.
///
/// Single statements (`DELETE … RETURNING`, `INSERT … ON CONFLICT`) give the atomicity the one-time
/// state rule needs. Multi-statement writes run in `BEGIN IMMEDIATE` transactions on a
/// second connection of their own (so that no unrelated statement joins them), never overlapping this
/// store's single-statement writes (``TransactionGate``). Single-statement writes that arrive together
/// are committed together (``WriteBatcher``), on a third connection, each group in one hand-over to a writer
/// thread. Reads run on the calling thread, on connections of their own (in WAL reads never wait for writers).
/// Every connection keeps its prepared statements (``SQLiteDatabase``). The write-ahead log is checkpointed in the
/// background (``WALCheckpointer``).
public final class SQLiteGatewayStore: SQLGatewayStore {
    public typealias Row = SQLiteStoreRow

    let connection: SQLiteConnectionLock
    let transactionConnection: SQLiteConnectionLock
    /// Groups of single-statement writes, each in one transaction (``WriteBatcher``).
    let groupConnection: SQLiteConnectionLock
    /// Connections for reads only, taken in turn (``read(_:_:)``).
    let readers: [SQLiteConnectionLock]
    private let nextReader = Atomic<Int>(0)
    let checkpointer: WALCheckpointer
    /// The threads that run this store's writes: its own, so that a write waiting in SQLite's busy handler for
    /// another process's lock never holds a thread of the Swift runtime's pool or another store's.
    let writeThreads: NIOThreadPool
    let gate = TransactionGate()
    let writes: WriteBatcher
    let logger: Logger

    private init(
        connection: SQLiteConnectionLock, transactionConnection: SQLiteConnectionLock, groupConnection: SQLiteConnectionLock,
        readers: [SQLiteConnectionLock], checkpointer: WALCheckpointer, writeThreads: NIOThreadPool, logger: Logger
    ) {
        self.writeThreads = writeThreads
        self.connection = connection
        self.transactionConnection = transactionConnection
        self.groupConnection = groupConnection
        self.readers = readers
        self.checkpointer = checkpointer
        self.logger = logger
        let gate = gate
        writes = WriteBatcher(
            runOne: { statements in
                defer { checkpointer.noteWrite() }
                return try await gate.statement {
                    try await writeThreads.runIfActive {
                        try connection.withConnection { database in
                            guard statements.count > 1 else { return try database.run(statements[0].sql, statements[0].binds) }
                            _ = try database.run("BEGIN IMMEDIATE", [])
                            do {
                                let rows = try Self.run(statements, on: database)
                                _ = try database.run("COMMIT", [])
                                return rows
                            } catch {
                                _ = try? database.run("ROLLBACK", [])
                                throw error
                            }
                        }
                    }
                }
            },
            runGroup: { group in
                await Self.commitGroup(group, on: groupConnection, threads: writeThreads, gate: gate)
                checkpointer.noteWrite()
            })
    }

    /// How many connections serve reads: one per core (a connection runs one statement at a time).
    static let readerCount = max(2, System.coreCount)

    /// Opens (creating if needed) the database file at `path` and its folder.
    ///
    /// - Parameter busyTimeout: how long a statement waits for another connection's write lock (launches
    ///   should not wait longer; tests that race two stores on a starved machine may).
    public static func open(path: String, logger: Logger, busyTimeout: Duration = .seconds(5)) async throws -> SQLiteGatewayStore {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            // Only its owner reads the database (it holds login states, identities and emails): a new folder is
            // 0700 and the file 0600 before SQLite first opens it (its log files take the file's mode).
            if !FileManager.default.fileExists(atPath: folder) {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            let created = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if created >= 0 { Glibc.close(created) }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw StorageError(.invalidLocation, "cannot create the database \(path) (mode 0600) in \(folder)", underlying: error)
        }
        // Writes, their groups and transactions run here; the gate and the write queue let at most one of them run at a
        // time, so none ever waits inside SQLite for another's lock (the second thread serves opening and closing).
        let writeThreads = NIOThreadPool(numberOfThreads: 2)
        writeThreads.start()
        let milliseconds = Int(busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000)
        func connect(busyTimeout milliseconds: Int) async throws -> SQLiteConnectionLock {
            let pragmas = [
                "PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL",
                "PRAGMA wal_autocheckpoint = \(WALCheckpointer.backstopPages)", "PRAGMA journal_size_limit = \(WALCheckpointer.logSizeLimitBytes)",
            ]
            // Opening may wait for another process's lock (setting WAL mode): on a writer thread.
            return try await writeThreads.runIfActive {
                SQLiteConnectionLock(try SQLiteDatabase(path: path, busyTimeoutMilliseconds: milliseconds, pragmas: pragmas))
            }
        }
        // Launches wait at most 5 s for a lock; migrations and registrations (rare, possibly racing another
        // instance starting at the same moment on a busy machine) wait up to 30 s.
        var opened: [SQLiteConnectionLock] = []
        do {
            let connection = try await connect(busyTimeout: milliseconds)
            opened.append(connection)
            let transactionConnection = try await connect(busyTimeout: 30_000)
            opened.append(transactionConnection)
            let groupConnection = try await connect(busyTimeout: milliseconds)
            opened.append(groupConnection)
            var readers: [SQLiteConnectionLock] = []
            for _ in 0..<readerCount {
                let reader = try await connect(busyTimeout: milliseconds)
                opened.append(reader)
                readers.append(reader)
            }
            let checkpointer: WALCheckpointer
            do {
                checkpointer = try await WALCheckpointer.start(path: path, logger: logger)
            } catch {
                throw StorageError(.unavailable, "cannot open the SQLite database at \(path)", underlying: error)
            }
            return SQLiteGatewayStore(
                connection: connection, transactionConnection: transactionConnection, groupConnection: groupConnection,
                readers: readers, checkpointer: checkpointer, writeThreads: writeThreads, logger: logger)
        } catch {
            for connection in opened { try? connection.withConnection { $0.close() } }
            try? await writeThreads.shutdownGracefully()
            throw error
        }
    }

    /// Runs the log checkpointer until cancelled (without it, SQLite's own checkpoint at 64 MiB of log is the backstop).
    public func run() async {
        await checkpointer.run()
    }

    public func close() async throws {
        await checkpointer.stop()
        for lock in [groupConnection, connection, transactionConnection] + readers { try lock.withConnection { $0.close() } }
        try await writeThreads.shutdownGracefully()
    }

    // MARK: migrations

    /// How many migrations the schema history has.
    public static var migrationCount: Int { SQLiteSchema.migrations.count }

    public func migrate() async throws { try await migrate(through: SQLiteSchema.migrations.count) }

    /// Applies the migrations up to `version` (tests of a migration start from the schema before it).
    public func migrate(through version: Int) async throws {
        try await gate.run {
            try await self.inTransaction { run in
                _ = try await run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)", [])
            }
            for (index, statements) in SQLiteSchema.migrations.prefix(version).enumerated() {
                // The check and the migration share one IMMEDIATE transaction: two processes starting
                // together apply each migration once.
                let applied = try await self.inTransaction { run in
                    let done = try await run("SELECT version FROM schema_migrations WHERE version = ?", [.integer(index + 1)])
                    guard done.isEmpty else { return false }
                    for statement in statements { _ = try await run(statement, []) }
                    _ = try await run(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        [.integer(index + 1), .float(Date().timeIntervalSince1970)])
                    return true
                }
                guard applied else { continue }
                self.logger.info("applied database migration", metadata: ["db.migration": "\(index + 1)"])
            }
        }
    }

    // MARK: registrations

    public func addRegistration(_ registration: PlatformRegistration) async throws {
        try await gate.run {
            try await self.inTransaction { run in
                _ = try await run(GatewaySQL.insertRegistration.sqlite, GatewaySQL.values(registration).map(SQLiteData.init))
                for (position, deployment) in registration.deploymentIDs.enumerated() {
                    _ = try await run(
                        GatewaySQL.insertDeployment.sqlite, [.text(registration.id), .text(deployment), .integer(position)])
                }
            }
        }
    }

    public func completeDynamicRegistration(
        _ registration: PlatformRegistration, inviteDigest: String, now: Date
    ) async throws
        -> DynamicRegistrationResult
    {
        try await gate.run {
            try await self.inTransaction { run in
                try await GatewaySQL.completeDynamicRegistration(registration, inviteDigest: inviteDigest, now: now) { statement, values in
                    try await run(statement.sqlite, values.map(SQLiteData.init))
                }
            }
        }
    }

    public func updateRegistration(_ registration: PlatformRegistration) async throws -> Bool {
        try await gate.run {
            try await self.inTransaction { run in
                let updated = try await run(
                    GatewaySQL.updateRegistrationEndpoints.sqlite, GatewaySQL.endpointValues(registration).map(SQLiteData.init))
                guard !updated.isEmpty else { return false }
                _ = try await run(GatewaySQL.deleteDeployments.sqlite, [.text(registration.id)])
                for (position, deployment) in registration.deploymentIDs.enumerated() {
                    _ = try await run(
                        GatewaySQL.insertDeployment.sqlite, [.text(registration.id), .text(deployment), .integer(position)])
                }
                return true
            }
        }
    }

    // MARK: jobs

    public func claimJobs(kind: String, key: String?, now: Date, leaseUntil: Date, worker: String, limit: Int) async throws -> [QueuedJob] {
        let t = SQLiteData.float(now.timeIntervalSince1970)
        // One statement: SQLite runs it under its write lock, so each job goes to one claimer, in any process.
        let rows = try await write(
            """
            UPDATE jobs SET locked_by = ?, locked_until = ?, attempts = attempts + 1
            WHERE rowid IN (SELECT rowid FROM jobs WHERE kind = ? AND (? IS NULL OR key = ?) AND held = 0 AND next_run_at <= ?
                            AND (locked_until IS NULL OR locked_until <= ?) ORDER BY next_run_at LIMIT ?)
            RETURNING \(GatewaySQL.jobColumns)
            """,
            [.text(worker), .float(leaseUntil.timeIntervalSince1970), .text(kind), .optionalText(key), .optionalText(key), t, t, .integer(limit)])
        return try rows.map(GatewaySQL.job).sorted { $0.nextRunAt < $1.nextRunAt }
    }

    // MARK: plumbing

    /// A single-statement write (a primary-key or unique conflict is ``StorageError`` `.duplicate`).
    ///
    /// Writes go through ``writes`` (group commit) and never overlap this store's transactions
    /// (``TransactionGate``): a statement left to wait for the lock inside SQLite would hold the writer thread
    /// that the transaction holding it needs to finish (a stall until the busy timeout).
    @discardableResult
    func write(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteStoreRow] {
        try await writes.write(sql, binds)
    }

    /// A read: at once, on the calling thread, on a reader connection that no other thread is using (the next in
    /// turn when all are busy). WAL: reads never wait for writers.
    func read(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteStoreRow] {
        let first = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue
        for offset in 0..<readers.count {
            if let rows = try readers[(first + offset) % readers.count].tryWithConnection({ try $0.run(sql, binds) }) { return rows }
        }
        return try readers[first % readers.count].withConnection { try $0.run(sql, binds) }
    }

    public func write(together statements: [(SQLStatement, [SQLValue])]) async throws {
        guard !statements.isEmpty else { return }
        _ = try await writes.write(together: statements.map { ($0.0.sqlite, $0.1.map(SQLiteData.init)) })
    }

    public func read(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [SQLiteStoreRow] {
        try await read(statement.sqlite, values.map(SQLiteData.init))
    }

    @discardableResult
    public func write(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [SQLiteStoreRow] {
        try await write(statement.sqlite, values.map(SQLiteData.init))
    }

    /// Commits `group` in one transaction, in one hand-over to a writer thread, alone on the database like any
    /// transaction of this store (``TransactionGate``), and answers each write: its rows, its own constraint error,
    /// or — when the group could not be committed — the group's error.
    static func commitGroup(
        _ group: [WriteBatcher.Write], on connection: SQLiteConnectionLock, threads: NIOThreadPool, gate: TransactionGate
    )
        async
    {
        let writes = group.map(\.statements)
        let results: [Result<[SQLiteStoreRow], any Error>]
        do {
            results = try await gate.run {
                try await threads.runIfActive {
                    try connection.withConnection { database in
                        _ = try database.run("BEGIN IMMEDIATE", [])
                        do {
                            var results: [Result<[SQLiteStoreRow], any Error>] = []
                            results.reserveCapacity(writes.count)
                            for statements in writes {
                                do {
                                    results.append(.success(try Self.runUndoable(statements, on: database)))
                                } catch let error as StorageError where error.code == .duplicate {
                                    results.append(.failure(error))  // undone: this write only
                                }
                            }
                            _ = try database.run("COMMIT", [])
                            return results
                        } catch {
                            _ = try? database.run("ROLLBACK", [])
                            throw error
                        }
                    }
                }
            }
        } catch {
            for write in group { write.continuation.resume(throwing: error) }
            return
        }
        for (write, result) in zip(group, results) { write.continuation.resume(with: result) }
    }

    /// Runs one write of a group inside the group's transaction: a single statement (SQLite undoes a failed statement
    /// by itself), or several under a savepoint, so that a duplicate in any of them undoes them all and the group
    /// carries on.
    static func runUndoable(_ statements: [WriteBatcher.Statement], on database: SQLiteDatabase) throws -> [SQLiteStoreRow] {
        guard statements.count > 1 else { return try database.run(statements[0].sql, statements[0].binds) }
        _ = try database.run("SAVEPOINT together", [])
        do {
            let rows = try run(statements, on: database)
            _ = try database.run("RELEASE together", [])
            return rows
        } catch {
            // Undone, or the whole group is: a write that could not be undone must not be committed as refused.
            do {
                _ = try database.run("ROLLBACK TO together", [])
                _ = try database.run("RELEASE together", [])
            } catch let undo {
                throw StorageError(.unavailable, "a write of the group could not be undone", underlying: undo)
            }
            throw error
        }
    }

    /// Runs `statements` in order; the last one's rows.
    static func run(_ statements: [WriteBatcher.Statement], on database: SQLiteDatabase) throws -> [SQLiteStoreRow] {
        var rows: [SQLiteStoreRow] = []
        for statement in statements { rows = try database.run(statement.sql, statement.binds) }
        return rows
    }

    /// A statement runner bound to the transaction connection.
    typealias TransactionStatement = (String, [SQLiteData]) async throws -> [SQLiteStoreRow]

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT` on the transaction connection, rolling back on error.
    /// Call only inside `gate.run`.
    func inTransaction<T>(_ body: (TransactionStatement) async throws -> T) async throws -> T {
        let connection = transactionConnection
        let threads = writeThreads
        let run: TransactionStatement = { sql, binds in
            try await threads.runIfActive { try connection.withConnection { try $0.run(sql, binds) } }
        }
        _ = try await run("BEGIN IMMEDIATE", [])
        do {
            let result = try await body(run)
            _ = try await run("COMMIT", [])
            checkpointer.noteWrite()
            return result
        } catch {
            _ = try? await run("ROLLBACK", [])
            throw error
        }
    }
}

extension SQLiteData {
    static func optionalText(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }

    /// The value as SQLite stores it (truth as 0 or 1).
    init(_ value: SQLValue) {
        switch value {
        case .text(let text): self = .text(text)
        case .integer(let integer): self = .integer(integer)
        case .real(let real): self = .float(real)
        case .bool(let bool): self = .integer(bool ? 1 : 0)
        case .null: self = .null
        }
    }
}
