import Foundation
import GatewayApp
import Logging
import Synchronization
import Testing

@Suite("Log lines")
struct GatewayLogHandlerTests {
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    @Test("a line carries the logger's metadata (set at any time), the call's metadata and error, sorted; nothing below the level")
    func rendering() {
        let lines = Lines()
        var logger = Logger(label: "lti-gateway") { GatewayLogHandler(label: $0, level: .info, write: { lines.append($0) }) }
        logger[metadataKey: "gw.request.id"] = "ABC"
        logger.debug("hidden")
        struct Failure: Error {}
        logger.warning("refused", error: Failure(), metadata: ["gw.error": "state_unknown"])
        logger[metadataKey: "gw.request.id"] = "DEF"
        logger.info("again")
        #expect(lines.all.count == 2)
        let first = lines.all[0]
        #expect(
            first.contains(" warning lti-gateway: error=Failure() gw.error=state_unknown gw.request.id=ABC [GatewayAppTests] refused\n"), "\(first)")
        #expect(lines.all[1].contains("gw.request.id=DEF") && lines.all[1].hasSuffix("again\n"))
    }

    @Test("a line starts with the time in UTC to the second, as Foundation's ISO 8601 style writes it")
    func timestamps() {
        for seconds in [0, 951_782_400, 1_764_549_433, 4_102_444_799, 1_234_567_890] {
            let expected = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)
            #expect(GatewayLogHandler.timestamp(seconds: seconds) == expected)
        }
        let lines = Lines()
        let logger = Logger(label: "lti-gateway") { GatewayLogHandler(label: $0, level: .info, write: { lines.append($0) }) }
        let before = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        logger.info("now")
        let stamp = String(lines.all[0].prefix { $0 != " " })
        let written = try? Date.ISO8601FormatStyle().parse(stamp)
        #expect(written.map { $0 >= before && $0 <= Date() } == true, "\(stamp)")
    }
}
