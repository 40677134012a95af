import GatewayStorage
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import GatewayApp

@Suite("Errors become answers")
struct GatewayErrorMiddlewareTests {
    /// A router whose one route throws `error`, behind the gateway's error middleware.
    static func router(throwing error: any Error & Sendable) throws -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: GatewayErrorMiddleware(pages: try PageRenderer()))
        router.get("/fail") { _, _ -> Response in throw error }
        return router
    }

    @Test("a database that cannot be reached, or is too far behind, answers 503 with Retry-After, never 500")
    func storageUnavailable() async throws {
        let app = Application(router: try Self.router(throwing: StorageError(.unavailable, "the database is behind")))
        try await app.test(.router) { client in
            try await client.execute(uri: "/fail", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "5")
                #expect(!String(buffer: response.body).contains("the database is behind"))
            }
        }
    }

    @Test("other storage failures stay internal errors without Retry-After")
    func storageCorrupt() async throws {
        let app = Application(router: try Self.router(throwing: StorageError(.corrupt, "unreadable")))
        try await app.test(.router) { client in
            try await client.execute(uri: "/fail", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.headers[.retryAfter] == nil)
            }
        }
    }
}
