import Crypto
import Foundation
import GatewayStorage
import LTICore
import PostgresNIO

/// The key that encrypts signing keys at rest in a shared database (`GATEWAY_KEY_ENCRYPTION_KEY`: 32
/// random bytes, base64; e.g. `openssl rand -base64 32`).
///
/// - Important: Secret. Only in the environment or a `_FILE`; never stored beside what it protects.
public struct KeyEncryptionKey: Sendable {
    let key: SymmetricKey

    /// Nil when `base64` is not 32 bytes of base64.
    public init?(base64: String) {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else { return nil }
        key = SymmetricKey(data: data)
    }

    /// AES-256-GCM with the kid as associated data, so a sealed key cannot be swapped onto another kid.
    func seal(_ pem: String, kid: String) throws -> String {
        let box = try AES.GCM.seal(Data(pem.utf8), using: key, authenticating: Data(kid.utf8))
        guard let combined = box.combined else { throw StorageError(.corrupt, "sealing the signing key \(kid) failed") }
        return "v1." + combined.base64EncodedString()
    }

    func open(_ sealed: String, kid: String) throws -> String {
        guard sealed.hasPrefix("v1."), let data = Data(base64Encoded: String(sealed.dropFirst(3))),
            let box = try? AES.GCM.SealedBox(combined: data),
            let plain = try? AES.GCM.open(box, using: key, authenticating: Data(kid.utf8)),
            let pem = String(data: plain, encoding: .utf8)
        else {
            throw StorageError(.corrupt, "the signing key \(kid) cannot be decrypted with GATEWAY_KEY_ENCRYPTION_KEY (wrong key?)")
        }
        return pem
    }
}

extension PostgresGatewayStore {
    /// The stored (sealed) private keys, for checks that nothing is stored in the clear.
    public func sealedPrivateKeys() async throws -> [String] {
        try await run("SELECT sealed_private_key FROM tool_keys").map { try $0.decode(String.self) }
    }
}

/// Signing keys in the shared PostgreSQL database, private keys sealed with the ``KeyEncryptionKey``,
/// so every instance signs and publishes the same ring. Writers serialise on the ring's row lock.
public struct PostgresSigningKeyStore: SigningKeyStore {
    let store: PostgresGatewayStore
    let encryption: KeyEncryptionKey

    public init(store: PostgresGatewayStore, encryption: KeyEncryptionKey) {
        self.store = store
        self.encryption = encryption
    }

    public func loadKeyRing() async throws -> ToolKeyRing {
        try ring(
            try await store.run("SELECT kid, state, created_at, activated_at, retires_at, sealed_private_key FROM tool_keys ORDER BY created_at, kid")
        )
    }

    public func keyRingRevision() async throws -> Int {
        try await store.run("SELECT revision FROM tool_key_ring WHERE id = 1").first?.decode(Int.self) ?? 0
    }

    public func updateKeyRing(_ change: @Sendable (ToolKeyRing) throws -> ToolKeyRing) async throws -> ToolKeyRing {
        let logger = store.logger
        let encryption = encryption
        return try await store.transaction { connection in
            // The ring's row lock: one writer at a time, in every instance.
            try await connection.query("SELECT revision FROM tool_key_ring WHERE id = 1 FOR UPDATE", logger: logger)
            let rows = try await connection.query(
                "SELECT kid, state, created_at, activated_at, retires_at, sealed_private_key FROM tool_keys ORDER BY created_at, kid",
                logger: logger
            ).collect()
            let current = try self.ring(rows)
            let updated = try change(current)
            let kept = updated.keys.map(\.kid)
            for key in updated.keys {
                let sealed = try current.key(kid: key.kid) == nil ? encryption.seal(key.privateKeyPEM, kid: key.kid) : ""
                try await connection.query(
                    """
                    INSERT INTO tool_keys (kid, state, created_at, activated_at, retires_at, sealed_private_key)
                    VALUES (\(key.kid), \(key.state.rawValue), \(key.createdAt.timeIntervalSince1970), \(key.activatedAt?.timeIntervalSince1970),
                            \(key.retiresAt?.timeIntervalSince1970), \(sealed))
                    ON CONFLICT (kid) DO UPDATE SET state = EXCLUDED.state, activated_at = EXCLUDED.activated_at, retires_at = EXCLUDED.retires_at
                    """, logger: logger)
            }
            try await connection.query("DELETE FROM tool_keys WHERE NOT (kid = ANY(\(kept)))", logger: logger)
            try await connection.query("UPDATE tool_key_ring SET revision = revision + 1 WHERE id = 1", logger: logger)
            return updated
        }
    }

    private func ring(_ rows: [PostgresRow]) throws -> ToolKeyRing {
        ToolKeyRing(
            keys: try rows.map { row in
                let (kid, state, created, activated, retires, sealed) = try row.decode((String, String, Double, Double?, Double?, String).self)
                guard let state = ToolKey.State(rawValue: state) else {
                    throw StorageError(.corrupt, "the signing key \(kid) has the unknown state \(state)")
                }
                do {
                    return try ToolKey(
                        kid: kid, state: state, createdAt: Date(timeIntervalSince1970: created),
                        activatedAt: activated.map(Date.init(timeIntervalSince1970:)), retiresAt: retires.map(Date.init(timeIntervalSince1970:)),
                        privateKeyPEM: try encryption.open(sealed, kid: kid))
                } catch let error as StorageError {
                    throw error
                } catch {
                    throw StorageError(.corrupt, "the stored signing key \(kid) is not the RSA key its kid names", underlying: error)
                }
            })
    }
}
