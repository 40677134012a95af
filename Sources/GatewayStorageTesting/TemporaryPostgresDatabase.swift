import Foundation
import GatewayStorage
import GatewayStoragePostgres
import Logging

/// Throwaway PostgreSQL databases for tests, on the server named by `GATEWAY_TEST_POSTGRES_URL`
/// (set by `scripts/with-postgres.sh`). Tests that need PostgreSQL are skipped when it is absent.
public enum TemporaryPostgresDatabase {
    /// The server's URL for tests, or nil when PostgreSQL tests are off.
    public static var serverURL: String? {
        ProcessInfo.processInfo.environment["GATEWAY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static var isAvailable: Bool { serverURL != nil }

    /// Creates a fresh database, runs `body` with its URL, and drops it whatever happens.
    public static func with<T>(_ body: (String) async throws -> T) async throws -> T {
        guard let serverURL, var components = URLComponents(string: serverURL) else {
            throw PostgresSettingsUnavailable()
        }
        let name = "gw_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let admin = PostgresGatewayStore.open(settings: try PostgresSettings(url: serverURL), logger: Logger(label: "test-postgres"))
        components.path = "/" + name
        return try await admin.whileRunning {
            try await admin.createDatabase(named: String(name))
            let result: T
            do {
                result = try await body(components.string ?? serverURL)
            } catch {
                try? await admin.dropDatabase(named: String(name))
                throw error
            }
            try await admin.dropDatabase(named: String(name))
            return result
        }
    }

    /// Thrown when a test asks for PostgreSQL without `GATEWAY_TEST_POSTGRES_URL`.
    public struct PostgresSettingsUnavailable: Error, CustomStringConvertible {
        public var description: String { "GATEWAY_TEST_POSTGRES_URL is not set (run the tests through scripts/with-postgres.sh)" }
    }
}
