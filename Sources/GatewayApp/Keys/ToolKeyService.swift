import Foundation
import GatewayStorage
import LTICore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// How the tool's signing keys are managed.
public struct KeyPolicy: Sendable {
    /// RSA key size of new keys.
    public var keyBits: Int
    /// How long a key stays published after it stopped signing.
    public var retiringGrace: TimeInterval
    /// `Cache-Control: max-age` of the JWKS.
    public var jwksMaxAge: Int
    /// How long `next` must be published before `rotate` may promote it (longer than ``jwksMaxAge``).
    public var minimumNextAge: TimeInterval

    public init(
        keyBits: Int = 2048, retiringGrace: TimeInterval = 7 * 86_400, jwksMaxAge: Int = 3600,
        minimumNextAge: TimeInterval = 7200
    ) {
        self.keyBits = keyBits
        self.retiringGrace = retiringGrace
        self.jwksMaxAge = jwksMaxAge
        self.minimumNextAge = minimumNextAge
    }
}

/// The tool's key ring as the running server uses it: the JWKS bytes and the signer, kept in memory and
/// replaced together, atomically, when the stored ring changes (a rotation by the CLI or another instance).
///
/// - Important: The JWKS and the signer always come from one snapshot, and `next` is published before it
///   becomes active, so a served JWKS never lacks the kid of a key that signs.
public final class ToolKeyService: Sendable {
    struct Snapshot: Sendable {
        var ring: ToolKeyRing
        var revision: Int
        var jwks: ByteBuffer
        var signer: ToolTokenSigner
        /// The earliest time a retiring key leaves the JWKS.
        var nextExpiry: Date?
    }

    let store: any SigningKeyStore
    let policy: KeyPolicy
    private let snapshot: Mutex<Snapshot>

    private init(store: any SigningKeyStore, policy: KeyPolicy, snapshot: Snapshot) {
        self.store = store
        self.policy = policy
        self.snapshot = Mutex(snapshot)
    }

    /// Loads the stored ring, creating the active and next keys when missing.
    public static func start(store: any SigningKeyStore, policy: KeyPolicy, now: Date) async throws -> ToolKeyService {
        let ring = try await KeyAdministration.ready(store: store, policy: policy, now: now)
        let revision = try await store.keyRingRevision()
        return ToolKeyService(store: store, policy: policy, snapshot: try makeSnapshot(ring, revision: revision, now: now))
    }

    /// The JWKS document, from memory.
    public var jwksDocument: ByteBuffer { snapshot.withLock { $0.jwks } }
    /// The signer of the active key.
    public var signer: ToolTokenSigner { snapshot.withLock { $0.signer } }
    /// The ring in use.
    public var ring: ToolKeyRing { snapshot.withLock { $0.ring } }

    /// Re-reads the ring when its revision changed or a retiring key's grace ended; returns whether it changed.
    @discardableResult
    public func reloadIfChanged(now: Date) async throws -> Bool {
        let (known, expiry) = snapshot.withLock { ($0.revision, $0.nextExpiry) }
        let revision = try await store.keyRingRevision()
        guard revision != known || (expiry.map { $0 <= now } ?? false) else { return false }
        let ring = try await store.loadKeyRing()
        let fresh = try Self.makeSnapshot(ring, revision: revision, now: now)
        snapshot.withLock { $0 = fresh }
        return true
    }

    private static func makeSnapshot(_ ring: ToolKeyRing, revision: Int, now: Date) throws -> Snapshot {
        guard let active = ring.active else { throw KeyRingError.noActiveKey }
        return Snapshot(
            ring: ring, revision: revision, jwks: ByteBuffer(bytes: try ring.jwksDocument(now: now)),
            signer: ToolTokenSigner(activeKey: active),
            nextExpiry: ring.retiring.compactMap(\.retiresAt).filter { $0 > now }.min())
    }
}

/// Polls the key store so that a rotation elsewhere reaches this server within the polling interval.
struct KeyRingReloader: Sendable {
    let keys: ToolKeyService
    let now: @Sendable () -> Date
    let logger: Logger

    func reloadOnce() async {
        do {
            if try await keys.reloadIfChanged(now: now()) {
                logger.info("signing keys reloaded", metadata: ["gw.keys.active": "\(keys.ring.active?.kid ?? "-")"])
            }
        } catch {
            logger.error("signing keys could not be reloaded; serving the previous ones", metadata: ["error": "\(error)"])
        }
    }

    func service(every interval: Duration) -> PeriodicService {
        PeriodicService(interval: interval) { await reloadOnce() }
    }
}

/// What `lti-gateway keys …` does.
public enum KeyAdministration {
    /// `keys init` (and every start): creates the active and next keys when missing; otherwise changes nothing.
    public static func ready(store: any SigningKeyStore, policy: KeyPolicy, now: Date = Date()) async throws -> ToolKeyRing {
        let ring = try await store.loadKeyRing()
        guard ring.active == nil || ring.next == nil else { return ring }
        return try await store.updateKeyRing { try $0.readied(now: now, generate: { try ToolKey.generate(bits: policy.keyBits, now: now) }) }
    }

    /// `keys rotate`: next → active, active → retiring, a new next.
    public static func rotate(store: any SigningKeyStore, policy: KeyPolicy, force: Bool, now: Date = Date()) async throws -> ToolKeyRing {
        try await store.updateKeyRing { ring in
            try ring.readied(now: now, generate: { try ToolKey.generate(bits: policy.keyBits, now: now) })
                .rotated(
                    now: now, grace: policy.retiringGrace, minimumNextAge: policy.minimumNextAge, force: force,
                    generate: { try ToolKey.generate(bits: policy.keyBits, now: now) })
        }
    }

    /// `keys rotate --emergency`: every key replaced by fresh ones at once (the keys may have leaked).
    public static func replaceAll(store: any SigningKeyStore, policy: KeyPolicy, now: Date = Date()) async throws -> ToolKeyRing {
        try await store.updateKeyRing { ring in
            try ring.replacedAll(now: now, generate: { try ToolKey.generate(bits: policy.keyBits, now: now) })
        }
    }

    /// `keys retire KID`: removes a retiring key at once.
    public static func retire(store: any SigningKeyStore, kid: String) async throws -> ToolKeyRing {
        try await store.updateKeyRing { try $0.retired(kid: kid) }
    }

    /// `keys list`: one line per key, in aligned columns.
    public static func table(_ ring: ToolKeyRing, now: Date = Date()) -> String {
        AdministrationTables.columns(
            ["KID", "STATE", "CREATED", "ACTIVATED", "RETIRES AT"],
            ring.published(now: now).map { key in
                [
                    key.kid, key.state.rawValue, AdministrationTables.time(key.createdAt), AdministrationTables.time(key.activatedAt),
                    AdministrationTables.time(key.retiresAt),
                ]
            })
    }
}
