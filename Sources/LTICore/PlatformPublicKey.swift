import Crypto
import CryptoExtras
import Foundation

/// An LMS platform's RS256 verification key, built once when its JWKS is loaded.
///
/// Verification is RSASSA-PKCS1-v1_5 with SHA-256 and nothing else: the algorithm is fixed by the
/// gateway, never taken from a token header (checklist "Launch" rule 2). Keys under 2048 bits are refused.
public struct PlatformPublicKey: Sendable {
    public let kid: String
    private let key: _RSA.Signing.PublicKey

    /// Builds the key from a JWK's base64url `n` and `e`.
    public init(kid: String, modulus: String, exponent: String) throws {
        guard let n = Base64URL.decode(modulus), let e = Base64URL.decode(exponent) else {
            throw KeyFormatError(reason: "modulus or exponent is not base64url")
        }
        self.kid = kid
        self.key = try _RSA.Signing.PublicKey(n: n, e: e)
    }

    /// Builds the key from a PEM `PUBLIC KEY` document.
    public init(kid: String, pem: String) throws {
        self.kid = kid
        self.key = try _RSA.Signing.PublicKey(pemRepresentation: pem)
    }

    /// True when `signature` is a valid RS256 signature of `signingInput` under this key.
    public func verifiesRS256(signature: Data, signingInput: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: signingInput)
        return key.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature),
            for: digest, padding: .insecurePKCS1v1_5)
    }

    /// The reason a key could not be built.
    public struct KeyFormatError: Error, Sendable {
        public var reason: String
    }
}

/// Cryptographically secure random tokens for state, nonces and ids.
public enum SecureRandom {
    /// `byteCount` bytes from the system CSPRNG, base64url-encoded (checklist "Login" rule 3: ≥ 128 bits).
    public static func token(byteCount: Int = 32) -> String {
        Base64URL.encode(bytes(byteCount))
    }

    /// `count` bytes from the system CSPRNG, eight per draw (one draw is one system call).
    public static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return Array(bytes.prefix(count))
    }
}

/// Lower-case hexadecimal, without Foundation's formatter.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
