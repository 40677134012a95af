import Foundation
import GatewayStorage
import LTICore
import Logging
import PostgresNIO

/// The shared ``GatewayStore``: one PostgreSQL database for any number of gateway instances.
///
/// One-time consumption of state, nonces and picker sessions are single statements (`DELETE … RETURNING`,
/// `INSERT … ON CONFLICT DO NOTHING`), so of racing consumers in any instances exactly one wins. Jobs are
/// claimed with `FOR UPDATE SKIP LOCKED`, so each goes to one worker. Migrations run under an advisory
/// lock, so instances starting together apply each once.
public final class PostgresGatewayStore: GatewayStore {
    let client: PostgresClient
    let logger: Logger

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Connects (lazily: the pool opens connections on first use, once ``run()`` runs) with `settings`.
    public static func open(settings: PostgresSettings, logger: Logger) -> PostgresGatewayStore {
        PostgresGatewayStore(client: PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger), logger: logger)
    }

    /// Runs the connection pool until cancelled; statements wait for it.
    public func run() async {
        await client.run()
    }

    /// Nothing left to release: the pool's connections close when ``run()`` ends.
    public func close() async throws {}

    public func ping() async throws {
        try await run("SELECT 1")
    }

    /// Creates database `name` (letters, digits, `_`) on this server; for throwaway test databases.
    public func createDatabase(named name: String) async throws {
        try await run(PostgresQuery(unsafeSQL: "CREATE DATABASE \(try Self.databaseName(name))"))
    }

    /// Drops database `name`, closing its connections.
    public func dropDatabase(named name: String) async throws {
        try await run(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(try Self.databaseName(name)) WITH (FORCE)"))
    }

    /// `name` when it is safe to write into SQL as an identifier (lower-case letters, digits, `_`).
    private static func databaseName(_ name: String) throws -> String {
        guard name.range(of: "^[a-z][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw StorageError(.invalidLocation, "not a database name: \(name)")
        }
        return name
    }

    // MARK: migrations

    /// How many migrations the schema history has.
    public static var migrationCount: Int { PostgresSchema.migrations.count }

    public func migrate() async throws {
        try await transaction { connection in
            // Instances starting together wait here for each other; the lock ends with the transaction.
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
                logger: self.logger)
            let applied = try await connection.query("SELECT version FROM schema_migrations", logger: self.logger).collect()
            let done = Set(try applied.map { try $0.decode(Int.self) })
            for (index, statements) in PostgresSchema.migrations.enumerated() where !done.contains(index + 1) {
                for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger) }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(index + 1), \(Date().timeIntervalSince1970))", logger: self.logger)
                self.logger.info("applied database migration", metadata: ["db.migration": "\(index + 1)"])
            }
        }
    }

    // MARK: registrations

    public func addRegistration(_ r: PlatformRegistration) async throws {
        try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO platform_registrations (id, issuer, client_id, auth_url, token_url, jwks_url, created_at)
                VALUES (\(r.id), \(r.issuer), \(r.clientID), \(r.authURL), \(r.tokenURL), \(r.jwksURL), \(r.createdAt.timeIntervalSince1970))
                """, logger: self.logger)
            for (position, deployment) in r.deploymentIDs.enumerated() {
                try await connection.query(
                    "INSERT INTO platform_deployments (registration_id, deployment_id, position) VALUES (\(r.id), \(deployment), \(position))",
                    logger: self.logger)
            }
        }
    }

    public func allRegistrations() async throws -> [PlatformRegistration] {
        try await registrations(where: "1 = 1", PostgresBindings())
    }

    public func registrations(issuer: String) async throws -> [PlatformRegistration] {
        var binds = PostgresBindings()
        binds.append(issuer)
        return try await registrations(where: "r.issuer = $1", binds)
    }

    public func registration(id: String) async throws -> PlatformRegistration? {
        var binds = PostgresBindings()
        binds.append(id)
        return try await registrations(where: "r.id = $1", binds).first
    }

    private func registrations(where condition: String, _ binds: PostgresBindings) async throws -> [PlatformRegistration] {
        let rows = try await run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT r.id, r.issuer, r.client_id, r.auth_url, r.token_url, r.jwks_url, r.created_at,
                           COALESCE((SELECT array_agg(d.deployment_id ORDER BY d.position) FROM platform_deployments d
                                     WHERE d.registration_id = r.id), ARRAY[]::text[]) AS deployments
                    FROM platform_registrations r WHERE \(condition) ORDER BY r.created_at, r.id
                    """, binds: binds))
        return try rows.map { row in
            let c = row.makeRandomAccess()
            return PlatformRegistration(
                id: try c["id"].decode(String.self), issuer: try c["issuer"].decode(String.self), clientID: try c["client_id"].decode(String.self),
                authURL: try c["auth_url"].decode(String.self), tokenURL: try c["token_url"].decode(String.self),
                jwksURL: try c["jwks_url"].decode(String.self), deploymentIDs: try c["deployments"].decode([String].self),
                createdAt: Date(timeIntervalSince1970: try c["created_at"].decode(Double.self)))
        }
    }

    public func removeRegistration(id: String) async throws -> Bool {
        !(try await run("DELETE FROM platform_registrations WHERE id = \(id) RETURNING id").isEmpty)
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
        let rows = try await run("SELECT \(unescaped: column) FROM platform_registrations WHERE id = \(registrationID)")
        guard let text = try rows.first?.decode(String?.self) else { return nil }
        return try StoredJSON.decode(T.self, from: text, what: "\(column) of \(registrationID)")
    }

    private func setOptionsColumn<T: Encodable>(_ column: String, to value: T, of registrationID: String) async throws -> Bool {
        let text = try StoredJSON.encode(value)
        return !(try await run("UPDATE platform_registrations SET \(unescaped: column) = \(text) WHERE id = \(registrationID) RETURNING id").isEmpty)
    }

    // MARK: login state and nonces

    public func saveLoginState(_ s: LoginState) async throws {
        try await run(
            """
            INSERT INTO login_states (state, nonce, registration_id, target_link_uri, created_at, expires_at,
              login_hint, message_hint, deployment_hint, restart_key, storage_digest, storage_frame, new_window)
            VALUES (\(s.state), \(s.nonce), \(s.registrationID), \(s.targetLinkURI), \(s.createdAt.timeIntervalSince1970), \(s.expiresAt.timeIntervalSince1970),
              \(s.loginHint), \(s.ltiMessageHint), \(s.deploymentHint), \(s.restartKey), \(s.storageSecretDigest), \(s.storageFrame), \(s.startedInNewWindow))
            """)
    }

    /// The columns of a login state, in the order ``loginState(from:)`` reads them.
    private static let loginStateColumns = """
        state, nonce, registration_id, target_link_uri, created_at, expires_at, login_hint, message_hint, deployment_hint,
        restart_key, storage_digest, storage_frame, new_window
        """

    private static func loginState(from row: PostgresRow) throws -> LoginState {
        let (state, nonce, registration, target, created, expires, loginHint, messageHint, deploymentHint, restartKey, digest, frame, newWindow) =
            try row.decode((String, String, String, String, Double, Double, String?, String?, String?, String?, String?, String?, Bool).self)
        return LoginState(
            state: state, nonce: nonce, registrationID: registration, targetLinkURI: target,
            createdAt: Date(timeIntervalSince1970: created), expiresAt: Date(timeIntervalSince1970: expires),
            loginHint: loginHint ?? "", ltiMessageHint: messageHint, deploymentHint: deploymentHint,
            restartKey: restartKey ?? "", storageSecretDigest: digest, storageFrame: frame, startedInNewWindow: newWindow)
    }

    public func consumeLoginState(_ state: String, now: Date) async throws -> LoginState? {
        // One statement: of racing consumers in any instances, exactly one gets the row.
        let rows = try await run("DELETE FROM login_states WHERE state = \(state) RETURNING \(unescaped: Self.loginStateColumns)")
        guard let row = rows.first else { return nil }
        let found = try Self.loginState(from: row)
        return found.expiresAt > now ? found : nil
    }

    public func loginState(_ state: String, now: Date) async throws -> LoginState? {
        let rows = try await run(
            """
            SELECT \(unescaped: Self.loginStateColumns) FROM login_states WHERE state = \(state) AND expires_at > \(now.timeIntervalSince1970)
            """)
        return try rows.first.map(Self.loginState(from:))
    }

    public func loginState(restartKey: String, now: Date) async throws -> LoginState? {
        let rows = try await run(
            """
            SELECT \(unescaped: Self.loginStateColumns) FROM login_states
            WHERE restart_key = \(restartKey) AND expires_at > \(now.timeIntervalSince1970)
            """)
        return try rows.first.map(Self.loginState(from:))
    }

    public func markNonceUsed(issuer: String, nonce: String, expiresAt: Date) async throws -> Bool {
        !(try await run(
            """
            INSERT INTO used_nonces (issuer, nonce, expires_at) VALUES (\(issuer), \(nonce), \(expiresAt.timeIntervalSince1970))
            ON CONFLICT DO NOTHING RETURNING nonce
            """
        ).isEmpty)
    }

    public func deleteExpired(now: Date) async throws -> Int {
        let t = now.timeIntervalSince1970
        let rows = try await run(
            """
            WITH a AS (DELETE FROM login_states WHERE expires_at <= \(t) RETURNING 1),
                 b AS (DELETE FROM used_nonces WHERE expires_at <= \(t) RETURNING 1),
                 c AS (DELETE FROM deep_link_sessions WHERE expires_at <= \(t) RETURNING 1)
            SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c)
            """)
        return try rows.first?.decode(Int.self) ?? 0
    }

    // MARK: deep-linking sessions

    public func saveDeepLinkSession(_ s: DeepLinkSession) async throws {
        try await run(
            """
            INSERT INTO deep_link_sessions (id, registration_id, deployment_id, return_url, data, accept_multiple, accept_lineitem,
              created_at, expires_at) VALUES (\(s.id), \(s.registrationID), \(s.deploymentID), \(s.returnURL), \(s.data),
              \(s.acceptMultiple), \(s.acceptLineItem), \(s.createdAt.timeIntervalSince1970), \(s.expiresAt.timeIntervalSince1970))
            """)
    }

    public func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession? {
        let rows = try await run(
            """
            DELETE FROM deep_link_sessions WHERE id = \(id) RETURNING id, registration_id, deployment_id, return_url, data,
              accept_multiple, accept_lineitem, created_at, expires_at
            """)
        guard let row = rows.first else { return nil }
        let (sid, registration, deployment, returnURL, data, multiple, lineItem, created, expires) =
            try row.decode((String, String, String, String, String?, Bool, Bool, Double, Double).self)
        let session = DeepLinkSession(
            id: sid, registrationID: registration, deploymentID: deployment, returnURL: returnURL, data: data,
            acceptMultiple: multiple, acceptLineItem: lineItem, createdAt: Date(timeIntervalSince1970: created),
            expiresAt: Date(timeIntervalSince1970: expires))
        return session.expiresAt > now ? session : nil
    }

    // MARK: identities

    public func upsertIdentity(_ i: LearnerIdentity) async throws -> LearnerIdentity {
        let rows = try await run(
            """
            INSERT INTO learner_identities (id, issuer, subject, given_name, family_name, email, first_seen, last_seen)
            VALUES (\(i.id), \(i.issuer), \(i.subject), \(i.givenName), \(i.familyName), \(i.email),
                    \(i.firstSeen.timeIntervalSince1970), \(i.lastSeen.timeIntervalSince1970))
            ON CONFLICT (issuer, subject) DO UPDATE SET
              given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
              email = EXCLUDED.email, last_seen = EXCLUDED.last_seen
            RETURNING id, issuer, subject, given_name, family_name, email, first_seen, last_seen
            """)
        guard let row = rows.first else { throw StorageError(.corrupt, "upsert returned no row") }
        return try Self.identity(row)
    }

    public func identity(issuer: String, subject: String) async throws -> LearnerIdentity? {
        try await run(
            """
            SELECT id, issuer, subject, given_name, family_name, email, first_seen, last_seen FROM learner_identities
            WHERE issuer = \(issuer) AND subject = \(subject)
            """
        ).first.map(Self.identity)
    }

    private static func identity(_ row: PostgresRow) throws -> LearnerIdentity {
        let (id, issuer, subject, given, family, email, first, last) =
            try row.decode((String, String, String, String?, String?, String?, Double, Double).self)
        return LearnerIdentity(
            id: id, issuer: issuer, subject: subject, givenName: given, familyName: family, email: email,
            firstSeen: Date(timeIntervalSince1970: first), lastSeen: Date(timeIntervalSince1970: last))
    }

    // MARK: launches

    public func recordLaunch(_ l: LaunchRecord) async throws {
        try await run(
            """
            INSERT INTO launches (id, registration_id, deployment_id, learner_id, subject, message_type, resource_link_id,
              context_id, lab_id, outcome, vendor_result_code, lab_instance_id, ags_lineitem, created_at)
            VALUES (\(l.id), \(l.registrationID), \(l.deploymentID), \(l.learnerID), \(l.subject), \(l.messageType), \(l.resourceLinkID),
              \(l.contextID), \(l.labID), \(l.outcome), \(l.vendorResultCode), \(l.labInstanceID), \(l.agsLineItem),
              \(l.createdAt.timeIntervalSince1970))
            """)
    }

    public func launch(id: String) async throws -> LaunchRecord? {
        var binds = PostgresBindings()
        binds.append(id)
        return try await launches(where: "id = $1", binds, limit: 1).first
    }

    public func recentLaunches(limit: Int) async throws -> [LaunchRecord] {
        try await launches(where: "1 = 1", PostgresBindings(), limit: limit)
    }

    private func launches(where condition: String, _ binds: PostgresBindings, limit: Int) async throws -> [LaunchRecord] {
        let rows = try await run(
            PostgresQuery(
                unsafeSQL: """
                    SELECT id, registration_id, deployment_id, learner_id, subject, message_type, resource_link_id, context_id, lab_id,
                           outcome, vendor_result_code, lab_instance_id, ags_lineitem, created_at
                    FROM launches WHERE \(condition) ORDER BY created_at DESC, id DESC LIMIT \(max(0, limit))
                    """, binds: binds))
        return try rows.map { row in
            let c = row.makeRandomAccess()
            return LaunchRecord(
                id: try c["id"].decode(String.self), registrationID: try c["registration_id"].decode(String.self),
                deploymentID: try c["deployment_id"].decode(String.self), learnerID: try c["learner_id"].decode(String.self),
                subject: try c["subject"].decode(String.self), messageType: try c["message_type"].decode(String.self),
                resourceLinkID: try c["resource_link_id"].decode(String?.self), contextID: try c["context_id"].decode(String?.self),
                labID: try c["lab_id"].decode(String?.self), outcome: try c["outcome"].decode(String.self),
                vendorResultCode: try c["vendor_result_code"].decode(Int?.self), labInstanceID: try c["lab_instance_id"].decode(String?.self),
                agsLineItem: try c["ags_lineitem"].decode(String?.self),
                createdAt: Date(timeIntervalSince1970: try c["created_at"].decode(Double.self)))
        }
    }

    // MARK: SkyPrep accounts

    public func skyPrepAccount(learnerID: String) async throws -> SkyPrepAccount? {
        try await run(
            """
            SELECT learner_id, user_id, email, first_name, last_name, role, updated_at FROM skyprep_accounts WHERE learner_id = \(learnerID)
            """
        ).first.map(Self.account)
    }

    public func skyPrepAccounts(userID: Int) async throws -> [SkyPrepAccount] {
        try await run(
            """
            SELECT learner_id, user_id, email, first_name, last_name, role, updated_at FROM skyprep_accounts
            WHERE user_id = \(userID) ORDER BY learner_id
            """
        ).map(Self.account)
    }

    private static func account(_ row: PostgresRow) throws -> SkyPrepAccount {
        let (learner, user, email, first, last, role, updated) = try row.decode((String, Int, String, String, String, String, Double).self)
        return SkyPrepAccount(
            learnerID: learner, userID: user, email: email, firstName: first, lastName: last, role: role,
            updatedAt: Date(timeIntervalSince1970: updated))
    }

    public func saveSkyPrepAccount(_ a: SkyPrepAccount) async throws {
        try await run(
            """
            INSERT INTO skyprep_accounts (learner_id, user_id, email, first_name, last_name, role, updated_at)
            VALUES (\(a.learnerID), \(a.userID), \(a.email), \(a.firstName), \(a.lastName), \(a.role), \(a.updatedAt.timeIntervalSince1970))
            ON CONFLICT (learner_id) DO UPDATE SET user_id = EXCLUDED.user_id, email = EXCLUDED.email, first_name = EXCLUDED.first_name,
              last_name = EXCLUDED.last_name, role = EXCLUDED.role, updated_at = EXCLUDED.updated_at
            """)
    }

    // MARK: jobs

    public func enqueueJob(kind: String, key: String, payload: String, runAt: Date) async throws {
        let t = runAt.timeIntervalSince1970
        try await run(
            """
            INSERT INTO jobs (kind, key, payload, revision, attempts, next_run_at, held, created_at)
            VALUES (\(kind), \(key), \(payload), 1, 0, \(t), FALSE, \(t))
            ON CONFLICT (kind, key) DO UPDATE SET payload = EXCLUDED.payload, revision = jobs.revision + 1,
              next_run_at = LEAST(jobs.next_run_at, EXCLUDED.next_run_at), held = FALSE
            """)
    }

    public func claimJobs(kind: String, key: String?, now: Date, leaseUntil: Date, worker: String, limit: Int) async throws -> [QueuedJob] {
        let t = now.timeIntervalSince1970
        // SKIP LOCKED: racing claimers in any instances take different jobs and never wait for each other.
        let rows = try await run(
            """
            UPDATE jobs SET locked_by = \(worker), locked_until = \(leaseUntil.timeIntervalSince1970), attempts = attempts + 1
            WHERE (kind, key) IN (
              SELECT kind, key FROM jobs WHERE kind = \(kind) AND (\(key)::text IS NULL OR key = \(key)) AND NOT held
                AND next_run_at <= \(t) AND (locked_until IS NULL OR locked_until <= \(t))
              ORDER BY next_run_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            AND (locked_until IS NULL OR locked_until <= \(t))
            RETURNING \(unescaped: Self.jobColumns)
            """)
        return try rows.map(Self.job).sorted { $0.nextRunAt < $1.nextRunAt }
    }

    public func completeJob(_ job: QueuedJob, worker: String) async throws {
        let removed = try await run(
            """
            DELETE FROM jobs WHERE kind = \(job.kind) AND key = \(job.key) AND revision = \(job.revision) AND locked_by = \(worker) RETURNING 1
            """)
        guard removed.isEmpty else { return }
        try await run("UPDATE jobs SET locked_by = NULL, locked_until = NULL WHERE kind = \(job.kind) AND key = \(job.key) AND locked_by = \(worker)")
    }

    public func failJob(_ job: QueuedJob, worker: String, failure: JobFailure, retryAt: Date?) async throws {
        // A newer revision (enqueued meanwhile) keeps its own due time and runs again.
        let retry = retryAt?.timeIntervalSince1970
        try await run(
            """
            UPDATE jobs SET locked_by = NULL, locked_until = NULL, last_error = \(failure.detail), failure_code = \(failure.code),
              next_run_at = CASE WHEN revision = \(job.revision) AND \(retry)::double precision IS NOT NULL THEN \(retry) ELSE next_run_at END,
              held = CASE WHEN revision = \(job.revision) AND \(retry)::double precision IS NULL THEN TRUE ELSE held END
            WHERE kind = \(job.kind) AND key = \(job.key) AND locked_by = \(worker)
            """)
    }

    public func queuedJob(kind: String, key: String) async throws -> QueuedJob? {
        try await run("SELECT \(unescaped: Self.jobColumns) FROM jobs WHERE kind = \(kind) AND key = \(key)").first.map(Self.job)
    }

    public func queuedJobs(limit: Int) async throws -> [QueuedJob] {
        try await run("SELECT \(unescaped: Self.jobColumns) FROM jobs ORDER BY created_at, kind, key LIMIT \(limit)").map(Self.job)
    }

    public func releaseJob(kind: String, key: String, now: Date) async throws -> Bool {
        !(try await run(
            """
            UPDATE jobs SET held = FALSE, next_run_at = \(now.timeIntervalSince1970) WHERE kind = \(kind) AND key = \(key) RETURNING 1
            """
        ).isEmpty)
    }

    static let jobColumns = "kind, key, payload, revision, attempts, next_run_at, held, last_error, failure_code, created_at"

    private static func job(_ row: PostgresRow) throws -> QueuedJob {
        let (kind, key, payload, revision, attempts, next, held, error, code, created) =
            try row.decode((String, String, String, Int, Int, Double, Bool, String?, String?, Double).self)
        return QueuedJob(
            kind: kind, key: key, payload: payload, revision: revision, attempts: attempts,
            nextRunAt: Date(timeIntervalSince1970: next), lastError: error, failureCode: code, held: held,
            createdAt: Date(timeIntervalSince1970: created))
    }

    // MARK: plumbing

    /// Runs one statement on a pooled connection; every row, driver errors mapped to ``StorageError``.
    @discardableResult
    func run(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await client.query(query, logger: logger).collect()
        } catch {
            throw Self.storageError(error)
        }
    }

    /// Runs `body` in a transaction on one connection (rolled back when it throws).
    func transaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw Self.storageError(error.closureError ?? error.commitError ?? error.beginError ?? error)
        } catch {
            throw Self.storageError(error)
        }
    }

    /// Driver errors as ``StorageError``; any other error (e.g. thrown by a transaction's body) as it is.
    static func storageError(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if error.serverInfo?[.sqlState] == "23505" {
            return StorageError(.duplicate, "a row with this key exists", underlying: PostgresFailure(error))
        }
        if error.serverInfo == nil { return StorageError(.unavailable, "PostgreSQL cannot be reached", underlying: PostgresFailure(error)) }
        return StorageError(.unavailable, "PostgreSQL refused the statement", underlying: PostgresFailure(error))
    }
}

/// A PostgreSQL error for logs: the server's code and message, without the query or its values.
struct PostgresFailure: Error, CustomStringConvertible {
    let description: String
    init(_ error: PSQLError) {
        let state = error.serverInfo?[.sqlState] ?? "-"
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        description = "postgres \(state): \(message)"
    }
}
