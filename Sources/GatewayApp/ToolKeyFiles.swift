import Crypto
import CryptoExtras
import Foundation
import LTICore
import NIOCore

/// The tool's RSA signing key, kept as a PEM file under the keys folder (single-instance mode).
///
/// On first start a 2048-bit key is generated into `<keys>/<kid>.pem` with mode 0600; the kid is the
/// key's RFC 7638 thumbprint. A key file readable by group or others stops the start with a clear
/// message. The public key set is rendered once, into memory, for `/.well-known/jwks.json`.
struct ToolKeyFiles: Sendable {
    struct LoadedKey: Sendable {
        let kid: String
        let privateKey: _RSA.Signing.PrivateKey
    }

    let keys: [LoadedKey]
    /// The JWKS document bytes, built once.
    let jwksDocument: ByteBuffer

    /// Loads every `*.pem` of `directory`, generating one when there is none.
    static func loadOrCreate(directory: String) throws -> ToolKeyFiles {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
        } catch {
            throw SettingsError(message: "cannot create the keys folder \(directory): \(error.localizedDescription)")
        }
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".pem") }.sorted()
        var keys: [LoadedKey] = []
        for name in names {
            let path = directory + "/" + name
            let mode = ((try? fm.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? 0
            guard mode & 0o077 == 0 else {
                throw SettingsError(message: "the signing key \(path) is readable by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
            }
            guard let pem = fm.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }),
                  let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem)
            else {
                throw SettingsError(message: "the signing key \(path) is not an RSA private key in PEM form")
            }
            keys.append(LoadedKey(kid: try thumbprint(of: key.publicKey), privateKey: key))
        }
        if keys.isEmpty {
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let kid = try thumbprint(of: key.publicKey)
            let path = directory + "/" + kid + ".pem"
            guard fm.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw SettingsError(message: "cannot write the signing key into \(directory)")
            }
            keys.append(LoadedKey(kid: kid, privateKey: key))
        }
        return ToolKeyFiles(keys: keys, jwksDocument: try jwks(keys))
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key.
    static func thumbprint(of key: _RSA.Signing.PublicKey) throws -> String {
        let (n, e) = try components(of: key)
        let canonical = #"{"e":"\#(e)","kty":"RSA","n":"\#(n)"}"#
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }

    static func components(of key: _RSA.Signing.PublicKey) throws -> (n: String, e: String) {
        let primitives = try key.getKeyPrimitives()
        return (Base64URL.encode(primitives.modulus), Base64URL.encode(primitives.publicExponent))
    }

    /// `{"keys":[{kty,kid,use,alg,n,e}]}`: public members only.
    static func jwks(_ keys: [LoadedKey]) throws -> ByteBuffer {
        struct JWK: Encodable { var kty = "RSA"; var kid: String; var use = "sig"; var alg = "RS256"; var n: String; var e: String }
        struct Document: Encodable { var keys: [JWK] }
        let document = Document(keys: try keys.map { key in
            let (n, e) = try components(of: key.privateKey.publicKey)
            return JWK(kid: key.kid, n: n, e: e)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ByteBuffer(bytes: try encoder.encode(document))
    }
}
