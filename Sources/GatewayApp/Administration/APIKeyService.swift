import Crypto
import Foundation
import GatewayStorage
import LTICore
import Logging

/// Admin API keys: created with a secret shown once, stored as the secret's digest, checked on every request
/// against the database (so a deleted key fails on every instance from its next request on).
public struct APIKeyService: Sendable {
    /// Whether a key is for production or for trying things out; it shows in the secret's prefix.
    public enum Environment: String, Sendable, CaseIterable {
        case live
        case test
    }

    /// A key just created, with its secret: the only time the secret exists outside the caller's hands.
    public struct Created: Sendable {
        public var key: StoredAPIKey
        public var secret: String
    }

    let store: any APIKeyStore
    let now: @Sendable () -> Date
    let logger: Logger
    /// How stale the stored last-used time may get: it is written at most this often per key, never on every request.
    var lastUsedGranularity: TimeInterval = 60

    /// Random bytes in a secret (256 bits).
    static let secretBytes = 32
    /// Characters of the secret kept for display: `sk_live_` and four random ones, too few to guess the rest by.
    static let displayedPrefixLength = 12

    public init(store: any APIKeyStore, now: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store
        self.now = now
        self.logger = logger
    }

    /// Creates a key. A key may only be created with scopes its creator holds.
    func create(
        name: String, scopes: [String], expiresAt: Date?, environment: Environment, by actor: AdministrationActor
    ) async throws
        -> Created
    {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(trimmed.count), !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw AdministrationError.invalid("name", "name must be 1…100 printable characters")
        }
        guard !scopes.isEmpty else { throw AdministrationError.invalid("scopes", "scopes must name at least one scope") }
        var granted: [APIScope] = []
        for (index, name) in scopes.enumerated() {
            guard let scope = APIScope(rawValue: name) else {
                throw AdministrationError.invalid(
                    "scopes", "scopes[\(index)] is not a scope; the scopes are \(APIScope.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard actor.holds(scope) else {
                throw AdministrationError(.forbidden, "An API key cannot grant a scope it does not hold (\(scope.rawValue)).")
            }
            if !granted.contains(scope) { granted.append(scope) }
        }
        let now = now()
        if let expiresAt, expiresAt <= now { throw AdministrationError.invalid("expires_at", "expires_at must be in the future") }
        if let limit = actor.expiresAt, (expiresAt ?? .distantFuture) > limit {
            throw AdministrationError.invalid(
                "expires_at", "expires_at must be no later than the creating key's own expiry (\(ISO8601DateFormatter().string(from: limit)))")
        }
        let secret = "sk_\(environment.rawValue)_" + SecureRandom.token(byteCount: Self.secretBytes)
        let key = StoredAPIKey(
            id: "key_" + SecureRandom.token(byteCount: 12), name: trimmed, scopes: granted.sorted().map(\.rawValue),
            prefix: String(secret.prefix(Self.displayedPrefixLength)), secretDigest: Self.digest(secret), createdBy: actor.name,
            createdAt: now, expiresAt: expiresAt)
        try await store.addAPIKey(key)
        return Created(key: key, secret: secret)
    }

    /// The key a request's bearer secret names, if it exists and has not expired.
    ///
    /// - Important: The secret is looked up by its SHA-256 digest (the database never holds the secret) and the
    ///   digests are compared in constant time; what is not shaped like a key costs no database read.
    public func authenticate(_ secret: String) async throws -> StoredAPIKey? {
        guard secret.count <= 128, Environment.allCases.contains(where: { secret.hasPrefix("sk_\($0.rawValue)_") }) else { return nil }
        let digest = Self.digest(secret)
        guard let key = try await store.apiKey(secretDigest: digest), constantTimeEquals(key.secretDigest, digest) else { return nil }
        let now = now()
        if let expiresAt = key.expiresAt, expiresAt <= now { return nil }
        if key.lastUsedAt.map({ now.timeIntervalSince($0) >= lastUsedGranularity }) ?? true {
            do {
                try await store.markAPIKeyUsed(id: key.id, at: now)
            } catch {
                // The request is authenticated either way; a missed time is written by a later request.
                logger.warning("could not record when an API key was used", metadata: ["gw.api_key": "\(key.id)", "error": "\(error)"])
            }
        }
        return key
    }

    static func digest(_ secret: String) -> String { Hex.encode(SHA256.hash(data: Data(secret.utf8))) }
}
