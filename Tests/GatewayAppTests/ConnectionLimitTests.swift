import Foundation
import GatewaySupport
import LTITestSupport
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@testable import GatewayApp

/// The listener's limits, driven over raw TCP against the real server: no client holds a connection without sending
/// what it promised, refused requests release their connection at once, and the connection cap holds.
@Suite struct ConnectionLimitTests {
    /// A gateway whose clocks are short where a test waits for them to act, and long where it must not interfere
    /// (the machine may be busy with other tests).
    static func start(idle: Duration = .seconds(20), requestRead: Duration = .seconds(20)) async throws -> EndToEnd {
        try await EndToEnd.start { settings in
            settings.server.idleTimeout = idle
            settings.server.requestReadTimeout = requestRead
        }
    }

    static func port(_ e2e: EndToEnd) -> Int { e2e.gateway.listeningPort.value ?? 0 }

    @Test func aConnectionThatSendsNothingIsClosed() async throws {
        let e2e = try await Self.start(idle: .milliseconds(300))
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(answer.isEmpty)
    }

    @Test func aHeadTrickledByteByByteIsCutOff() async throws {
        let e2e = try await Self.start(idle: .milliseconds(300))
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        try await connection.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        // One more header byte every 50 ms, bounded: the server must close long before 200 bytes (10 s) are sent.
        let trickle = Task {
            for _ in 0..<200 where connection.isOpen {
                try? await connection.send("X")
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { trickle.cancel() }
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(!answer.contains("HTTP/1.1 200"))
    }

    @Test func aStalledBodyIsAnswered408AndItsConnectionClosed() async throws {
        let e2e = try await Self.start(requestRead: .milliseconds(300))
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        try await connection.send(
            "POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Content-Length: 1000\r\n\r\nid_token=a")
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(answer.hasPrefix("HTTP/1.1 408"))
        #expect(answer.lowercased().contains("connection: close"))
        let logged = e2e.logs.lines(containing: "gw.error=request_timeout")
        #expect(logged.count == 1)
    }

    @Test func anOversizedBodyIsRefusedFromItsLengthWithoutBeingRead() async throws {
        let e2e = try await Self.start()
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        // Announces 10 MB and sends 1 KB: the refusal must come from the announced length, not after reading.
        try await connection.send(
            "POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Content-Length: 10000000\r\n\r\n" + String(repeating: "a", count: 1024))
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(answer.hasPrefix("HTTP/1.1 413"))
        #expect(answer.lowercased().contains("connection: close"))
    }

    @Test func anOversizedChunkedBodyIsRefusedAndItsConnectionClosed() async throws {
        let e2e = try await Self.start()
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        try await connection.send(
            "POST /lti/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n")
        // 40 KiB in 4 KiB chunks (the login form takes 16 KiB), then the body stays open: only the refusal ends it.
        let chunk = String(repeating: "b", count: 4096)
        for _ in 0..<10 { try? await connection.send("1000\r\n" + chunk + "\r\n") }  // the server may close early
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(answer.hasPrefix("HTTP/1.1 413"))
    }

    @Test(arguments: [
        "zz\r\nabc\r\n0\r\n\r\n",  // a chunk size that is not hex
        "3\r\nabcdef\r\n0\r\n\r\n",  // a chunk longer than it says
        "ffffffffffffffffffff\r\nabc\r\n",  // a chunk size past 64 bits
        "3\nabc\n0\n\n",  // no CR
    ])
    func aBrokenChunkedBodyIsA400NotA500(body: String) async throws {
        let e2e = try await Self.start()
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        try await connection.send(
            "POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n" + body)
        let answer = try await connection.readUntilClosed(within: .seconds(10))
        #expect(answer.hasPrefix("HTTP/1.1 400"))
        #expect(e2e.logs.lines(containing: "internal_error").isEmpty)
    }

    @Test func keepAliveStillServesRequestAfterRequest() async throws {
        let e2e = try await Self.start()
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        for _ in 0..<3 {
            try await connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let answer = try await connection.read(until: "ok\n", within: .seconds(10))
            #expect(answer.hasPrefix("HTTP/1.1 200"))
        }
        await connection.close()
    }

    @Test func theConnectionCapMakesFurtherClientsWaitForAFreeSlot() async throws {
        let e2e = try await EndToEnd.start { settings in
            settings.server.maxConnections = 16
            settings.server.idleTimeout = .seconds(60)  // the held connections stay until the test closes one
        }
        defer { Task { await e2e.stop() } }
        let port = Self.port(e2e)
        var held: [RawConnection] = []
        for _ in 0..<16 { held.append(try await RawConnection.open(port: port)) }
        defer { for connection in held { Task { await connection.close() } } }
        // The 17th client connects (the listen queue takes it) and asks; it is answered only once a slot frees.
        let waiting = try await RawConnection.open(port: port)
        try await waiting.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try #require(await eventually { e2e.gateway.connections.capReached > 0 }, "the gateway stops accepting at its cap")
        await held.removeFirst().close()
        let answer = try await waiting.readUntilClosed(within: .seconds(10))
        #expect(answer.hasPrefix("HTTP/1.1 200"))
        #expect(e2e.gateway.connections.peak == 16)
    }

    @Test func shutdownClosesAStalledUploadAfterItsDeadline() async throws {
        let e2e = try await EndToEnd.start { settings in
            settings.server.requestReadTimeout = .seconds(120)  // only the shutdown deadline can end this upload
            settings.server.shutdownTimeout = .milliseconds(300)
        }
        defer { Task { await e2e.stop() } }
        let connection = try await RawConnection.open(port: Self.port(e2e))
        try await connection.send(
            "POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Content-Length: 1000\r\n\r\nid_token=a")
        try #require(await eventually { e2e.gateway.connections.reading == 1 }, "the upload is being read")
        let (group, task) = (e2e.groups[1], e2e.tasks.withLock { $0[1] })
        await group.triggerGracefulShutdown()
        _ = try await withDeadline(.seconds(10)) { try? await task.value }
        _ = try await connection.readUntilClosed(within: .seconds(5))
    }

    @Test func theCapLeavesDescriptorsForEverythingElse() {
        #expect(OpenFileLimit.connectionCap(requested: 4000, limit: 1024) == 1024 - 256)
        #expect(OpenFileLimit.connectionCap(requested: 100, limit: 65536) == 100)
    }
}
