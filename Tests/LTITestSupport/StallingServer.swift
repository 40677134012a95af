import Hummingbird
import HummingbirdTesting

/// Runs a server on 127.0.0.1 that answers every request with `200`, a JSON content type and the first byte of its
/// body, then sends nothing more for `stall` — a vendor or platform whose answer stops mid-body — and hands its port
/// to `body`.
public func withStallingServer(stall: Duration, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    let router = Router()
    let answer: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init { writer in
                try await writer.write(ByteBuffer(string: "{"))
                try await Task.sleep(for: stall)
                try await writer.write(ByteBuffer(string: "}"))
                try await writer.finish(nil)
            })
    }
    router.get("**", use: answer)
    router.post("**", use: answer)
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    try await app.test(.live) { client in
        guard let port = client.port else { return }
        try await body(port)
    }
}
