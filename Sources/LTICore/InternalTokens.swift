import Crypto
import CryptoExtras
import Foundation

/// Tokens the gateway issues to itself — the lab picker's session token, the too-many-labs page's lab
/// session — and never to a platform.
///
/// HS256 with a secret derived from one of the tool's keys (HKDF-SHA256 over its private key, bound to its kid),
/// not RS256 with the key platforms trust: no internal token is a signature a platform would accept, and no
/// token a platform receives (a deep-linking response) passes for an internal one. Every instance derives the
/// same secrets from the shared key ring, and a key rotation ends the internal tokens of the keys it removes.
public struct InternalTokens: Sendable {
    let ring: ToolKeyRing

    public init(ring: ToolKeyRing) { self.ring = ring }

    /// A compact JWS (HS256) of `claims`, under the active key's derived secret.
    public func sign(claims: [String: any Sendable]) throws -> String {
        guard let key = ring.active else { throw KeyRingError.noActiveKey }
        let header: [String: String] = ["alg": "HS256", "typ": "JWT", "kid": key.kid]
        let headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        let payloadData = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let input = Base64URL.encode(headerData) + "." + Base64URL.encode(payloadData)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: try Self.secret(for: key))
        return input + "." + Base64URL.encode(Data(mac))
    }

    /// The payload of `token` when it is an HS256 JWS under the secret of one of the keys published at `now`;
    /// nil otherwise (an RS256 token included).
    public func payload(of token: String, now: Date, maxBytes: Int = 16_384) -> Data? {
        guard token.utf8.count <= maxBytes, let jws = try? CompactJWS(token), jws.header.alg == "HS256", jws.header.crit == nil,
            let kid = jws.header.kid, let key = ring.published(now: now).first(where: { $0.kid == kid }),
            let secret = try? Self.secret(for: key)
        else { return nil }
        return HMAC<SHA256>.isValidAuthenticationCode(jws.signature, authenticating: jws.signingInput, using: secret) ? jws.payload : nil
    }

    /// The internal-token secret of `key`: HKDF-SHA256 of its private key, salted for this use, bound to its kid.
    static func secret(for key: ToolKey) throws -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key.privateKey.derRepresentation), salt: Data("lti-gateway internal tokens v1".utf8),
            info: Data(key.kid.utf8), outputByteCount: 32)
    }
}
