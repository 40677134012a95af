import Foundation

/// A value bound to a statement's `?`, in the types both backends store (times as seconds since 1970).
public enum SQLValue: Sendable, Equatable {
    case text(String)
    case integer(Int)
    case real(Double)
    /// SQLite stores it as 0 or 1, PostgreSQL as `BOOLEAN`.
    case bool(Bool)
    case null

    /// Text, or NULL.
    public static func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    /// A point in time, as seconds since 1970.
    public static func time(_ date: Date) -> SQLValue { .real(date.timeIntervalSince1970) }
    /// A point in time, or NULL.
    public static func time(_ date: Date?) -> SQLValue { date.map(time) ?? .null }
}

/// A result row, read by column name; each backend adapts its driver's row.
public protocol SQLRow {
    /// The column's text, nil when NULL.
    func text(_ column: String) throws -> String?
    /// The column's integer, nil when NULL.
    func integer(_ column: String) throws -> Int?
    /// The column's number, nil when NULL.
    func real(_ column: String) throws -> Double?
    /// The column's truth (SQLite: 0 or 1), nil when NULL.
    func bool(_ column: String) throws -> Bool?
}

extension SQLRow {
    /// The column's text; a missing value is a ``StorageError`` `.corrupt`.
    func requiredText(_ column: String) throws -> String {
        guard let value = try text(column) else { throw StorageError(.corrupt, "column \(column) is missing") }
        return value
    }

    /// The column's integer; a missing value is a ``StorageError`` `.corrupt`.
    func requiredInteger(_ column: String) throws -> Int {
        guard let value = try integer(column) else { throw StorageError(.corrupt, "column \(column) is missing") }
        return value
    }

    /// The column's time (seconds since 1970); a missing value is a ``StorageError`` `.corrupt`.
    func date(_ column: String) throws -> Date {
        guard let value = try real(column) else { throw StorageError(.corrupt, "column \(column) is missing") }
        return Date(timeIntervalSince1970: value)
    }
}

/// One SQL statement, written once with `?` placeholders, in the form each backend sends.
public struct SQLStatement: Sendable {
    /// As SQLite takes it (`?`).
    public let sqlite: String
    /// As PostgreSQL takes it (`$1`, `$2`, … in order).
    public let postgres: String

    public init(_ sql: String) {
        sqlite = sql
        var numbered = ""
        var index = 0
        var inQuote = false
        for character in sql {
            if character == "'" { inQuote.toggle() }
            if character == "?" && !inQuote {
                index += 1
                numbered += "$\(index)"
            } else {
                numbered.append(character)
            }
        }
        postgres = numbered
    }
}
