/// A storage failure with a stable code, safe as a log field and metric label.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// A unique key already exists (nonce replay protection depends on it).
        case duplicate
        case notFound = "not_found"
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
