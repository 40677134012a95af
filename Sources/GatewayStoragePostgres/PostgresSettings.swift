import Foundation
import GatewaySupport
import NIOSSL
import PostgresNIO

/// How to reach PostgreSQL, parsed from `GATEWAY_DATABASE_URL=postgres://user:password@host:port/database?…`.
///
/// Query parameters: `sslmode` = `disable` | `prefer` | `require` (certificate and host name verified;
/// default `require`, or `prefer` for a loopback host: a downgradable connection across a network would let
/// anyone on the path read the database's traffic), `pool` (maximum connections per instance, default 20), `connect_timeout` (seconds,
/// default 10).
public struct PostgresSettings: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    /// - Important: Secret; never logged (``redactedURL`` leaves it out).
    public var password: String?
    public var database: String
    public var tlsMode: String
    public var maximumConnections: Int
    public var connectTimeoutSeconds: Int

    /// The URL without the password, for logs.
    public var redactedURL: String { "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(tlsMode)&pool=\(maximumConnections)" }

    /// Parses a `postgres://` or `postgresql://` URL; the reason it cannot be used otherwise.
    public init(url: String) throws(PostgresSettingsError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            throw PostgresSettingsError("GATEWAY_DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        let database = String(components.path.dropFirst())
        guard !database.isEmpty, !database.contains("/") else { throw PostgresSettingsError("GATEWAY_DATABASE_URL must name a database") }
        guard let user = components.user, !user.isEmpty else { throw PostgresSettingsError("GATEWAY_DATABASE_URL must name a user") }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database
        self.tlsMode = query["sslmode"] ?? (Loopback.isLoopback(host) ? "prefer" : "require")
        guard ["disable", "prefer", "require"].contains(tlsMode) else {
            throw PostgresSettingsError("sslmode in GATEWAY_DATABASE_URL must be disable, prefer or require")
        }
        guard let pool = Int(query["pool"] ?? "20"), (1...500).contains(pool) else {
            throw PostgresSettingsError("pool in GATEWAY_DATABASE_URL must be 1…500")
        }
        guard let timeout = Int(query["connect_timeout"] ?? "10"), (1...300).contains(timeout) else {
            throw PostgresSettingsError("connect_timeout in GATEWAY_DATABASE_URL must be 1…300 seconds")
        }
        self.maximumConnections = pool
        self.connectTimeoutSeconds = timeout
    }

    var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS =
            switch tlsMode {
            case "disable": .disable
            case "require": .require(.makeClientConfiguration())
            default: .prefer(.makeClientConfiguration())
            }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(connectTimeoutSeconds)
        return configuration
    }
}

/// A `GATEWAY_DATABASE_URL` that cannot be used, with the reason.
public struct PostgresSettingsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
