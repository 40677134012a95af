import Foundation
import GatewayApp
import GatewaySupport
import LTITestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Reliability #17.5: malformed bodies, encodings and tokens — generated from a fixed seed, so a failure repeats —
/// are refused with 4xx, never 5xx, over raw TCP against the real server.
@Suite("Fuzzed requests")
struct FuzzTests {
    static let paths = ["/lti/launch", "/lti/login", "/lti/login/check", "/lti/login/restart", "/lti/deep-link/select", "/lti/labs/launch"]

    /// A body: random bytes, a form with hostile names and values, broken percent escapes, or a mutated token.
    static func body(_ random: inout SeededGenerator) -> [UInt8] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0:
            return (0..<Int.random(in: 0..<2048, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 1:
            let pieces = ["id_token", "state", "session", "lab", "iss", "login_hint", "\u{0}", "%", "%zz", "%C3", "=", "&&", "+", "é", "<script>"]
            var text = ""
            for _ in 0..<Int.random(in: 1..<30, using: &random) { text += pieces.randomElement(using: &random)! }
            return Array(text.utf8)
        case 2:
            return Array("id_token=\(String(repeating: "%", count: Int.random(in: 1..<50, using: &random)))&state=%E0%A4".utf8)
        default:
            // A JWT-shaped token with random segments and random bytes flipped.
            var token = Array(
                "eyJhbGciOiJSUzI1NiIsImtpZCI6ImEifQ.eyJpc3MiOiJodHRwczovL2xtcyJ9.\(String(repeating: "A", count: Int.random(in: 0..<400, using: &random)))"
                    .utf8)
            for _ in 0..<Int.random(in: 0..<8, using: &random) where !token.isEmpty {
                token[Int.random(in: 0..<token.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            return Array("id_token=".utf8) + token + Array("&state=s".utf8)
        }
    }

    /// The request: `body` sent with a right or wrong length, or chunked (well or badly).
    static func request(path: String, body: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            head += "Content-Length: \(body.count)\r\n\r\n"
            return Array(head.utf8) + body
        case 1:
            head += "Transfer-Encoding: chunked\r\n\r\n"
            var framed: [UInt8] = []
            var rest = body[...]
            while !rest.isEmpty {
                let size = min(rest.count, Int.random(in: 1...512, using: &random))
                framed += Array(String(size, radix: 16).utf8) + [13, 10] + rest.prefix(size) + [13, 10]
                rest = rest.dropFirst(size)
            }
            return Array(head.utf8) + framed + Array("0\r\n\r\n".utf8)
        default:
            let sizes = ["zz", "-1", "ffffffffffffffffffff", "10;ext=\u{0}", "4\n", ""]
            head += "Transfer-Encoding: chunked\r\n\r\n"
            return Array(head.utf8) + Array("\(sizes.randomElement(using: &random)!)\r\n".utf8) + body.prefix(64) + Array("\r\n0\r\n\r\n".utf8)
        }
    }

    @Test("300 fuzzed posts to the gateway's routes: each refused with 4xx (or the connection closed), never 5xx")
    func noServerErrors() async throws {
        let e2e = try await EndToEnd.start()
        defer { Task { await e2e.stop() } }
        let port = e2e.gateway.listeningPort.value ?? 0
        var random = SeededGenerator(seed: 0x5EED_1A7E)
        var statuses: [String: Int] = [:]
        for _ in 0..<300 {
            let path = Self.paths.randomElement(using: &random)!
            let bytes = Self.request(path: path, body: Self.body(&random), &random)
            let connection = try await RawConnection.open(port: port)
            try? await connection.send(ByteBuffer(bytes: bytes))  // the server may close before all of it is sent
            let answer = (try? await connection.readUntilClosed(within: .seconds(10))) ?? "(no close within 10 s)"
            await connection.close()
            let status = answer.hasPrefix("HTTP/1.1 ") ? String(answer.dropFirst(9).prefix(3)) : "closed"
            statuses[status, default: 0] += 1
            #expect(!status.hasPrefix("5"), "\(path): \(answer.prefix(200))")
        }
        #expect(statuses["closed", default: 0] < 150, "most requests must get an answer: \(statuses)")
        #expect(e2e.logs.lines(containing: "internal_error").isEmpty)
        #expect(try await e2e.request(.GET, "/healthz").status == 200)
    }
}
