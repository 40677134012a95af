import Foundation

/// Why an administrative change was refused: the same reasons for the command line (a one-line message) and the
/// admin API (a status, a type and the offending parameter).
public struct AdministrationError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A value is missing or wrong; `param` names it as the API spells it (`issuer`, `scopes`, …).
        case invalid(param: String)
        /// Nothing has this id.
        case notFound
        /// The change contradicts the current state (a second platform with the same issuer and client id, a key
        /// rotation that would come too early).
        case conflict
        /// The caller may not make this change (an API key granting a scope it does not hold).
        case forbidden
    }

    public var kind: Kind
    /// Plain words, safe to show: never a secret.
    public var message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func invalid(_ param: String, _ message: String) -> AdministrationError { AdministrationError(.invalid(param: param), message) }
    static func notFound(_ message: String) -> AdministrationError { AdministrationError(.notFound, message) }
}

/// Who makes an administrative change: an operator at the command line, or an admin API key.
public enum AdministrationActor: Sendable, Equatable {
    case commandLine
    case apiKey(id: String, scopes: Set<APIScope>, expiresAt: Date?)
    /// A caller of a public route (the API's description): holds nothing.
    case anonymous

    /// As the audit trail names it: `cli`, or the key's id.
    public var name: String {
        switch self {
        case .commandLine: "cli"
        case .apiKey(let id, _, _): id
        case .anonymous: "anonymous"
        }
    }

    /// Whether the actor holds `scope` (the command line holds every scope: it has the database itself).
    func holds(_ scope: APIScope) -> Bool {
        switch self {
        case .commandLine: true
        case .apiKey(_, let scopes, _): scopes.contains(scope)
        case .anonymous: false
        }
    }

    /// When whatever the actor creates must expire at the latest (an expiring key cannot mint a lasting one).
    var expiresAt: Date? {
        if case .apiKey(_, _, let expiresAt) = self { return expiresAt }
        return nil
    }
}

/// What an admin API key may do. A key holds a list of these; each route needs one.
public enum APIScope: String, CaseIterable, Sendable, Comparable {
    case platformsRead = "platforms.read"
    case platformsWrite = "platforms.write"
    case signingKeysRead = "signing_keys.read"
    case signingKeysWrite = "signing_keys.write"
    case apiKeysRead = "api_keys.read"
    case apiKeysWrite = "api_keys.write"
    case launchesRead = "launches.read"
    case outboxRead = "outbox.read"
    case outboxWrite = "outbox.write"
    case auditRead = "audit.read"

    public static func < (a: APIScope, b: APIScope) -> Bool { a.rawValue < b.rawValue }
}
