import GatewayStoragePostgres
import LTICore

/// The database the gateway keeps its state in.
public struct DatabaseSettings: SettingsArea {
    /// `sqlite:PATH`, or `postgres://user@host:port/database?sslmode=…&pool=…&connect_timeout=…`.
    public var url = "sqlite:data/gateway.sqlite"
    /// - Important: Secret: the PostgreSQL password, when not in the URL.
    public var password: String?
    /// - Important: Secret: 32 bytes, base64, sealing signing keys in PostgreSQL.
    public var keyEncryptionKey: String?
    /// Apply database migrations when the server starts.
    public var migrateOnStart = true
    /// How long a registration and its options are reused before the store is read again (0 reads every time).
    public var registrationCacheLifetime = Duration.seconds(5)

    public init() {}

    public static let settings: [Setting<Self>] = [
        .text(
            "GATEWAY_DATABASE_URL", \.url,
            "`sqlite:PATH`, or `postgres://USER@HOST:5432/DB?sslmode=require&pool=20&connect_timeout=10` (see *Several instances*)",
            reason: { url in
                url.hasPrefix("postgres") || (url.hasPrefix("sqlite:") && url.count > "sqlite:".count)
                    ? nil : "must be sqlite:PATH or postgres://user@host:5432/database"
            }),
        .secret("GATEWAY_DATABASE_PASSWORD", \.password, "PostgreSQL password (overrides one in the URL)"),
        .secret("GATEWAY_KEY_ENCRYPTION_KEY", \.keyEncryptionKey, "32 random bytes, base64, that seal the signing keys in PostgreSQL"),
        .flag(
            "GATEWAY_MIGRATE_ON_START", \.migrateOnStart, "apply database migrations at start (`false` when `lti-gateway migrate` runs separately)"),
        .duration(
            "GATEWAY_REGISTRATION_CACHE_SECONDS", \.registrationCacheLifetime,
            "how long a platform registration and its options are reused before the database is read again (`platforms …` changes take effect within it, on every instance)",
            range: 0...300),
    ]

    public func validateTogether() throws {
        guard url.hasPrefix("postgres") else { return }
        _ = try postgres
        guard let keyEncryptionKey, KeyEncryptionKey(base64: keyEncryptionKey) != nil else {
            throw SettingsError(
                message:
                    "GATEWAY_KEY_ENCRYPTION_KEY must be set to 32 random bytes in base64 (openssl rand -base64 32) with a PostgreSQL database: it seals the signing keys stored there"
            )
        }
    }

    /// The PostgreSQL connection of ``url`` (password from GATEWAY_DATABASE_PASSWORD when set); nil for SQLite.
    public var postgres: PostgresSettings? {
        get throws(SettingsError) {
            guard url.hasPrefix("postgres") else { return nil }
            do {
                var settings = try PostgresSettings(url: url)
                if let password { settings.password = password }
                return settings
            } catch {
                throw SettingsError(message: error.description)
            }
        }
    }

    /// The SQLite file path of ``url``.
    public var sqlitePath: String { String(url.dropFirst("sqlite:".count)) }
}
