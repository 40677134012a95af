import Crypto
import CryptoExtras
import Foundation

/// One of the tool's own RSA signing keys and where it is in its life (SPEC "Key rotation").
///
/// - Important: The private key never leaves the gateway: only ``publicJWK`` is published.
public struct ToolKey: Sendable {
    /// `next` is published before it signs anything; `active` signs everything; `retiring` is still
    /// published until ``retiresAt`` so that platform caches and in-flight tokens stay valid.
    public enum State: String, Sendable, Codable, CaseIterable {
        case next, active, retiring
    }

    public let kid: String
    public var state: State
    public let createdAt: Date
    public var activatedAt: Date?
    public var retiresAt: Date?
    public let privateKey: _RSA.Signing.PrivateKey

    public init(
        kid: String, state: State, createdAt: Date, activatedAt: Date? = nil, retiresAt: Date? = nil,
        privateKey: _RSA.Signing.PrivateKey
    ) {
        self.kid = kid
        self.state = state
        self.createdAt = createdAt
        self.activatedAt = activatedAt
        self.retiresAt = retiresAt
        self.privateKey = privateKey
    }

    /// A key read back from storage: its PEM (PKCS#1 or PKCS#8) and metadata. The kid must match the key.
    public init(kid: String, state: State, createdAt: Date, activatedAt: Date?, retiresAt: Date?, privateKeyPEM: String) throws {
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        guard try Self.thumbprint(key.publicKey) == kid else { throw KeyRingError.unknownKey(kid) }
        self.init(kid: kid, state: state, createdAt: createdAt, activatedAt: activatedAt, retiresAt: retiresAt, privateKey: key)
    }

    /// - Important: Secret. Only for the key store.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// A new key of `bits` (≥ 2048) in state `next`; its kid is the RFC 7638 thumbprint.
    public static func generate(bits: Int = 2048, now: Date) throws -> ToolKey {
        guard bits >= 2048, bits % 1024 == 0, bits <= 8192 else { throw KeyRingError.invalidKeySize(bits) }
        let key = try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits))
        return ToolKey(kid: try thumbprint(key.publicKey), state: .next, createdAt: now, privateKey: key)
    }

    /// The public members `{kty, kid, use, alg, n, e}`.
    public var publicJWK: [String: String] {
        get throws {
            let primitives = try privateKey.publicKey.getKeyPrimitives()
            return [
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent),
            ]
        }
    }

    /// The public key as a PEM `PUBLIC KEY` document (what some LMS forms ask for).
    public var publicKeyPEM: String { privateKey.publicKey.pemRepresentation }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key.
    public static func thumbprint(_ key: _RSA.Signing.PublicKey) throws -> String {
        let primitives = try key.getKeyPrimitives()
        let canonical = #"{"e":"\#(Base64URL.encode(primitives.publicExponent))","kty":"RSA","n":"\#(Base64URL.encode(primitives.modulus))"}"#
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }
}

/// Why a key ring operation was refused; the message tells the operator what to do.
public enum KeyRingError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownKey(String)
    case cannotRetireActive(String)
    case cannotRetireNext(String)
    case nextTooYoung(kid: String, publishedSeconds: Int, requiredSeconds: Int)
    case noNextKey
    case noActiveKey
    case invalidKeySize(Int)

    /// `seconds` in words: `45 s`, `12 min`, `2 h 5 min`.
    static func duration(_ seconds: Int) -> String {
        let seconds = max(0, seconds)
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return "\((seconds + 59) / 60) min" }
        let minutes = (seconds % 3600 + 59) / 60
        return "\(seconds / 3600) h" + (minutes > 0 ? " \(minutes) min" : "")
    }

    public var description: String {
        switch self {
        case .unknownKey(let kid): "no signing key with kid \(kid) (see keys list)"
        case .cannotRetireActive(let kid):
            "\(kid) is the active key and signs everything; run keys rotate first, then retire it"
        case .cannotRetireNext(let kid):
            "\(kid) is the next key, not yet used; it becomes active at the next rotation and cannot be retired"
        case .nextTooYoung(let kid, let published, let required):
            "the next key \(kid) was published \(Self.duration(published)) ago; platforms may not have fetched it yet: "
                + "rotate again in \(Self.duration(required - published)) (or use --force in an emergency)"
        case .noNextKey: "the key ring has no next key to promote"
        case .noActiveKey: "the stored key ring has no active key (keyring.json was edited by hand?)"
        case .invalidKeySize(let bits): "RSA key size \(bits) is not supported (2048, 3072, 4096, … up to 8192)"
        }
    }
}

/// The tool's signing keys: at most one `next`, exactly one `active` once set up, any number `retiring`.
///
/// A value type with pure operations; the store decides where it lives, the key service serves it.
public struct ToolKeyRing: Sendable {
    public private(set) var keys: [ToolKey]

    public init(keys: [ToolKey]) { self.keys = keys }

    public var active: ToolKey? { keys.first { $0.state == .active } }
    public var next: ToolKey? { keys.first { $0.state == .next } }
    public var retiring: [ToolKey] { keys.filter { $0.state == .retiring } }
    public func key(kid: String) -> ToolKey? { keys.first { $0.kid == kid } }

    /// Makes the ring usable: an active key and a next key exist, expired retiring keys are gone.
    /// `generate` is called for each key that must be created.
    public func readied(now: Date, generate: () throws -> ToolKey) throws -> ToolKeyRing {
        var ring = pruned(now: now)
        if ring.active == nil {
            if let next = ring.next {
                ring.setState(of: next.kid, to: .active, activatedAt: now)
            } else {
                var key = try generate()
                key.state = .active
                key.activatedAt = now
                ring.keys.append(key)
            }
        }
        if ring.next == nil { ring.keys.append(try generate()) }
        return ring
    }

    /// Rotation: `next` becomes `active`, the old `active` becomes `retiring` until `now + grace`,
    /// and a freshly generated key becomes `next`.
    ///
    /// - Parameter minimumNextAge: `next` must have been published this long (longer than the JWKS
    ///   `max-age`), so that platforms know it before it signs; `force` skips the check (emergencies).
    public func rotated(
        now: Date, grace: TimeInterval, minimumNextAge: TimeInterval, force: Bool,
        generate: () throws -> ToolKey
    ) throws -> ToolKeyRing {
        guard let next else { throw KeyRingError.noNextKey }
        let age = now.timeIntervalSince(next.createdAt)
        if !force, age < minimumNextAge {
            throw KeyRingError.nextTooYoung(kid: next.kid, publishedSeconds: Int(age), requiredSeconds: Int(minimumNextAge))
        }
        var ring = self
        if let active {
            ring.setState(of: active.kid, to: .retiring, retiresAt: now.addingTimeInterval(grace))
        }
        ring.setState(of: next.kid, to: .active, activatedAt: now)
        ring.keys.append(try generate())
        return ring.pruned(now: now)
    }

    /// Emergency replacement, for keys that may have leaked (the folder or database they are kept in): every key
    /// goes — active, next and retiring alike, since a published key verifies whatever it signs — and a freshly
    /// generated key becomes active at once, with a fresh next key.
    ///
    /// Platforms that cached the old key set see an unknown kid on the next signature and fetch the set again.
    public func replacedAll(now: Date, generate: () throws -> ToolKey) throws -> ToolKeyRing {
        var active = try generate()
        active.state = .active
        active.activatedAt = now
        var next = try generate()
        next.state = .next
        return ToolKeyRing(keys: [active, next])
    }

    /// Removes a retiring key at once (compromise). The active and next keys cannot be retired.
    public func retired(kid: String) throws -> ToolKeyRing {
        guard let key = key(kid: kid) else { throw KeyRingError.unknownKey(kid) }
        switch key.state {
        case .active: throw KeyRingError.cannotRetireActive(kid)
        case .next: throw KeyRingError.cannotRetireNext(kid)
        case .retiring: return ToolKeyRing(keys: keys.filter { $0.kid != kid })
        }
    }

    /// The ring without retiring keys whose grace period ended.
    public func pruned(now: Date) -> ToolKeyRing {
        ToolKeyRing(keys: keys.filter { $0.state != .retiring || ($0.retiresAt ?? now) > now })
    }

    /// The keys published in the JWKS: next, active and retiring (not yet pruned at `now`).
    public func published(now: Date) -> [ToolKey] {
        let order: [ToolKey.State: Int] = [.active: 0, .next: 1, .retiring: 2]
        return pruned(now: now).keys.sorted { (order[$0.state]!, $0.createdAt) < (order[$1.state]!, $1.createdAt) }
    }

    /// The JWKS document of ``published(now:)``: public members only.
    public func jwksDocument(now: Date) throws -> Data {
        let document = ["keys": try published(now: now).map { try $0.publicJWK }]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
    }

    private mutating func setState(of kid: String, to state: ToolKey.State, activatedAt: Date? = nil, retiresAt: Date? = nil) {
        guard let index = keys.firstIndex(where: { $0.kid == kid }) else { return }
        keys[index].state = state
        if let activatedAt { keys[index].activatedAt = activatedAt }
        keys[index].retiresAt = retiresAt
    }
}

/// Signs what the tool sends to platforms (deep-linking responses, service client assertions): RS256
/// with the active key, always with its `kid` in the header.
public struct ToolTokenSigner: Sendable {
    public let key: ToolKey

    public init(activeKey: ToolKey) { self.key = activeKey }

    /// A compact JWS of `claims` (a JSON object).
    public func sign(claims: [String: any Sendable]) throws -> String {
        let header: [String: String] = ["alg": "RS256", "typ": "JWT", "kid": key.kid]
        let headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        let payloadData = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let input = Base64URL.encode(headerData) + "." + Base64URL.encode(payloadData)
        let signature = try key.privateKey.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }
}
