import Foundation
import GatewayStorage
import LTICore
import Logging
import PostgresNIO

/// The shared ``GatewayStore``: one PostgreSQL database for any number of gateway instances.
///
/// One-time consumption of login states (and the nonces bound to them) and picker sessions are single statements
/// (`DELETE … RETURNING`), so of racing consumers in any instances exactly one wins. Jobs are
/// claimed with `FOR UPDATE SKIP LOCKED`, so each goes to one worker. Migrations run under an advisory
/// lock, so instances starting together apply each once.
public final class PostgresGatewayStore: SQLGatewayStore {
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

    public func migrate() async throws { try await migrate(through: PostgresSchema.migrations.count) }

    /// Applies the migrations up to `version` (tests of a migration start from the schema before it).
    public func migrate(through version: Int) async throws {
        try await transaction { connection in
            // Instances starting together wait here for each other; the lock ends with the transaction.
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
                logger: self.logger)
            let applied = try await connection.query("SELECT version FROM schema_migrations", logger: self.logger).collect()
            let done = Set(try applied.map { try $0.decode(Int.self) })
            for (index, statements) in PostgresSchema.migrations.prefix(version).enumerated() where !done.contains(index + 1) {
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
            try await connection.query(Self.query(GatewaySQL.insertRegistration, GatewaySQL.values(r)), logger: self.logger)
            for (position, deployment) in r.deploymentIDs.enumerated() {
                try await connection.query(
                    Self.query(GatewaySQL.insertDeployment, [.text(r.id), .text(deployment), .integer(position)]), logger: self.logger)
            }
        }
    }

    public func completeDynamicRegistration(
        _ registration: PlatformRegistration, inviteDigest: String, now: Date
    ) async throws
        -> DynamicRegistrationResult
    {
        try await transaction { connection in
            try await GatewaySQL.completeDynamicRegistration(registration, inviteDigest: inviteDigest, now: now) { statement, values in
                try await connection.query(Self.query(statement, values), logger: self.logger).collect().map(PostgresSQLRow.init)
            }
        }
    }

    public func updateRegistration(_ r: PlatformRegistration) async throws -> Bool {
        try await transaction { connection in
            let updated = try await connection.query(
                Self.query(GatewaySQL.updateRegistrationEndpoints, GatewaySQL.endpointValues(r)), logger: self.logger
            ).collect()
            guard !updated.isEmpty else { return false }
            try await connection.query(Self.query(GatewaySQL.deleteDeployments, [.text(r.id)]), logger: self.logger)
            for (position, deployment) in r.deploymentIDs.enumerated() {
                try await connection.query(
                    Self.query(GatewaySQL.insertDeployment, [.text(r.id), .text(deployment), .integer(position)]), logger: self.logger)
            }
            return true
        }
    }

    // MARK: jobs

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
            RETURNING \(unescaped: GatewaySQL.jobColumns)
            """)
        return try rows.map { try GatewaySQL.job(PostgresSQLRow($0)) }.sorted { $0.nextRunAt < $1.nextRunAt }
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

    public func read(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [PostgresSQLRow] {
        try await run(Self.query(statement, values)).map(PostgresSQLRow.init)
    }

    /// One statement is atomic in PostgreSQL: reads and writes take the same path.
    @discardableResult
    public func write(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [PostgresSQLRow] {
        try await read(statement, values)
    }

    /// One statement in PostgreSQL, so atomic and one round trip: every statement but the last in a `WITH` clause
    /// (data-modifying common table expressions all run, on one snapshot), the last as the statement itself.
    public func write(together statements: [(SQLStatement, [SQLValue])]) async throws {
        guard let last = statements.last else { return }
        precondition(!statements.contains { $0.0.sqlite.hasPrefix("WITH") }, "a statement written together begins with WITH")
        let clauses = statements.dropLast().enumerated().map { "together_\($0.offset) AS (\($0.element.0.sqlite))" }
        let sql = (clauses.isEmpty ? "" : "WITH " + clauses.joined(separator: ", ") + " ") + last.0.sqlite
        try await run(Self.query(SQLStatement(sql), statements.flatMap(\.1)))
    }

    /// `statement` with `values` bound to `$1`, `$2`, ….
    static func query(_ statement: SQLStatement, _ values: [SQLValue]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .text(let text): bindings.append(text)
            case .integer(let integer): bindings.append(integer)
            case .real(let real): bindings.append(real)
            case .bool(let bool): bindings.append(bool)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: statement.postgres, binds: bindings)
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

/// A PostgreSQL row read by column name.
public struct PostgresSQLRow: SQLRow {
    let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) { cells = row.makeRandomAccess() }

    public func text(_ column: String) throws -> String? { try cells[column].decode(String?.self) }
    public func integer(_ column: String) throws -> Int? { try cells[column].decode(Int?.self) }
    public func real(_ column: String) throws -> Double? { try cells[column].decode(Double?.self) }
    public func bool(_ column: String) throws -> Bool? { try cells[column].decode(Bool?.self) }
}
