import Crypto
import CryptoExtras
import Foundation
import LTICore

/// A simulated LMS platform for tests: its own RSA key, its JWKS, and id_tokens it signs.
///
/// Independent of the gateway's code paths: tokens are assembled and signed here with swift-crypto
/// directly, including deliberately broken ones (alg none, HS256, foreign keys, tampered payloads).
public struct TestPlatform: Sendable {
    public let issuer: String
    public let clientID: String
    public let deploymentID: String
    public let kid: String
    public let privateKey: _RSA.Signing.PrivateKey

    public init(
        issuer: String = "https://lms.example.edu", clientID: String = "tool-client-1",
        deploymentID: String = "deployment-1", kid: String = "platform-key-1", privateKey: _RSA.Signing.PrivateKey? = nil
    ) {
        self.issuer = issuer
        self.clientID = clientID
        self.deploymentID = deploymentID
        self.kid = kid
        self.privateKey = privateKey ?? TestKeys.platformA
    }

    /// The platform's public key set document.
    public var jwksJSON: String { Self.jwks([(kid, privateKey)]) }

    public static func jwks(_ keys: [(String, _RSA.Signing.PrivateKey)]) -> String {
        let entries = keys.map { kid, key -> String in
            let p = try! key.publicKey.getKeyPrimitives()
            return
                #"{"kty":"RSA","kid":"\#(kid)","use":"sig","alg":"RS256","n":"\#(Base64URL.encode(p.modulus))","e":"\#(Base64URL.encode(p.publicExponent))"}"#
        }
        return #"{"keys":[\#(entries.joined(separator: ","))]}"#
    }

    /// The claims of a valid resource-link launch.
    public func launchClaims(
        nonce: String, now: Date, toolURL: String, labID: String? = "1001",
        subject: String = "learner-42"
    ) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": clientID, "sub": subject, "nonce": nonce,
            "iat": Int(now.timeIntervalSince1970), "exp": Int(now.timeIntervalSince1970) + 300,
            "given_name": "Ada", "family_name": "Lovelace", "name": "Ada Lovelace", "email": "ada@example.edu",
            "locale": "en-US",
            LTIClaim.version: "1.3.0",
            LTIClaim.messageType: "LtiResourceLinkRequest",
            LTIClaim.deploymentID: deploymentID,
            LTIClaim.targetLinkURI: toolURL + "/lti/launch",
            LTIClaim.resourceLink: ["id": "resource-link-7", "title": "Week 1 lab"],
            LTIClaim.roles: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            LTIClaim.context: ["id": "course-9", "label": "NET101", "title": "Networking 101"],
        ]
        if let labID { claims[LTIClaim.custom] = ["labid": labID] }
        return claims
    }

    /// An RS256 token signed with this platform's key (or `key`), with this platform's kid (or `kid`).
    public func sign(
        _ claims: [String: Any], kid: String? = nil, key: _RSA.Signing.PrivateKey? = nil,
        extraHeader: [String: Any] = [:]
    ) -> String {
        var header: [String: Any] = ["alg": "RS256", "typ": "JWT", "kid": kid ?? self.kid]
        for (k, v) in extraHeader { header[k] = v }
        return Self.signRS256(header: header, claims: claims, key: key ?? privateKey)
    }

    public static func signRS256(header: [String: Any], claims: [String: Any], key: _RSA.Signing.PrivateKey) -> String {
        let input = encodeSegment(header) + "." + encodeSegment(claims)
        let signature = try! key.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// `alg: none`, no signature.
    public func unsignedToken(_ claims: [String: Any]) -> String {
        Self.encodeSegment(["alg": "none", "typ": "JWT", "kid": kid]) + "." + Self.encodeSegment(claims) + "."
    }

    /// HS256 with the platform's public key (PEM) as the HMAC secret: the classic algorithm-confusion forgery.
    public func hs256WithPublicKey(_ claims: [String: Any]) -> String {
        let input = Self.encodeSegment(["alg": "HS256", "typ": "JWT", "kid": kid]) + "." + Self.encodeSegment(claims)
        let secret = SymmetricKey(data: Data(privateKey.publicKey.pemRepresentation.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: secret)
        return input + "." + Base64URL.encode(Data(mac))
    }

    public static func encodeSegment(_ object: [String: Any]) -> String {
        Base64URL.encode(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}

/// RSA keys generated once per test process (generation is slow in debug builds).
public enum TestKeys {
    public static let platformA = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    public static let platformB = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    public static let attacker = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
}
