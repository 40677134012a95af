import CSQLiteShim
import GatewayStorage
import SQLiteNIO
import Synchronization

/// One SQLite connection, its statements prepared once and kept for reuse, run on the calling thread.
///
/// It uses the SQLite library that sqlite-nio builds into the binary (``CSQLiteShim``), without sqlite-nio's
/// connection: that one prepares every statement anew and runs each on a thread pool, answering through an event
/// loop — three thread hand-overs per statement, which cost more than most of the gateway's statements themselves.
/// Callers reach it only through ``SQLiteConnectionLock``, one thread at a time.
final class SQLiteDatabase {
    private let handle: OpaquePointer
    /// Prepared statements by SQL text; bounded (emptied when full), since the few statements built at run time (lists
    /// with filters) come in many shapes.
    private var statements: [String: OpaquePointer] = [:]
    static let maximumCachedStatements = 128
    /// Set by ``close()``: the handle is gone, and every later statement is refused.
    private var isClosed = false

    /// Opens (creating) the database file at `path`, with the gateway's settings (WAL, `synchronous = NORMAL`).
    init(path: String, busyTimeoutMilliseconds: Int, pragmas: [String]) throws {
        var db: OpaquePointer?
        let flags = Int32(GW_SQLITE_OPEN_READWRITE | GW_SQLITE_OPEN_CREATE | GW_SQLITE_OPEN_NOMUTEX)
        let status = gw_sqlite3_open_v2(path, &db, flags)
        guard status == Int32(GW_SQLITE_OK), let db else {
            if let db { gw_sqlite3_close_v2(db) }
            throw StorageError(.unavailable, "cannot open the SQLite database at \(path) (SQLite code \(status))")
        }
        handle = db
        gw_sqlite3_busy_timeout(db, Int32(busyTimeoutMilliseconds))
        do {
            for pragma in pragmas { _ = try run(pragma, [], cache: false) }
        } catch {
            gw_sqlite3_close_v2(db)
            throw error
        }
    }

    /// Finalizes every statement and closes the connection.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        for statement in statements.values { gw_sqlite3_finalize(statement) }
        statements = [:]
        gw_sqlite3_close_v2(handle)
    }

    /// Runs `sql` with `binds` and returns its rows (a constraint violation is ``StorageError`` `.duplicate`, any other
    /// failure `.unavailable`). `cache`: keep the prepared statement for the next run of the same text.
    func run(_ sql: String, _ binds: [SQLiteData], cache: Bool = true) throws -> [SQLiteStoreRow] {
        guard !isClosed else { throw StorageError(.unavailable, "the SQLite store is closed") }
        let statement = try prepared(sql, cache: cache)
        defer {
            gw_sqlite3_reset(statement)
            gw_sqlite3_clear_bindings(statement)
            if !cache || statements[sql] != statement { gw_sqlite3_finalize(statement) }
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let integer): status = gw_sqlite3_bind_int64(statement, index, Int64(integer))
            case .float(let double): status = gw_sqlite3_bind_double(statement, index, double)
            case .text(let text):
                var text = text
                status = text.withUTF8 { bytes in
                    bytes.withMemoryRebound(to: CChar.self) { gw_sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count)) }
                }
            case .null: status = gw_sqlite3_bind_null(statement, index)
            case .blob: throw StorageError(.unavailable, "the gateway stores no blobs")
            }
            guard status == Int32(GW_SQLITE_OK) else { throw failure(status) }
        }
        var rows: [SQLiteStoreRow] = []
        var columns: SQLiteStoreRow.Columns?
        while true {
            let status = gw_sqlite3_step(statement)
            if status == Int32(GW_SQLITE_DONE) { return rows }
            guard status == Int32(GW_SQLITE_ROW) else { throw failure(status) }
            let names = columns ?? SQLiteStoreRow.Columns(statement)
            columns = names
            rows.append(SQLiteStoreRow(columns: names, statement: statement))
        }
    }

    private func prepared(_ sql: String, cache: Bool) throws -> OpaquePointer {
        if cache, let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let flags = cache ? UInt32(GW_SQLITE_PREPARE_PERSISTENT) : 0
        var text = sql
        let status = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { gw_sqlite3_prepare_v3(handle, $0.baseAddress, Int32($0.count), flags, &statement) }
        }
        guard status == Int32(GW_SQLITE_OK), let statement else { throw failure(status) }
        if cache {
            // Full (statements built at run time come in many shapes): start over, and the frequent ones come back at once.
            if statements.count >= Self.maximumCachedStatements {
                for old in statements.values { gw_sqlite3_finalize(old) }
                statements = [:]
            }
            statements[sql] = statement
        }
        return statement
    }

    private func failure(_ status: Int32) -> StorageError {
        let message = String(cString: gw_sqlite3_errmsg(handle))
        // Only a primary-key, unique or rowid conflict is a duplicate (SQLITE_CONSTRAINT_PRIMARYKEY, _UNIQUE, _ROWID);
        // a foreign key, NOT NULL or CHECK failure is not.
        if [1555, 2067, 2579].contains(gw_sqlite3_extended_errcode(handle)) {
            return StorageError(.duplicate, "a row with this key exists", underlying: SQLiteStatementError(code: status, message: message))
        }
        return StorageError(.unavailable, "SQLite refused the statement", underlying: SQLiteStatementError(code: status, message: message))
    }
}

/// SQLite's code and message for a refused statement (for the log).
struct SQLiteStatementError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { "SQLite error \(code): \(message)" }
}

/// A row read from SQLite: its values, copied out of the statement, and its statement's column names.
public struct SQLiteStoreRow: SQLRow, Sendable {
    /// The column names of one statement's rows, shared by its rows.
    final class Columns: Sendable {
        let names: [String]
        init(_ statement: OpaquePointer) {
            names = (0..<gw_sqlite3_column_count(statement)).map { String(cString: gw_sqlite3_column_name(statement, $0)) }
        }
    }

    let columns: Columns
    let values: [SQLiteData]

    init(columns: Columns, statement: OpaquePointer) {
        self.columns = columns
        values = (0..<Int32(truncatingIfNeeded: columns.names.count)).map { column in
            switch gw_sqlite3_column_type(statement, column) {
            case Int32(GW_SQLITE_INTEGER): return .integer(Int(gw_sqlite3_column_int64(statement, column)))
            case Int32(GW_SQLITE_FLOAT): return .float(gw_sqlite3_column_double(statement, column))
            case Int32(GW_SQLITE_TEXT):
                guard let text = gw_sqlite3_column_text(statement, column) else { return .null }
                let count = Int(gw_sqlite3_column_bytes(statement, column))
                return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
            default: return .null
            }
        }
    }

    /// The value of `column`, nil when the statement has no such column.
    public func column(_ column: String) -> SQLiteData? {
        columns.names.firstIndex(of: column).map { values[$0] }
    }

    public func text(_ column: String) throws -> String? { self.column(column)?.string }
    public func integer(_ column: String) throws -> Int? { self.column(column)?.integer }
    public func real(_ column: String) throws -> Double? { self.column(column)?.double }
    public func bool(_ column: String) throws -> Bool? { self.column(column)?.integer.map { $0 != 0 } }
}

/// A ``SQLiteDatabase`` that one thread at a time may use.
final class SQLiteConnectionLock: Sendable {
    /// Holds the connection; `@unchecked Sendable` is safe because the connection is only ever touched inside the
    /// mutex (``withConnection(_:)`` and ``tryWithConnection(_:)``), so no two threads use it at once.
    private struct Box: @unchecked Sendable { let database: SQLiteDatabase }
    private let box: Mutex<Box>

    init(_ database: SQLiteDatabase) { box = Mutex(Box(database: database)) }

    /// Runs `body` with the connection, waiting for it when another thread has it.
    func withConnection<T>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try box.withLock { try body($0.database) }
    }

    /// Runs `body` with the connection when no other thread has it; nil otherwise.
    func tryWithConnection<T>(_ body: (SQLiteDatabase) throws -> T) throws -> T? {
        try box.withLockIfAvailable { try body($0.database) }
    }
}
