import Configuration
import Foundation
import GatewayStoragePostgres
import LTICore
import Skillable
import SystemPackage

/// Every setting of the gateway, read once at start.
///
/// Sources, highest first: the environment (names of SPEC.md, e.g. `GATEWAY_PUBLIC_URL`), then the JSON
/// file `config/gateway.json` (same keys, nested: `{"gateway": {"public-url": …}}`), then these defaults.
/// Secrets (`SKILLABLE_API_KEY`, …) are read from the environment only — the variable itself, or a file
/// named by `<NAME>_FILE` — never from the configuration file.
public struct GatewaySettings: Sendable {
    /// The external base URL used in every URL the gateway hands out (`GATEWAY_PUBLIC_URL`).
    public var publicURL: String
    /// Listen address (`GATEWAY_HOST`, `GATEWAY_PORT`); port 0 picks a free port.
    public var host: String
    public var port: Int
    /// `sqlite:PATH`, or `postgres://user@host:port/database?sslmode=…&pool=…&connect_timeout=…` for
    /// several instances on one database (`GATEWAY_DATABASE_URL`).
    public var databaseURL: String
    /// - Important: Secret (`GATEWAY_DATABASE_PASSWORD`): the PostgreSQL password, when not in the URL.
    public var databasePassword: String?
    /// - Important: Secret (`GATEWAY_KEY_ENCRYPTION_KEY`): 32 bytes, base64, sealing signing keys in PostgreSQL.
    public var keyEncryptionKey: String?
    /// Apply database migrations when the server starts (`GATEWAY_MIGRATE_ON_START`); off for deployments
    /// that run `lti-gateway migrate` separately.
    public var migrateOnStart: Bool
    /// Signing keys folder (`GATEWAY_KEYS_DIR`).
    public var keysDirectory: String
    /// Lab on Demand API base (`SKILLABLE_BASE_URL`); nil → the built-in sandbox.
    public var skillableBaseURL: String?
    /// - Important: Secret (`SKILLABLE_API_KEY`).
    public var skillableAPIKey: String?
    /// Deadline of one Skillable call (`SKILLABLE_TIMEOUT_SECONDS`).
    public var skillableTimeoutSeconds: Double
    /// Hosts besides the API's own that Skillable lab URLs may be on (`SKILLABLE_LAB_HOSTS`, comma-separated;
    /// a leading `.` allows subdomains).
    public var skillableLabHosts: [String]
    /// Leeway for `exp` / `iat` / `nbf` (`GATEWAY_CLOCK_SKEW_SECONDS`).
    public var clockSkewSeconds: Double
    /// How long a login waits for its launch (`GATEWAY_STATE_TTL_SECONDS`).
    public var stateLifetimeSeconds: Double
    /// Largest accepted id_token (`GATEWAY_MAX_TOKEN_BYTES`).
    public var maxTokenBytes: Int
    /// Seconds between clean-ups of expired state (`GATEWAY_CLEANUP_INTERVAL_SECONDS`).
    public var cleanupIntervalSeconds: Double
    /// `trace` … `critical` (`GATEWAY_LOG_LEVEL`).
    public var logLevel: String
    /// An unknown kid re-fetches a platform's JWKS at most once per this many seconds (`GATEWAY_JWKS_REFETCH_SECONDS`).
    public var jwksRefetchSeconds: Double
    /// RSA size of new signing keys (`GATEWAY_KEY_BITS`).
    public var keyBits: Int
    /// Days a rotated-out key stays published (`GATEWAY_KEY_GRACE_DAYS`).
    public var keyGraceDays: Double
    /// `Cache-Control: max-age` of the tool's JWKS (`GATEWAY_JWKS_MAX_AGE_SECONDS`).
    public var jwksMaxAgeSeconds: Int
    /// Seconds `next` must be published before `keys rotate` promotes it (`GATEWAY_KEY_MIN_NEXT_AGE_SECONDS`).
    public var keyMinNextAgeSeconds: Double
    /// How often a running server looks for a rotation done elsewhere (`GATEWAY_KEY_RELOAD_SECONDS`).
    public var keyReloadSeconds: Double
    /// How long the Skillable lab list is used before a background refresh (`SKILLABLE_CATALOG_TTL_SECONDS`).
    public var catalogTTLSeconds: Double
    /// How long an instructor may take in the lab picker (`GATEWAY_PICKER_TTL_SECONDS`).
    public var pickerLifetimeSeconds: Double
    /// Default maximum score of gradebook columns created by deep linking (`GATEWAY_SCORE_MAXIMUM`).
    public var defaultScoreMaximum: Double
    /// How long a learner waits in all for a lab launch, retries included (`SKILLABLE_LAUNCH_DEADLINE_SECONDS`).
    public var launchDeadlineSeconds: Double
    /// Attempts of one launch on outages (`SKILLABLE_LAUNCH_ATTEMPTS`).
    public var launchAttempts: Int
    /// How a deferred-launch answer is recognised (`SKILLABLE_DEFERRED_LAUNCH_RULE`: url-with-non-success, field:NAME, off).
    public var deferredLaunchRule: DeferredLaunchRule
    /// How long a finished launch is shared with further clicks of the same learner and lab (`GATEWAY_LAUNCH_JOIN_SECONDS`).
    public var launchJoinSeconds: Double
    /// How long the deferred-launch page's actions stay valid (`GATEWAY_LAB_SESSION_TTL_SECONDS`).
    public var labSessionSeconds: Double
    /// SkyPrep admin API base (`SKYPREP_BASE_URL`, e.g. https://api.skyprep.io/admin/api); nil → the built-in fake.
    public var skyPrepBaseURL: String?
    /// - Important: Secret (`SKYPREP_ACCT_KEY`): the customer's SkyPrep domain, e.g. acme.skyprepapp.com.
    public var skyPrepAcctKey: String?
    /// - Important: Secret (`SKYPREP_API_KEY`).
    public var skyPrepAPIKey: String?
    /// Client-side rate limit of SkyPrep calls (`SKYPREP_CALLS_PER_MINUTE`).
    public var skyPrepCallsPerMinute: Int
    /// Send the LMS course title as the learner's SkyPrep group on SSO (`SKYPREP_GROUP_SYNC`).
    public var skyPrepGroupSync: Bool
    /// First delay before a failed SkyPrep provisioning runs again; doubles per attempt up to an hour (`SKYPREP_RETRY_SECONDS`).
    public var skyPrepRetrySeconds: Double
    /// How long a registration and its options are reused before the store is read again
    /// (`GATEWAY_REGISTRATION_CACHE_SECONDS`; 0 reads every time). Changes by `platforms …` take effect within it.
    public var registrationCacheSeconds: Double
    /// How often background workers look for due jobs queued by any instance (`GATEWAY_JOB_POLL_SECONDS`).
    public var jobPollSeconds: Double
    /// Connections kept per vendor or platform host (`GATEWAY_OUTBOUND_CONNECTIONS`); too few makes launches
    /// queue behind each other when the vendor is slow.
    public var outboundConnectionsPerHost: Int
    /// Delay of every answer of the built-in sandbox, to stand in for a real vendor (`GATEWAY_SANDBOX_LATENCY_MS`).
    public var sandboxLatencyMilliseconds: Int

    /// A `SKILLABLE_DEFERRED_LAUNCH_RULE` that could not be parsed (reported by ``validate()``).
    var invalidDeferredRule: String?

    /// Whether the built-in Skillable sandbox serves this gateway.
    public var usesSkillableSandbox: Bool { skillableBaseURL == nil }

    public init(
        publicURL: String = "http://127.0.0.1:8080", host: String = "127.0.0.1", port: Int = 8080,
        databaseURL: String = "sqlite:data/gateway.sqlite", databasePassword: String? = nil, keyEncryptionKey: String? = nil,
        migrateOnStart: Bool = true, keysDirectory: String = "keys",
        skillableBaseURL: String? = nil, skillableAPIKey: String? = nil, skillableTimeoutSeconds: Double = 10,
        skillableLabHosts: [String] = [".labondemand.com"], clockSkewSeconds: Double = 30,
        stateLifetimeSeconds: Double = 600, maxTokenBytes: Int = 64 * 1024, cleanupIntervalSeconds: Double = 60,
        logLevel: String = "info", jwksRefetchSeconds: Double = 10, keyBits: Int = 2048, keyGraceDays: Double = 7,
        jwksMaxAgeSeconds: Int = 3600, keyMinNextAgeSeconds: Double = 7200, keyReloadSeconds: Double = 15,
        catalogTTLSeconds: Double = 300, pickerLifetimeSeconds: Double = 3600, defaultScoreMaximum: Double = 100,
        launchDeadlineSeconds: Double = 20, launchAttempts: Int = 3, deferredLaunchRule: DeferredLaunchRule = .urlWithNonSuccess,
        launchJoinSeconds: Double = 10, labSessionSeconds: Double = 900, sandboxLatencyMilliseconds: Int = 0,
        outboundConnectionsPerHost: Int = 256, skyPrepBaseURL: String? = nil, skyPrepAcctKey: String? = nil,
        skyPrepAPIKey: String? = nil, skyPrepCallsPerMinute: Int = 100, skyPrepGroupSync: Bool = false,
        skyPrepRetrySeconds: Double = 30, jobPollSeconds: Double = 5, registrationCacheSeconds: Double = 5
    ) {
        self.publicURL = publicURL
        self.host = host
        self.port = port
        self.databaseURL = databaseURL
        self.databasePassword = databasePassword
        self.keyEncryptionKey = keyEncryptionKey
        self.migrateOnStart = migrateOnStart
        self.keysDirectory = keysDirectory
        self.skillableBaseURL = skillableBaseURL
        self.skillableAPIKey = skillableAPIKey
        self.skillableTimeoutSeconds = skillableTimeoutSeconds
        self.skillableLabHosts = skillableLabHosts
        self.clockSkewSeconds = clockSkewSeconds
        self.stateLifetimeSeconds = stateLifetimeSeconds
        self.maxTokenBytes = maxTokenBytes
        self.cleanupIntervalSeconds = cleanupIntervalSeconds
        self.logLevel = logLevel
        self.jwksRefetchSeconds = jwksRefetchSeconds
        self.keyBits = keyBits
        self.keyGraceDays = keyGraceDays
        self.jwksMaxAgeSeconds = jwksMaxAgeSeconds
        self.keyMinNextAgeSeconds = keyMinNextAgeSeconds
        self.keyReloadSeconds = keyReloadSeconds
        self.catalogTTLSeconds = catalogTTLSeconds
        self.pickerLifetimeSeconds = pickerLifetimeSeconds
        self.defaultScoreMaximum = defaultScoreMaximum
        self.launchDeadlineSeconds = launchDeadlineSeconds
        self.launchAttempts = launchAttempts
        self.deferredLaunchRule = deferredLaunchRule
        self.launchJoinSeconds = launchJoinSeconds
        self.labSessionSeconds = labSessionSeconds
        self.sandboxLatencyMilliseconds = sandboxLatencyMilliseconds
        self.outboundConnectionsPerHost = outboundConnectionsPerHost
        self.skyPrepBaseURL = skyPrepBaseURL
        self.skyPrepAcctKey = skyPrepAcctKey
        self.skyPrepAPIKey = skyPrepAPIKey
        self.skyPrepCallsPerMinute = skyPrepCallsPerMinute
        self.skyPrepGroupSync = skyPrepGroupSync
        self.skyPrepRetrySeconds = skyPrepRetrySeconds
        self.jobPollSeconds = jobPollSeconds
        self.registrationCacheSeconds = registrationCacheSeconds
    }

    /// Reads the settings from `config` (keys like `gateway.public-url` ↔ `GATEWAY_PUBLIC_URL`), secrets excepted.
    public init(config: ConfigReader) {
        let defaults = GatewaySettings()
        self.init(
            publicURL: config.string(forKey: "gateway.public-url", default: defaults.publicURL),
            host: config.string(forKey: "gateway.host", default: defaults.host),
            port: config.int(forKey: "gateway.port", default: defaults.port),
            databaseURL: config.string(forKey: "gateway.database-url", default: defaults.databaseURL),
            migrateOnStart: config.bool(forKey: "gateway.migrate-on-start", default: defaults.migrateOnStart),
            keysDirectory: config.string(forKey: "gateway.keys-dir", default: defaults.keysDirectory),
            skillableBaseURL: config.string(forKey: "skillable.base-url"),
            skillableAPIKey: nil,
            skillableTimeoutSeconds: config.double(forKey: "skillable.timeout-seconds", default: defaults.skillableTimeoutSeconds),
            skillableLabHosts: config.string(forKey: "skillable.lab-hosts")
                .map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? defaults.skillableLabHosts,
            clockSkewSeconds: config.double(forKey: "gateway.clock-skew-seconds", default: defaults.clockSkewSeconds),
            stateLifetimeSeconds: config.double(forKey: "gateway.state-ttl-seconds", default: defaults.stateLifetimeSeconds),
            maxTokenBytes: config.int(forKey: "gateway.max-token-bytes", default: defaults.maxTokenBytes),
            cleanupIntervalSeconds: config.double(forKey: "gateway.cleanup-interval-seconds", default: defaults.cleanupIntervalSeconds),
            logLevel: config.string(forKey: "gateway.log-level", default: defaults.logLevel),
            jwksRefetchSeconds: config.double(forKey: "gateway.jwks-refetch-seconds", default: defaults.jwksRefetchSeconds),
            keyBits: config.int(forKey: "gateway.key-bits", default: defaults.keyBits),
            keyGraceDays: config.double(forKey: "gateway.key-grace-days", default: defaults.keyGraceDays),
            jwksMaxAgeSeconds: config.int(forKey: "gateway.jwks-max-age-seconds", default: defaults.jwksMaxAgeSeconds),
            keyMinNextAgeSeconds: config.double(forKey: "gateway.key-min-next-age-seconds", default: defaults.keyMinNextAgeSeconds),
            keyReloadSeconds: config.double(forKey: "gateway.key-reload-seconds", default: defaults.keyReloadSeconds),
            catalogTTLSeconds: config.double(forKey: "skillable.catalog-ttl-seconds", default: defaults.catalogTTLSeconds),
            pickerLifetimeSeconds: config.double(forKey: "gateway.picker-ttl-seconds", default: defaults.pickerLifetimeSeconds),
            defaultScoreMaximum: config.double(forKey: "gateway.score-maximum", default: defaults.defaultScoreMaximum),
            launchDeadlineSeconds: config.double(forKey: "skillable.launch-deadline-seconds", default: defaults.launchDeadlineSeconds),
            launchAttempts: config.int(forKey: "skillable.launch-attempts", default: defaults.launchAttempts),
            deferredLaunchRule: DeferredLaunchRule(setting: config.string(forKey: "skillable.deferred-launch-rule", default: "url-with-non-success"))
                ?? .urlWithNonSuccess,
            launchJoinSeconds: config.double(forKey: "gateway.launch-join-seconds", default: defaults.launchJoinSeconds),
            labSessionSeconds: config.double(forKey: "gateway.lab-session-ttl-seconds", default: defaults.labSessionSeconds),
            sandboxLatencyMilliseconds: config.int(forKey: "gateway.sandbox-latency-ms", default: defaults.sandboxLatencyMilliseconds),
            outboundConnectionsPerHost: config.int(forKey: "gateway.outbound-connections", default: defaults.outboundConnectionsPerHost),
            skyPrepBaseURL: config.string(forKey: "skyprep.base-url"),
            skyPrepCallsPerMinute: config.int(forKey: "skyprep.calls-per-minute", default: defaults.skyPrepCallsPerMinute),
            skyPrepGroupSync: config.bool(forKey: "skyprep.group-sync", default: defaults.skyPrepGroupSync),
            skyPrepRetrySeconds: config.double(forKey: "skyprep.retry-seconds", default: defaults.skyPrepRetrySeconds),
            jobPollSeconds: config.double(forKey: "gateway.job-poll-seconds", default: defaults.jobPollSeconds),
            registrationCacheSeconds: config.double(forKey: "gateway.registration-cache-seconds", default: defaults.registrationCacheSeconds))
        invalidDeferredRule = config.string(forKey: "skillable.deferred-launch-rule").flatMap { DeferredLaunchRule(setting: $0) == nil ? $0 : nil }
    }

    /// Loads settings from the environment over `configFile` (when it exists).
    public static func load(
        configFile: String = "config/gateway.json",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> GatewaySettings {
        // Secrets never pass through the configuration reader: the file cannot supply them.
        var plain = environment
        for name in secretNames { plain[name] = nil; plain[name + "_FILE"] = nil }
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: plain)]
        if FileManager.default.fileExists(atPath: configFile) {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: .init(configFile)))
            } catch {
                throw SettingsError(message: "config file \(configFile) is not valid JSON")
            }
        }
        var settings = GatewaySettings(config: ConfigReader(providers: providers))
        settings.skillableAPIKey = try secret("SKILLABLE_API_KEY", environment: environment)
        settings.skyPrepAcctKey = try secret("SKYPREP_ACCT_KEY", environment: environment)
        settings.skyPrepAPIKey = try secret("SKYPREP_API_KEY", environment: environment)
        settings.databasePassword = try secret("GATEWAY_DATABASE_PASSWORD", environment: environment)
        settings.keyEncryptionKey = try secret("GATEWAY_KEY_ENCRYPTION_KEY", environment: environment)
        try settings.validate()
        return settings
    }

    /// The environment variables that hold secrets.
    static let secretNames = [
        "SKILLABLE_API_KEY", "SKYPREP_API_KEY", "SKYPREP_ACCT_KEY", "GATEWAY_WEBHOOK_SECRET",
        "GATEWAY_DATABASE_PASSWORD", "GATEWAY_KEY_ENCRYPTION_KEY",
    ]

    /// A secret from `NAME`, or from the file named by `NAME_FILE` (surrounding whitespace trimmed).
    static func secret(_ name: String, environment: [String: String]) throws -> String? {
        if let value = environment[name], !value.isEmpty { return value }
        guard let path = environment[name + "_FILE"], !path.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SettingsError(message: "\(name)_FILE names \(path), which cannot be read")
        }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw SettingsError(message: "\(name)_FILE names an empty file") }
        return value
    }

    /// Refuses settings that cannot work, with the setting's name.
    public func validate() throws {
        guard let url = URLComponents(string: publicURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
            url.path.isEmpty || url.path == "/"
        else {
            throw SettingsError(message: "GATEWAY_PUBLIC_URL must be an absolute http(s) URL without a path, e.g. https://lti.example.edu")
        }
        guard (0...65535).contains(port) else { throw SettingsError(message: "GATEWAY_PORT must be 0…65535") }
        if databaseURL.hasPrefix("postgres") {
            _ = try postgres
            guard let kek = keyEncryptionKey, KeyEncryptionKey(base64: kek) != nil else {
                throw SettingsError(
                    message:
                        "GATEWAY_KEY_ENCRYPTION_KEY must be set to 32 random bytes in base64 (openssl rand -base64 32) with a PostgreSQL database: it seals the signing keys stored there"
                )
            }
        } else if !databaseURL.hasPrefix("sqlite:") || sqlitePath.isEmpty {
            throw SettingsError(message: "GATEWAY_DATABASE_URL must be sqlite:PATH or postgres://user@host:5432/database")
        }
        if let skillableBaseURL {
            guard URLAuthority(skillableBaseURL) != nil else { throw SettingsError(message: "SKILLABLE_BASE_URL must be an absolute http(s) URL") }
            guard let key = skillableAPIKey, !key.isEmpty else {
                throw SettingsError(message: "SKILLABLE_API_KEY must be set when SKILLABLE_BASE_URL is set")
            }
        }
        guard clockSkewSeconds >= 0, clockSkewSeconds <= 300 else { throw SettingsError(message: "GATEWAY_CLOCK_SKEW_SECONDS must be 0…300") }
        guard stateLifetimeSeconds >= 30 else { throw SettingsError(message: "GATEWAY_STATE_TTL_SECONDS must be at least 30") }
        guard [2048, 3072, 4096].contains(keyBits) else { throw SettingsError(message: "GATEWAY_KEY_BITS must be 2048, 3072 or 4096") }
        guard keyGraceDays >= 0 else { throw SettingsError(message: "GATEWAY_KEY_GRACE_DAYS must be 0 or more") }
        guard jwksMaxAgeSeconds >= 0, Double(jwksMaxAgeSeconds) < keyMinNextAgeSeconds else {
            throw SettingsError(
                message:
                    "GATEWAY_JWKS_MAX_AGE_SECONDS must be shorter than GATEWAY_KEY_MIN_NEXT_AGE_SECONDS, so platforms see a next key before it signs")
        }
        if let invalidDeferredRule {
            throw SettingsError(message: "SKILLABLE_DEFERRED_LAUNCH_RULE must be url-with-non-success, field:NAME or off, not \(invalidDeferredRule)")
        }
        if let skyPrepBaseURL {
            guard URLAuthority(skyPrepBaseURL) != nil else { throw SettingsError(message: "SKYPREP_BASE_URL must be an absolute http(s) URL") }
            guard skyPrepAcctKey?.isEmpty == false, skyPrepAPIKey?.isEmpty == false else {
                throw SettingsError(message: "SKYPREP_ACCT_KEY and SKYPREP_API_KEY must be set when SKYPREP_BASE_URL is set")
            }
        }
        guard (1...10_000).contains(skyPrepCallsPerMinute) else { throw SettingsError(message: "SKYPREP_CALLS_PER_MINUTE must be 1…10000") }
        guard (1...4096).contains(outboundConnectionsPerHost) else { throw SettingsError(message: "GATEWAY_OUTBOUND_CONNECTIONS must be 1…4096") }
        guard (0...10_000).contains(sandboxLatencyMilliseconds) else { throw SettingsError(message: "GATEWAY_SANDBOX_LATENCY_MS must be 0…10000") }
        guard (1...10).contains(launchAttempts) else { throw SettingsError(message: "SKILLABLE_LAUNCH_ATTEMPTS must be 1…10") }
        guard launchDeadlineSeconds >= 1, launchDeadlineSeconds <= 120 else {
            throw SettingsError(message: "SKILLABLE_LAUNCH_DEADLINE_SECONDS must be 1…120")
        }
        guard launchJoinSeconds >= 0, launchJoinSeconds <= 300 else { throw SettingsError(message: "GATEWAY_LAUNCH_JOIN_SECONDS must be 0…300") }
        guard labSessionSeconds >= 60, labSessionSeconds <= 86_400 else {
            throw SettingsError(message: "GATEWAY_LAB_SESSION_TTL_SECONDS must be 60…86400")
        }
        guard catalogTTLSeconds >= 1 else { throw SettingsError(message: "SKILLABLE_CATALOG_TTL_SECONDS must be at least 1") }
        guard pickerLifetimeSeconds >= 60, pickerLifetimeSeconds <= 86_400 else {
            throw SettingsError(message: "GATEWAY_PICKER_TTL_SECONDS must be 60…86400")
        }
        guard defaultScoreMaximum > 0, defaultScoreMaximum <= 10_000 else { throw SettingsError(message: "GATEWAY_SCORE_MAXIMUM must be 1…10000") }
        guard keyReloadSeconds >= 0.1, keyReloadSeconds <= 60 else { throw SettingsError(message: "GATEWAY_KEY_RELOAD_SECONDS must be 0.1…60") }
        guard jwksRefetchSeconds >= 0.1 else { throw SettingsError(message: "GATEWAY_JWKS_REFETCH_SECONDS must be at least 0.1") }
        guard maxTokenBytes >= 4096 else { throw SettingsError(message: "GATEWAY_MAX_TOKEN_BYTES must be at least 4096") }
        guard skyPrepRetrySeconds >= 0.1, skyPrepRetrySeconds <= 3600 else { throw SettingsError(message: "SKYPREP_RETRY_SECONDS must be 0.1…3600") }
        guard jobPollSeconds >= 0.05, jobPollSeconds <= 600 else { throw SettingsError(message: "GATEWAY_JOB_POLL_SECONDS must be 0.05…600") }
        guard registrationCacheSeconds >= 0, registrationCacheSeconds <= 300 else {
            throw SettingsError(message: "GATEWAY_REGISTRATION_CACHE_SECONDS must be 0…300")
        }
    }

    /// The key management policy these settings describe.
    public var keyPolicy: KeyPolicy {
        KeyPolicy(keyBits: keyBits, retiringGrace: keyGraceDays * 86_400, jwksMaxAge: jwksMaxAgeSeconds, minimumNextAge: keyMinNextAgeSeconds)
    }

    /// The normalised public base URL (no trailing slash).
    public var baseURL: String {
        publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
    }

    /// The PostgreSQL connection of ``databaseURL`` (password from GATEWAY_DATABASE_PASSWORD when set); nil for SQLite.
    public var postgres: PostgresSettings? {
        get throws(SettingsError) {
            guard databaseURL.hasPrefix("postgres") else { return nil }
            do {
                var settings = try PostgresSettings(url: databaseURL)
                if let databasePassword { settings.password = databasePassword }
                return settings
            } catch {
                throw SettingsError(message: error.description)
            }
        }
    }

    /// The SQLite file path of ``databaseURL``.
    public var sqlitePath: String { String(databaseURL.dropFirst("sqlite:".count)) }
}

/// A setting that cannot work; the message names it.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
