import Foundation
import LTICore
import Testing

@Suite("Compact JWS parsing and base64url")
struct CompactJWSTests {
    @Test("base64url round-trips and refuses standard-alphabet and padded input")
    func base64url() {
        let bytes: [UInt8] = [0xfb, 0xff, 0xfe, 0x00, 0x41]
        let encoded = Base64URL.encode(bytes)
        #expect(!encoded.contains("+") && !encoded.contains("/") && !encoded.contains("="))
        #expect(Base64URL.decode(encoded).map(Array.init) == bytes)
        #expect(Base64URL.decode("+/8=") == nil)
    }

    @Test("base64url decoding agrees with Foundation's base64 at every length and refuses bytes outside the alphabet")
    func base64urlDecoding() {
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let standard = Data(bytes).base64EncodedString()
            let url = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.decode(url).map(Array.init) == bytes, "length \(length)")
        }
        for bad in ["A", "AAAAA", "AA AA", "AA.A", "AAé", "AA\u{0}A", "AB=="] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
    }

    @Test("four segments, empty header and non-JSON header are malformed")
    func malformed() {
        for token in [
            "a.b.c.d", ".b.c", "a..c", Base64URL.encode(Array("not json".utf8)) + ".e30.", "onlyone", "e30.e30", "e30.e30.c.", "..", "....",
        ] {
            #expect(throws: LaunchRefusal.self) { try CompactJWS(token) }
        }
        // Three parts, the signature empty: split, and the parts are where they belong.
        let header = Base64URL.encode(Array(#"{"alg":"RS256","kid":"k"}"#.utf8))
        let jws = try? CompactJWS(header + ".e30.")
        #expect(jws?.header.kid == "k" && jws?.payload == Data("{}".utf8) && jws?.signature.isEmpty == true)
        #expect(jws.map { String(decoding: $0.signingInput, as: UTF8.self) } == header + ".e30")
    }

    @Test("the header's jku, x5u and jwk are noticed, never used")
    func outsideKeys() throws {
        let header = Base64URL.encode(Array(#"{"alg":"RS256","kid":"k","jku":"https://x"}"#.utf8))
        let jws = try CompactJWS(header + ".e30.c2ln")
        #expect(jws.header.referencesOutsideKey)
        #expect(jws.header.kid == "k")
    }

    @Test("secure random tokens are 256 bits and distinct")
    func randomTokens() {
        let tokens = Set((0..<100).map { _ in SecureRandom.token() })
        #expect(tokens.count == 100)
        #expect(tokens.allSatisfy { Base64URL.decode($0)?.count == 32 })
    }

    @Test("constant-time comparison compares whole values")
    func constantTime() {
        #expect(constantTimeEquals("abc", "abc"))
        #expect(!constantTimeEquals("abc", "abd"))
        #expect(!constantTimeEquals("abc", "abcd"))
        #expect(!constantTimeEquals("", "a"))
    }
}
