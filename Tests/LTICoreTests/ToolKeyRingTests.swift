import Crypto
import CryptoExtras
import Foundation
import LTICore
import Synchronization
import Testing

@Suite("Tool key ring: next → active → retiring → removed")
struct ToolKeyRingTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let pool: [ToolKey] = (0..<4).map { _ in try! ToolKey.generate(now: t0) }

    /// Hands out pool keys in order, as fresh `next` keys created at `now`.
    final class Generator: Sendable {
        let index = Mutex(0)
        func callAsFunction(_ now: Date) -> ToolKey {
            let i = index.withLock { v in
                defer { v += 1 }; return v
            }
            let key = ToolKeyRingTests.pool[i % ToolKeyRingTests.pool.count]
            return ToolKey(kid: key.kid, state: .next, createdAt: now, privateKey: key.privateKey)
        }
    }

    func readied(_ generate: Generator) throws -> ToolKeyRing {
        try ToolKeyRing(keys: []).readied(now: Self.t0, generate: { generate(Self.t0) })
    }

    @Test("readied: one active and one next key; the kid is the RFC 7638 thumbprint")
    func readiedRing() throws {
        let ring = try readied(Generator())
        #expect(ring.active?.kid == Self.pool[0].kid && ring.next?.kid == Self.pool[1].kid)
        #expect(ring.active?.activatedAt == Self.t0)
        let key = try #require(ring.active)
        #expect(try ToolKey.thumbprint(key.privateKey.publicKey) == key.kid)
        #expect(key.kid.count == 43)
    }

    @Test("rotate: next becomes active, active becomes retiring with its grace, a new next appears")
    func rotate() throws {
        let generate = Generator()
        let ring = try readied(generate)
        let later = Self.t0.addingTimeInterval(10_000)
        let rotated = try ring.rotated(now: later, grace: 600, minimumNextAge: 7200, force: false, generate: { generate(later) })
        #expect(rotated.active?.kid == ring.next?.kid && rotated.active?.activatedAt == later)
        #expect(rotated.key(kid: ring.active!.kid)?.state == .retiring)
        #expect(rotated.key(kid: ring.active!.kid)?.retiresAt == later.addingTimeInterval(600))
        #expect(rotated.next?.kid == Self.pool[2].kid)
        #expect(rotated.published(now: later).map(\.state) == [.active, .next, .retiring])
        #expect(rotated.published(now: later.addingTimeInterval(601)).map(\.state) == [.active, .next])
    }

    @Test("emergency replacement: no earlier key stays (active, next or retiring), fresh ones sign and wait at once")
    func replacedAll() throws {
        let generate = Generator()
        let ring = try readied(generate)
        let later = Self.t0.addingTimeInterval(10_000)
        let rotated = try ring.rotated(now: later, grace: 600, minimumNextAge: 7200, force: false, generate: { generate(later) })
        let fresh = Self.pool[3]
        let replacements = [fresh, try ToolKey.generate(now: later)]
        let handedOut = Mutex(0)
        let replaced = try rotated.replacedAll(
            now: later,
            generate: {
                handedOut.withLock { i in
                    defer { i += 1 }; return replacements[i]
                }
            })
        #expect(Set(replaced.keys.map(\.kid)).isDisjoint(with: rotated.keys.map(\.kid)))
        #expect(replaced.published(now: later).map(\.state) == [.active, .next])
        #expect(replaced.active?.activatedAt == later && replaced.active?.kid == fresh.kid)
    }

    @Test("rotate refuses a next key younger than the minimum publication time, unless forced")
    func nextTooYoung() throws {
        let generate = Generator()
        let ring = try readied(generate)
        let soon = Self.t0.addingTimeInterval(60)
        #expect(throws: KeyRingError.nextTooYoung(kid: ring.next!.kid, publishedSeconds: 60, requiredSeconds: 7200)) {
            try ring.rotated(now: soon, grace: 600, minimumNextAge: 7200, force: false, generate: { generate(soon) })
        }
        #expect(
            try ring.rotated(now: soon, grace: 600, minimumNextAge: 7200, force: true, generate: { generate(soon) }).active?.kid == ring.next?.kid)
        // The refusal says when rotating will work, not the rule's threshold.
        let refusal = KeyRingError.nextTooYoung(kid: "k", publishedSeconds: 60, requiredSeconds: 7200).description
        #expect(refusal.contains("published 1 min ago") && refusal.contains("rotate again in 1 h 59 min"), "\(refusal)")
    }

    @Test("retire removes only retiring keys")
    func retire() throws {
        let generate = Generator()
        let ring = try readied(generate)
        #expect(throws: KeyRingError.cannotRetireActive(ring.active!.kid)) { try ring.retired(kid: ring.active!.kid) }
        #expect(throws: KeyRingError.cannotRetireNext(ring.next!.kid)) { try ring.retired(kid: ring.next!.kid) }
        #expect(throws: KeyRingError.unknownKey("nope")) { try ring.retired(kid: "nope") }
        let rotated = try ring.rotated(now: Self.t0, grace: 600, minimumNextAge: 0, force: false, generate: { generate(Self.t0) })
        let retired = try rotated.retired(kid: ring.active!.kid)
        #expect(retired.key(kid: ring.active!.kid) == nil && retired.keys.count == 2)
    }

    @Test("the JWKS document has public members only")
    func jwks() throws {
        let ring = try readied(Generator())
        let document = try JSONSerialization.jsonObject(with: ring.jwksDocument(now: Self.t0)) as? [String: [[String: String]]]
        let keys = try #require(document?["keys"])
        #expect(keys.count == 2)
        for key in keys { #expect(Set(key.keys) == ["kty", "kid", "use", "alg", "n", "e"]) }
    }

    @Test("the signer signs RS256 with the active key and names its kid")
    func signer() throws {
        let ring = try readied(Generator())
        let token = try ToolTokenSigner(activeKey: ring.active!).sign(claims: ["sub": "x"])
        let parts = token.split(separator: ".").map(String.init)
        let header = try JSONSerialization.jsonObject(with: Base64URL.decode(parts[0])!) as? [String: String]
        #expect(header == ["alg": "RS256", "typ": "JWT", "kid": ring.active!.kid])
        let publicKey = try PlatformPublicKey(kid: ring.active!.kid, pem: ring.active!.publicKeyPEM)
        #expect(publicKey.verifiesRS256(signature: Base64URL.decode(parts[2])!, signingInput: Array((parts[0] + "." + parts[1]).utf8)))
        let nextKey = try PlatformPublicKey(kid: ring.next!.kid, pem: ring.next!.publicKeyPEM)
        #expect(!nextKey.verifiesRS256(signature: Base64URL.decode(parts[2])!, signingInput: Array((parts[0] + "." + parts[1]).utf8)))
    }

    @Test("key sizes below 2048 bits are refused")
    func keySize() {
        #expect(throws: KeyRingError.invalidKeySize(1024)) { try ToolKey.generate(bits: 1024, now: Self.t0) }
    }
}

@Suite("Internal tokens: never a signature a platform would accept")
struct InternalTokensTests {
    static let now = ToolKeyRingTests.t0

    func ring() throws -> ToolKeyRing {
        try ToolKeyRing(keys: []).readied(now: Self.now, generate: { try ToolKey.generate(now: Self.now) })
    }

    @Test("HS256 under a secret derived from the active key; read back only with it, intact")
    func roundTrip() throws {
        let ring = try ring()
        let tokens = InternalTokens(ring: ring)
        let token = try tokens.sign(claims: ["aud": "lti-gateway/test", "sid": "s1"])
        let header = try CompactJWS(token).header
        #expect(header.alg == "HS256" && header.kid == ring.active?.kid)
        let payload = try #require(tokens.payload(of: token, now: Self.now))
        #expect(String(decoding: payload, as: UTF8.self).contains("\"sid\":\"s1\""))
        // Tampered payload, another ring's secret, or a key no longer published: refused.
        var parts = token.split(separator: ".").map(String.init)
        parts[1] = Base64URL.encode(Data(#"{"aud":"lti-gateway/test","sid":"s2"}"#.utf8))
        #expect(tokens.payload(of: parts.joined(separator: "."), now: Self.now) == nil)
        #expect(InternalTokens(ring: try self.ring()).payload(of: token, now: Self.now) == nil)
    }

    @Test("an RS256 token by the same key (what platforms verify) is no internal token, and an internal token verifies at no platform")
    func notInterchangeable() throws {
        let ring = try ring()
        let active = try #require(ring.active)
        let platformFacing = try ToolTokenSigner(activeKey: active).sign(claims: ["aud": "lti-gateway/test", "sid": "s1"])
        #expect(InternalTokens(ring: ring).payload(of: platformFacing, now: Self.now) == nil)
        let internalToken = try CompactJWS(try InternalTokens(ring: ring).sign(claims: ["sid": "s1"]))
        let verifies = active.privateKey.publicKey.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: internalToken.signature), for: SHA256.hash(data: internalToken.signingInput),
            padding: .insecurePKCS1v1_5)
        #expect(!verifies)
    }
}
