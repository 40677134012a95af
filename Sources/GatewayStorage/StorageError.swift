import Foundation

/// A storage failure with a stable code, safe as a log field and metric label.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A primary or unique key already exists.
        case duplicate
        /// The database cannot be reached or refused the operation.
        case unavailable
        /// Stored data could not be read back.
        case corrupt
        case invalidLocation = "invalid_location"
        /// Secret material is stored with permissions that let others read it.
        case insecure
    }

    public var code: Code
    public var message: String
    /// The driver's error, for logs only; never rendered.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(code.rawValue): \(message) (\(underlying))" }
        return "\(code.rawValue): \(message)"
    }
}

/// JSON columns: sorted keys on the way in, a ``StorageError`` `.corrupt` when unreadable on the way out.
public enum StoredJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// - Parameter what: names the value in the error, e.g. "launch options of plt_1".
    public static func decode<T: Decodable>(_ type: T.Type, from text: String, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw StorageError(.corrupt, "\(what) are unreadable", underlying: error)
        }
    }
}
