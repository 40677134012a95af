import Foundation
import LTICore
import Testing

@Suite("Random tokens and hex")
struct RandomAndHexTests {
    @Test("tokens carry the asked number of random bytes and do not repeat")
    func tokens() {
        for count in [1, 7, 8, 9, 16, 32, 33] { #expect(SecureRandom.bytes(count).count == count) }
        let token = SecureRandom.token()
        #expect(Base64URL.decode(token)?.count == 32)
        let many = Set((0..<2000).map { _ in SecureRandom.token(byteCount: 16) })
        #expect(many.count == 2000)
        // Every byte position varies (a filler bug would leave some fixed).
        let samples = (0..<64).map { _ in SecureRandom.bytes(32) }
        for position in 0..<32 { #expect(Set(samples.map { $0[position] }).count > 8, "position \(position)") }
    }

    @Test("hex is lower-case, two digits a byte")
    func hex() {
        #expect(Hex.encode([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(Hex.encode([UInt8]()) == "")
    }
}
