import Foundation
import GatewayStorage
import LTICore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// The embedded ``GatewayStore``: one SQLite file in WAL mode.
///
/// Single statements (`DELETE … RETURNING`, `INSERT … ON CONFLICT`) give the atomicity the one-time
/// state and nonce rules need. Multi-statement writes run in `BEGIN IMMEDIATE` transactions on a
/// second connection of their own (so that no unrelated statement joins them), never overlapping this
/// store's single-statement writes (``TransactionGate``). Single-statement writes that arrive together
/// are committed together (``WriteBatcher``), on a third connection; reads never wait (WAL). The
/// write-ahead log is checkpointed in the background (``WALCheckpointer``).
public final class SQLiteGatewayStore: GatewayStore {
    let connection: SQLiteConnection
    let transactionConnection: SQLiteConnection
    /// Groups of single-statement writes, each in one transaction (``WriteBatcher``).
    let groupConnection: SQLiteConnection
    let checkpointer: WALCheckpointer
    /// The threads that run this store's SQLite calls: its own, so that a statement waiting in SQLite's
    /// busy handler for another store's lock (another process, or another store in this one) never holds
    /// a thread that the store holding the lock needs to finish.
    let threadPool: NIOThreadPool
    let gate = TransactionGate()
    let writes: WriteBatcher
    let logger: Logger

    private init(
        connection: SQLiteConnection, transactionConnection: SQLiteConnection, groupConnection: SQLiteConnection,
        checkpointer: WALCheckpointer, threadPool: NIOThreadPool, logger: Logger
    ) {
        self.threadPool = threadPool
        self.connection = connection
        self.transactionConnection = transactionConnection
        self.groupConnection = groupConnection
        self.checkpointer = checkpointer
        self.logger = logger
        let gate = gate
        writes = WriteBatcher(
            runOne: { sql, binds in
                defer { checkpointer.noteWrite() }
                return try await gate.statement { try await Self.query(sql, binds, on: connection) }
            },
            runGroup: { group in
                await Self.commitGroup(group, on: groupConnection, gate: gate)
                checkpointer.noteWrite()
            })
    }

    /// Opens (creating if needed) the database file at `path` and its folder.
    ///
    /// - Parameter busyTimeout: how long a statement waits for another connection's write lock (launches
    ///   should not wait longer; tests that race two stores on a starved machine may).
    public static func open(path: String, logger: Logger, busyTimeout: Duration = .seconds(5)) async throws -> SQLiteGatewayStore {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.invalidLocation, "cannot create the database folder \(folder)", underlying: error)
        }
        /// `busyTimeout`: how long a statement waits for another process's write lock.
        let threadPool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        threadPool.start()
        func connect(busyTimeout milliseconds: Int) async throws -> SQLiteConnection {
            do {
                let connection = try await SQLiteConnection.open(
                    storage: .file(path: path), threadPool: threadPool, logger: logger,
                    on: MultiThreadedEventLoopGroup.singleton.any())
                for pragma in [
                    "PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = \(milliseconds)", "PRAGMA foreign_keys = ON",
                    "PRAGMA synchronous = NORMAL", "PRAGMA wal_autocheckpoint = \(WALCheckpointer.backstopPages)",
                    "PRAGMA journal_size_limit = \(WALCheckpointer.logSizeLimitBytes)",
                ] {
                    _ = try await connection.query(pragma, [])
                }
                return connection
            } catch {
                throw StorageError(.unavailable, "cannot open the SQLite database at \(path)", underlying: error)
            }
        }
        // Launches wait at most 5 s for a lock; migrations and registrations (rare, possibly racing another
        // instance starting at the same moment on a busy machine) wait up to 30 s.
        var opened: [SQLiteConnection] = []
        do {
            let milliseconds = Int(busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000)
            let connection = try await connect(busyTimeout: milliseconds)
            opened.append(connection)
            let transactionConnection = try await connect(busyTimeout: 30_000)
            opened.append(transactionConnection)
            let groupConnection = try await connect(busyTimeout: milliseconds)
            opened.append(groupConnection)
            let checkpointer: WALCheckpointer
            do {
                checkpointer = try await WALCheckpointer.start(path: path, logger: logger)
            } catch {
                throw StorageError(.unavailable, "cannot open the SQLite database at \(path)", underlying: error)
            }
            return SQLiteGatewayStore(
                connection: connection, transactionConnection: transactionConnection, groupConnection: groupConnection,
                checkpointer: checkpointer, threadPool: threadPool, logger: logger)
        } catch {
            for connection in opened { try? await connection.close() }
            try? await threadPool.shutdownGracefully()
            throw error
        }
    }

    /// Runs the log checkpointer until cancelled (without it, SQLite's own checkpoint at 64 MiB of log is the backstop).
    public func run() async {
        await checkpointer.run()
    }

    public func close() async throws {
        await checkpointer.stop()
        try await groupConnection.close()
        try await connection.close()
        try await transactionConnection.close()
        try await threadPool.shutdownGracefully()
    }

    public func ping() async throws {
        _ = try await read("SELECT 1")
    }

    // MARK: migrations

    /// How many migrations the schema history has.
    public static var migrationCount: Int { SQLiteSchema.migrations.count }

    public func migrate() async throws {
        try await gate.run {
            try await self.inTransaction { run in
                _ = try await run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)", [])
            }
            for (index, statements) in SQLiteSchema.migrations.enumerated() {
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
                _ = try await run(
                    """
                    INSERT INTO platform_registrations (id, issuer, client_id, auth_url, token_url, jwks_url, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        .text(registration.id), .text(registration.issuer), .text(registration.clientID),
                        .text(registration.authURL), .text(registration.tokenURL), .text(registration.jwksURL),
                        .float(registration.createdAt.timeIntervalSince1970),
                    ])
                for deployment in registration.deploymentIDs {
                    _ = try await run(
                        "INSERT INTO platform_deployments (registration_id, deployment_id) VALUES (?, ?)",
                        [.text(registration.id), .text(deployment)])
                }
            }
        }
    }

    public func allRegistrations() async throws -> [PlatformRegistration] {
        try await registrations(where: "1 = 1", [])
    }

    public func registrations(issuer: String) async throws -> [PlatformRegistration] {
        try await registrations(where: "r.issuer = ?", [.text(issuer)])
    }

    public func registration(id: String) async throws -> PlatformRegistration? {
        try await registrations(where: "r.id = ?", [.text(id)]).first
    }

    private func registrations(where condition: String, _ binds: [SQLiteData]) async throws -> [PlatformRegistration] {
        let rows = try await read(
            """
            SELECT r.id, r.issuer, r.client_id, r.auth_url, r.token_url, r.jwks_url, r.created_at,
                   (SELECT group_concat(deployment_id, char(10)) FROM
                      (SELECT deployment_id FROM platform_deployments d WHERE d.registration_id = r.id ORDER BY d.rowid)) AS deployments
            FROM platform_registrations r WHERE \(condition) ORDER BY r.created_at, r.id
            """, binds)
        return try rows.map { row in
            PlatformRegistration(
                id: try row.text("id"), issuer: try row.text("issuer"), clientID: try row.text("client_id"),
                authURL: try row.text("auth_url"), tokenURL: try row.text("token_url"), jwksURL: try row.text("jwks_url"),
                deploymentIDs: row.column("deployments")?.string.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
                    ?? [],
                createdAt: try row.date("created_at"))
        }
    }

    public func removeRegistration(id: String) async throws -> Bool {
        let rows = try await write("DELETE FROM platform_registrations WHERE id = ? RETURNING id", [.text(id)])
        return !rows.isEmpty
    }

    public func launchOptions(registrationID: String) async throws -> PlatformLaunchOptions {
        try await optionsColumn("launch_options", of: registrationID) ?? PlatformLaunchOptions()
    }

    public func setLaunchOptions(_ options: PlatformLaunchOptions, registrationID: String) async throws -> Bool {
        try await setOptionsColumn("launch_options", to: options, of: registrationID)
    }

    public func skyPrepOptions(registrationID: String) async throws -> PlatformSkyPrepOptions {
        try await optionsColumn("skyprep_options", of: registrationID) ?? PlatformSkyPrepOptions()
    }

    public func setSkyPrepOptions(_ options: PlatformSkyPrepOptions, registrationID: String) async throws -> Bool {
        try await setOptionsColumn("skyprep_options", to: options, of: registrationID)
    }

    /// A registration's JSON options column (`column` is one of ours, never input); nil when unset.
    private func optionsColumn<T: Decodable>(_ column: String, of registrationID: String) async throws -> T? {
        let rows = try await read("SELECT \(column) FROM platform_registrations WHERE id = ?", [.text(registrationID)])
        guard let text = rows.first?.column(column)?.string else { return nil }
        return try StoredJSON.decode(T.self, from: text, what: "\(column) of \(registrationID)")
    }

    private func setOptionsColumn<T: Encodable>(_ column: String, to value: T, of registrationID: String) async throws -> Bool {
        let rows = try await write(
            "UPDATE platform_registrations SET \(column) = ? WHERE id = ? RETURNING id",
            [.text(try StoredJSON.encode(value)), .text(registrationID)])
        return !rows.isEmpty
    }

    // MARK: login state and nonces

    public func saveLoginState(_ state: LoginState) async throws {
        _ = try await write(
            """
            INSERT INTO login_states (state, nonce, registration_id, target_link_uri, created_at, expires_at,
              login_hint, message_hint, deployment_hint, restart_key, storage_digest, storage_frame, new_window)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(state.state), .text(state.nonce), .text(state.registrationID), .text(state.targetLinkURI),
                .float(state.createdAt.timeIntervalSince1970), .float(state.expiresAt.timeIntervalSince1970),
                .text(state.loginHint), state.ltiMessageHint.map(SQLiteData.text) ?? .null, state.deploymentHint.map(SQLiteData.text) ?? .null,
                .text(state.restartKey), state.storageSecretDigest.map(SQLiteData.text) ?? .null,
                state.storageFrame.map(SQLiteData.text) ?? .null, .integer(state.startedInNewWindow ? 1 : 0),
            ])
    }

    /// The columns of a login state, in the order ``loginState(from:)`` reads them.
    private static let loginStateColumns = """
        state, nonce, registration_id, target_link_uri, created_at, expires_at, login_hint, message_hint, deployment_hint,
        restart_key, storage_digest, storage_frame, new_window
        """

    private static func loginState(from row: SQLiteRow) throws -> LoginState {
        LoginState(
            state: try row.text("state"), nonce: try row.text("nonce"), registrationID: try row.text("registration_id"),
            targetLinkURI: try row.text("target_link_uri"), createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"),
            loginHint: row.column("login_hint")?.string ?? "", ltiMessageHint: row.column("message_hint")?.string,
            deploymentHint: row.column("deployment_hint")?.string, restartKey: row.column("restart_key")?.string ?? "",
            storageSecretDigest: row.column("storage_digest")?.string, storageFrame: row.column("storage_frame")?.string,
            startedInNewWindow: row.column("new_window")?.integer == 1)
    }

    public func consumeLoginState(_ state: String, now: Date) async throws -> LoginState? {
        // One statement: of two racing consumers, exactly one gets the row.
        let rows = try await write("DELETE FROM login_states WHERE state = ? RETURNING \(Self.loginStateColumns)", [.text(state)])
        guard let row = rows.first else { return nil }
        let found = try Self.loginState(from: row)
        return found.expiresAt > now ? found : nil
    }

    public func loginState(_ state: String, now: Date) async throws -> LoginState? {
        let rows = try await read(
            "SELECT \(Self.loginStateColumns) FROM login_states WHERE state = ? AND expires_at > ?",
            [.text(state), .float(now.timeIntervalSince1970)])
        return try rows.first.map(Self.loginState(from:))
    }

    public func loginState(restartKey: String, now: Date) async throws -> LoginState? {
        let rows = try await read(
            "SELECT \(Self.loginStateColumns) FROM login_states WHERE restart_key = ? AND expires_at > ?",
            [.text(restartKey), .float(now.timeIntervalSince1970)])
        return try rows.first.map(Self.loginState(from:))
    }

    public func markNonceUsed(issuer: String, nonce: String, expiresAt: Date) async throws -> Bool {
        let rows = try await write(
            "INSERT INTO used_nonces (issuer, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING nonce",
            [.text(issuer), .text(nonce), .float(expiresAt.timeIntervalSince1970)])
        return !rows.isEmpty
    }

    public func deleteExpired(now: Date) async throws -> Int {
        let t = SQLiteData.float(now.timeIntervalSince1970)
        var removed = 0
        for table in ["login_states", "used_nonces", "deep_link_sessions"] {
            removed += try await write("DELETE FROM \(table) WHERE expires_at <= ? RETURNING 1", [t]).count
        }
        return removed
    }

    // MARK: deep-linking sessions

    public func saveDeepLinkSession(_ session: DeepLinkSession) async throws {
        _ = try await write(
            """
            INSERT INTO deep_link_sessions (id, registration_id, deployment_id, return_url, data, accept_multiple, accept_lineitem,
              created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(session.id), .text(session.registrationID), .text(session.deploymentID), .text(session.returnURL),
                .optionalText(session.data), .integer(session.acceptMultiple ? 1 : 0), .integer(session.acceptLineItem ? 1 : 0),
                .float(session.createdAt.timeIntervalSince1970), .float(session.expiresAt.timeIntervalSince1970),
            ])
    }

    public func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession? {
        let rows = try await write(
            """
            DELETE FROM deep_link_sessions WHERE id = ? RETURNING id, registration_id, deployment_id, return_url, data,
              accept_multiple, accept_lineitem, created_at, expires_at
            """, [.text(id)])
        guard let row = rows.first else { return nil }
        let session = DeepLinkSession(
            id: try row.text("id"), registrationID: try row.text("registration_id"), deploymentID: try row.text("deployment_id"),
            returnURL: try row.text("return_url"), data: row.column("data")?.string,
            acceptMultiple: row.column("accept_multiple")?.integer == 1, acceptLineItem: row.column("accept_lineitem")?.integer == 1,
            createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"))
        return session.expiresAt > now ? session : nil
    }

    // MARK: identities

    public func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity {
        let rows = try await write(
            """
            INSERT INTO learner_identities (id, issuer, subject, given_name, family_name, email, first_seen, last_seen)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (issuer, subject) DO UPDATE SET
              given_name = excluded.given_name, family_name = excluded.family_name,
              email = excluded.email, last_seen = excluded.last_seen
            RETURNING id, issuer, subject, given_name, family_name, email, first_seen, last_seen
            """,
            [
                .text(identity.id), .text(identity.issuer), .text(identity.subject), .optionalText(identity.givenName),
                .optionalText(identity.familyName), .optionalText(identity.email),
                .float(identity.firstSeen.timeIntervalSince1970), .float(identity.lastSeen.timeIntervalSince1970),
            ])
        guard let row = rows.first else { throw StorageError(.corrupt, "upsert returned no row") }
        return try Self.identity(row)
    }

    public func identity(issuer: String, subject: String) async throws -> LearnerIdentity? {
        let rows = try await read(
            "SELECT id, issuer, subject, given_name, family_name, email, first_seen, last_seen FROM learner_identities WHERE issuer = ? AND subject = ?",
            [.text(issuer), .text(subject)])
        return try rows.first.map(Self.identity)
    }

    private static func identity(_ row: SQLiteRow) throws -> LearnerIdentity {
        LearnerIdentity(
            id: try row.text("id"), issuer: try row.text("issuer"), subject: try row.text("subject"),
            givenName: row.column("given_name")?.string, familyName: row.column("family_name")?.string,
            email: row.column("email")?.string, firstSeen: try row.date("first_seen"), lastSeen: try row.date("last_seen"))
    }

    // MARK: launches

    public func recordLaunch(_ launch: LaunchRecord) async throws {
        _ = try await write(
            """
            INSERT INTO launches (id, registration_id, deployment_id, learner_id, subject, message_type, resource_link_id,
              context_id, lab_id, outcome, vendor_result_code, lab_instance_id, ags_lineitem, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(launch.id), .text(launch.registrationID), .text(launch.deploymentID), .text(launch.learnerID),
                .text(launch.subject), .text(launch.messageType), .optionalText(launch.resourceLinkID),
                .optionalText(launch.contextID), .optionalText(launch.labID), .text(launch.outcome),
                launch.vendorResultCode.map { .integer($0) } ?? .null, .optionalText(launch.labInstanceID),
                .optionalText(launch.agsLineItem), .float(launch.createdAt.timeIntervalSince1970),
            ])
    }

    public func launch(id: String) async throws -> LaunchRecord? {
        try await launches(where: "id = ?", [.text(id)], limit: 1).first
    }

    public func recentLaunches(limit: Int) async throws -> [LaunchRecord] {
        try await launches(where: "1 = 1", [], limit: limit)
    }

    private func launches(where condition: String, _ binds: [SQLiteData], limit: Int) async throws -> [LaunchRecord] {
        let rows = try await read(
            """
            SELECT id, registration_id, deployment_id, learner_id, subject, message_type, resource_link_id, context_id, lab_id,
                   outcome, vendor_result_code, lab_instance_id, ags_lineitem, created_at
            FROM launches WHERE \(condition) ORDER BY created_at DESC, id DESC LIMIT ?
            """, binds + [.integer(limit)])
        return try rows.map { row in
            LaunchRecord(
                id: try row.text("id"), registrationID: try row.text("registration_id"), deploymentID: try row.text("deployment_id"),
                learnerID: try row.text("learner_id"), subject: try row.text("subject"), messageType: try row.text("message_type"),
                resourceLinkID: row.column("resource_link_id")?.string, contextID: row.column("context_id")?.string,
                labID: row.column("lab_id")?.string, outcome: try row.text("outcome"),
                vendorResultCode: row.column("vendor_result_code")?.integer, labInstanceID: row.column("lab_instance_id")?.string,
                agsLineItem: row.column("ags_lineitem")?.string, createdAt: try row.date("created_at"))
        }
    }

    // MARK: SkyPrep accounts

    public func skyPrepAccount(learnerID: String) async throws -> SkyPrepAccount? {
        try await skyPrepAccounts(where: "learner_id = ?", [.text(learnerID)]).first
    }

    public func skyPrepAccounts(userID: Int) async throws -> [SkyPrepAccount] {
        try await skyPrepAccounts(where: "user_id = ?", [.integer(userID)])
    }

    private func skyPrepAccounts(where condition: String, _ binds: [SQLiteData]) async throws -> [SkyPrepAccount] {
        let rows = try await read(
            "SELECT learner_id, user_id, email, first_name, last_name, role, updated_at FROM skyprep_accounts WHERE \(condition) ORDER BY learner_id",
            binds)
        return try rows.map { row in
            guard let userID = row.column("user_id")?.integer else { throw StorageError(.corrupt, "column user_id is missing") }
            return SkyPrepAccount(
                learnerID: try row.text("learner_id"), userID: userID, email: try row.text("email"),
                firstName: try row.text("first_name"), lastName: try row.text("last_name"), role: try row.text("role"),
                updatedAt: try row.date("updated_at"))
        }
    }

    public func saveSkyPrepAccount(_ account: SkyPrepAccount) async throws {
        try await write(
            """
            INSERT INTO skyprep_accounts (learner_id, user_id, email, first_name, last_name, role, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (learner_id) DO UPDATE SET user_id = excluded.user_id, email = excluded.email, first_name = excluded.first_name,
              last_name = excluded.last_name, role = excluded.role, updated_at = excluded.updated_at
            """,
            [
                .text(account.learnerID), .integer(account.userID), .text(account.email), .text(account.firstName),
                .text(account.lastName), .text(account.role), .float(account.updatedAt.timeIntervalSince1970),
            ])
    }

    // MARK: jobs

    public func enqueueJob(kind: String, key: String, payload: String, runAt: Date) async throws {
        let t = SQLiteData.float(runAt.timeIntervalSince1970)
        try await write(
            """
            INSERT INTO jobs (kind, key, payload, revision, attempts, next_run_at, held, created_at) VALUES (?, ?, ?, 1, 0, ?, 0, ?)
            ON CONFLICT (kind, key) DO UPDATE SET payload = excluded.payload, revision = jobs.revision + 1,
              next_run_at = MIN(jobs.next_run_at, excluded.next_run_at), held = 0
            """, [.text(kind), .text(key), .text(payload), t, t])
    }

    public func claimJobs(kind: String, key: String?, now: Date, leaseUntil: Date, worker: String, limit: Int) async throws -> [QueuedJob] {
        let t = SQLiteData.float(now.timeIntervalSince1970)
        // One statement: SQLite runs it under its write lock, so each job goes to one claimer, in any process.
        let rows = try await write(
            """
            UPDATE jobs SET locked_by = ?, locked_until = ?, attempts = attempts + 1
            WHERE rowid IN (SELECT rowid FROM jobs WHERE kind = ? AND (? IS NULL OR key = ?) AND held = 0 AND next_run_at <= ?
                            AND (locked_until IS NULL OR locked_until <= ?) ORDER BY next_run_at LIMIT ?)
            RETURNING \(Self.jobColumns)
            """,
            [.text(worker), .float(leaseUntil.timeIntervalSince1970), .text(kind), .optionalText(key), .optionalText(key), t, t, .integer(limit)])
        return try rows.map(Self.job).sorted { $0.nextRunAt < $1.nextRunAt }
    }

    public func completeJob(_ job: QueuedJob, worker: String) async throws {
        let removed = try await write(
            "DELETE FROM jobs WHERE kind = ? AND key = ? AND revision = ? AND locked_by = ? RETURNING 1",
            [.text(job.kind), .text(job.key), .integer(job.revision), .text(worker)])
        guard removed.isEmpty else { return }
        try await write(
            "UPDATE jobs SET locked_by = NULL, locked_until = NULL WHERE kind = ? AND key = ? AND locked_by = ?",
            [.text(job.kind), .text(job.key), .text(worker)])
    }

    public func failJob(_ job: QueuedJob, worker: String, failure: JobFailure, retryAt: Date?) async throws {
        // A newer revision (enqueued meanwhile) keeps its own due time and runs again.
        try await write(
            """
            UPDATE jobs SET locked_by = NULL, locked_until = NULL, last_error = ?, failure_code = ?,
              next_run_at = CASE WHEN revision = ? AND ? IS NOT NULL THEN ? ELSE next_run_at END,
              held = CASE WHEN revision = ? AND ? IS NULL THEN 1 ELSE held END
            WHERE kind = ? AND key = ? AND locked_by = ?
            """,
            [
                .text(failure.detail), .text(failure.code), .integer(job.revision), retryAt.map { .float($0.timeIntervalSince1970) } ?? .null,
                retryAt.map { .float($0.timeIntervalSince1970) } ?? .null, .integer(job.revision),
                retryAt.map { .float($0.timeIntervalSince1970) } ?? .null, .text(job.kind), .text(job.key), .text(worker),
            ])
    }

    public func queuedJob(kind: String, key: String) async throws -> QueuedJob? {
        try await read("SELECT \(Self.jobColumns) FROM jobs WHERE kind = ? AND key = ?", [.text(kind), .text(key)]).first.map(Self.job)
    }

    public func queuedJobs(limit: Int) async throws -> [QueuedJob] {
        try await read("SELECT \(Self.jobColumns) FROM jobs ORDER BY created_at, kind, key LIMIT ?", [.integer(limit)]).map(Self.job)
    }

    public func releaseJob(kind: String, key: String, now: Date) async throws -> Bool {
        let rows = try await write(
            "UPDATE jobs SET held = 0, next_run_at = ? WHERE kind = ? AND key = ? RETURNING 1",
            [.float(now.timeIntervalSince1970), .text(kind), .text(key)])
        return !rows.isEmpty
    }

    static let jobColumns = "kind, key, payload, revision, attempts, next_run_at, held, last_error, failure_code, created_at"

    private static func job(_ row: SQLiteRow) throws -> QueuedJob {
        guard let revision = row.column("revision")?.integer, let attempts = row.column("attempts")?.integer else {
            throw StorageError(.corrupt, "job counters are missing")
        }
        return QueuedJob(
            kind: try row.text("kind"), key: try row.text("key"), payload: try row.text("payload"), revision: revision,
            attempts: attempts, nextRunAt: try row.date("next_run_at"), lastError: row.column("last_error")?.string,
            failureCode: row.column("failure_code")?.string,
            held: row.column("held")?.integer == 1, createdAt: try row.date("created_at"))
    }

    // MARK: plumbing

    /// A single-statement write (driver errors mapped to ``StorageError``, a unique violation to `.duplicate`).
    ///
    /// Writes go through ``writes`` (group commit) and never overlap this store's transactions
    /// (``TransactionGate``): a statement left to wait for the lock inside SQLite would hold one of the few
    /// NIO thread-pool threads that the transaction holding it needs to finish (a stall until the busy
    /// timeout).
    @discardableResult
    func write(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await writes.write(sql, binds)
    }

    /// A read: at once, on the main connection (WAL: reads never wait for writers).
    func read(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await Self.query(sql, binds, on: connection)
    }

    /// Commits `group` in one transaction, alone on the database like any transaction of this store
    /// (``TransactionGate``), and answers each write: its rows, its own constraint error, or — when the
    /// group could not be committed — the group's error.
    static func commitGroup(_ group: [WriteBatcher.Write], on connection: SQLiteConnection, gate: TransactionGate) async {
        let results: [Result<[SQLiteRow], any Error>]
        do {
            results = try await gate.run {
                _ = try await query("BEGIN IMMEDIATE", [], on: connection)
                do {
                    var results: [Result<[SQLiteRow], any Error>] = []
                    results.reserveCapacity(group.count)
                    for write in group {
                        do {
                            results.append(.success(try await query(write.sql, write.binds, on: connection)))
                        } catch let error as StorageError where error.code == .duplicate {
                            results.append(.failure(error))  // SQLite undid this statement only
                        }
                    }
                    _ = try await query("COMMIT", [], on: connection)
                    return results
                } catch {
                    _ = try? await query("ROLLBACK", [], on: connection)
                    throw error
                }
            }
        } catch {
            for write in group { write.continuation.resume(throwing: error) }
            return
        }
        for (write, result) in zip(group, results) { write.continuation.resume(with: result) }
    }

    @discardableResult
    static func query(_ sql: String, _ binds: [SQLiteData], on connection: SQLiteConnection) async throws -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch let error as SQLiteError {
            switch error.reason {
            case .constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed:
                throw StorageError(.duplicate, "a row with this key exists", underlying: error)
            default:
                throw StorageError(.unavailable, "SQLite refused the statement", underlying: error)
            }
        }
    }

    /// A statement runner bound to the transaction connection.
    typealias TransactionStatement = (String, [SQLiteData]) async throws -> [SQLiteRow]

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT` on the transaction connection, rolling back on error.
    /// Call only inside `gate.run`.
    func inTransaction<T>(_ body: (TransactionStatement) async throws -> T) async throws -> T {
        let connection = transactionConnection
        let run: TransactionStatement = { sql, binds in try await Self.query(sql, binds, on: connection) }
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
}

extension SQLiteRow {
    func text(_ name: String) throws -> String {
        guard let value = column(name)?.string else { throw StorageError(.corrupt, "column \(name) is missing") }
        return value
    }

    func date(_ name: String) throws -> Date {
        guard let value = column(name)?.double else { throw StorageError(.corrupt, "column \(name) is missing") }
        return Date(timeIntervalSince1970: value)
    }
}

extension Optional where Wrapped == SQLiteData {
    var integer: Int? { self?.integer.map { Int($0) } }
}
