import AsyncHTTPClient

/// Runs `body` with a fresh HTTP client that is shut down afterwards, whether `body` throws or not.
public func withHTTPClient<T>(
    configuration: HTTPClient.Configuration = .init(),
    _ body: (HTTPClient) async throws -> T
) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let result: T
    do {
        result = try await body(http)
    } catch {
        try? await http.shutdown()
        throw error
    }
    try await http.shutdown()
    return result
}
