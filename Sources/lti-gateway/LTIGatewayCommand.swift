import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatewayApp
import SkyPrep
import GatewayStorage
import LTICore
import Hummingbird
import Logging
import Sandbox
import ServiceLifecycle

@main
struct LTIGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lti-gateway",
        abstract: "An LTI 1.3 tool that launches learners from their LMS into Skillable labs.",
        subcommands: [Serve.self, Migrate.self, SandboxCommand.self, Platforms.self, Keys.self, ToolConfig.self, SkyPrepCommand.self, Jobs.self])
}

/// Settings and logging shared by the commands.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "JSON configuration file (environment variables override it).")
    var configFile = "config/gateway.json"

    func settings() async throws -> GatewaySettings {
        do {
            return try await GatewaySettings.load(configFile: configFile)
        } catch let error as SettingsError {
            throw CommandFailure(error.message)
        }
    }

    func logger(_ settings: GatewaySettings, label: String = "lti-gateway") -> Logger {
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, level: level) }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let settings = try await common.settings()
        let logger = common.logger(settings)
        let gateway: Gateway
        do {
            gateway = try await buildGateway(settings: settings, logger: logger)
        } catch let error as SettingsError {
            throw CommandFailure(error.message)
        }
        try await gateway.application.runService()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations and exit (for deployments that set GATEWAY_MIGRATE_ON_START=false).")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let settings = try await common.settings()
        var logger = quietLogger
        logger.logLevel = .info
        let store = try await openStore(settings: settings, logger: logger, migrate: false)
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw CommandFailure("migration failed: \(error)")
        }
        try await store.close()
        print("Database is up to date.")
    }
}

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run only the local Skillable and SkyPrep fakes (for a gateway elsewhere).",
        discussion: "Serves the Lab API v3 fake at http://HOST:PORT/sandbox/skillable/api/v3 (api_key header: SKILLABLE_API_KEY, default sandbox-key) and the SkyPrep admin API fake at http://HOST:PORT/sandbox/skyprep/admin/api (SKYPREP_ACCT_KEY and SKYPREP_API_KEY, defaults sandbox.skyprepapp.com and sandbox-key).")
    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port.") var port = 8081

    func run() async throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        let key = ProcessInfo.processInfo.environment["SKILLABLE_API_KEY"] ?? "sandbox-key"
        let sandbox = SkillableSandbox(apiKey: key)
        let environment = ProcessInfo.processInfo.environment
        let skyPrep = SkyPrepSandbox(acctKey: environment["SKYPREP_ACCT_KEY"] ?? "sandbox.skyprepapp.com",
                                     apiKey: environment["SKYPREP_API_KEY"] ?? "sandbox-key")
        let router = Router()
        sandbox.addRoutes(to: router)
        skyPrep.addRoutes(to: router)
        let logger = Logger(label: "lti-gateway-sandbox")
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "lti-gateway-sandbox"),
                              onServerRunning: { channel in
                                  logger.info("sandbox listening", metadata: ["url": "http://\(host):\(channel.localAddress?.port ?? port)\(sandbox.prefix)/api/v3"])
                              }, logger: logger)
        try await app.runService()
    }
}

struct Platforms: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register, list and remove LMS platforms, and set how their learners' labs launch.",
        subcommands: [Add.self, List.self, Remove.self, SetOptions.self, SetSkyPrep.self])

    /// Launch options shared by `add` and `set-options`.
    struct LaunchOptionFlags: ParsableArguments {
        @Option(name: .customLong("max-active-labs"), help: "Skillable maxActiveLabs for these learners.") var maxActiveLabs: Int?
        @Option(name: .customLong("max-saved-labs"), help: "Skillable maxSavedLabs.") var maxSavedLabs: Int?
        @Option(name: .customLong("duration-minutes"), help: "Lab duration in minutes.") var durationMinutes: Int?
        @Option(name: .customLong("region-id"), help: "Skillable delivery region id.") var regionID: Int?
        @Option(help: "Lab language (default: the launch's locale).") var lang: String?
        @Flag(name: .customLong("no-tag"), help: "Do not tag labs with the platform and course.") var noTag = false
        @Flag(name: .customLong("context-variables"), help: "Fill lab variables LtiContextId, LtiContextTitle, LtiRoles.")
        var contextVariables = false
        @Option(name: .customLong("platform-storage"),
                help: "LTI Platform Storage for launches in the LMS frame: auto (when the login asks for it), on, off.")
        var platformStorage: PlatformStorageMode?
        @Option(name: .customLong("storage-frame"), help: "Frame for storage messages when the login names none (Blackboard: lti_storage_frame).")
        var storageFrame: String?
        @Flag(name: .customLong("storage-any-origin"), help: "Send storage messages to any origin (*), for older Canvas versions.")
        var storageAnyOrigin = false

        var options: PlatformLaunchOptions {
            PlatformLaunchOptions(maxActiveLabs: maxActiveLabs, maxSavedLabs: maxSavedLabs, durationMinutes: durationMinutes,
                                  regionID: regionID, lang: lang, sendTag: !noTag, sendContextVariables: contextVariables,
                                  platformStorage: platformStorage, storageFrame: storageFrame, storageAnyOrigin: storageAnyOrigin ? true : nil)
        }
    }

    struct SetOptions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-options", abstract: "Set how labs launch for a platform's learners (replaces earlier options).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @OptionGroup var launch: LaunchOptionFlags

        func run() async throws {
            let settings = try await common.settings()
            try await withStore(settings) { store in
                try await PlatformAdministration.setLaunchOptions(store: store, registrationID: id, options: launch.options)
            }
            print("Launch options of \(id): \(PlatformAdministration.describe(launch.options))")
        }
    }

    struct SetSkyPrep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-skyprep", abstract: "Set how a platform's learners are provisioned in SkyPrep (replaces earlier SkyPrep options).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @Flag(inversion: .prefixedNo, help: "Create and update these learners' SkyPrep users on launches.") var provisioning = true
        @Option(help: "SkyPrep account (acct_key, e.g. acme.skyprepapp.com); default SKYPREP_ACCT_KEY.") var account: String?
        @Option(name: .customLong("api-key-variable"), help: "Environment variable holding that account's API key; default SKYPREP_API_KEY.")
        var apiKeyVariable: String?
        @Flag(inversion: .prefixedNo, help: "Send the LMS course title as a SkyPrep group on sign-in (default: SKYPREP_GROUP_SYNC).")
        var groupSync: Bool?
        @Flag(name: .customLong("link-by-email"), help: "Link a learner to an existing SkyPrep user with the same email (off: never merge by email).")
        var linkByEmail = false
        @Option(name: .customLong("synthetic-email-domain"), help: "Provision learners without an email as <learner id>@DOMAIN (default: skip them).")
        var syntheticEmailDomain: String?
        @Option(name: .customLong("role"), help: "Map an LTI role to a SkyPrep role, e.g. Instructor=manager (repeat for several).")
        var roles: [String] = []
        @Flag(inversion: .prefixedNo, help: "Enrol the learner in the launch's skyprep_course_id on sign-in.") var enrol = true

        func run() async throws {
            var roleMap: [String: String] = [:]
            for pair in roles {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw CommandFailure("--role takes LTI_ROLE=SKYPREP_ROLE, got \(pair)") }
                roleMap[parts[0]] = parts[1]
            }
            let options = PlatformSkyPrepOptions(
                provisioning: provisioning, account: account, apiKeyVariable: apiKeyVariable, groupSync: groupSync, linkByEmail: linkByEmail,
                syntheticEmailDomain: syntheticEmailDomain, roleMap: roleMap, enrolOnSSO: enrol)
            let settings = try await common.settings()
            try await withStore(settings) { store in
                try await PlatformAdministration.setSkyPrepOptions(store: store, registrationID: id, options: options)
            }
            print("SkyPrep options of \(id): \(PlatformAdministration.describe(options))")
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register an LMS platform (one issuer and client id).")
        @OptionGroup var common: CommonOptions
        @Option(help: "The platform's issuer (iss), e.g. https://canvas.instructure.com.") var issuer: String
        @Option(name: .customLong("client-id"), help: "The client id the LMS gave this tool.") var clientID: String
        @Option(name: .customLong("auth-url"), help: "The platform's OIDC authorization endpoint.") var authURL: String
        @Option(name: .customLong("token-url"), help: "The platform's OAuth 2 token endpoint.") var tokenURL: String
        @Option(name: .customLong("jwks-url"), help: "The platform's public key set URL.") var jwksURL: String
        @Option(name: .customLong("deployment"), help: "A deployment id (repeat for several).") var deployments: [String] = []
        @OptionGroup var launch: LaunchOptionFlags

        func run() async throws {
            let settings = try await common.settings()
            if let problem = launch.options.problem { throw CommandFailure(problem) }
            let registration = try await withStore(settings) { store in
                let registration = try await PlatformAdministration.add(
                    store: store, issuer: issuer, clientID: clientID, authURL: authURL, tokenURL: tokenURL,
                    jwksURL: jwksURL, deployments: deployments)
                try await PlatformAdministration.setLaunchOptions(store: store, registrationID: registration.id, options: launch.options)
                return registration
            }
            print("Registered platform (issuer \(registration.issuer), client id \(registration.clientID)):")
            print(registration.id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered platforms.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            let rows = try await withStore(settings) { store in
                var rows: [(PlatformRegistration, PlatformLaunchOptions, PlatformSkyPrepOptions)] = []
                for registration in try await store.allRegistrations() {
                    rows.append((registration, try await store.launchOptions(registrationID: registration.id),
                                 try await store.skyPrepOptions(registrationID: registration.id)))
                }
                return rows
            }
            print(PlatformAdministration.table(rows), terminator: "")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a platform registration and its deployments.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String

        func run() async throws {
            let settings = try await common.settings()
            let removed = try await withStore(settings) { try await $0.removeRegistration(id: id) }
            guard removed else { throw CommandFailure("no platform with id \(id)") }
            print("Removed platform \(id)")
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The tool's signing keys: list, rotate, retire.",
        discussion: "Keys go next → active → retiring → removed. A running gateway picks up a change within GATEWAY_KEY_RELOAD_SECONDS (default 15 s). See the key-rotation runbook in the README.",
        subcommands: [List.self, Rotate.self, Retire.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys with their state and dates.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            let ring = try await withKeyStore(settings) { try await $0.loadKeyRing() }
            guard !ring.keys.isEmpty else {
                print("No signing keys yet; they are created when the gateway first starts (or by keys rotate).")
                return
            }
            print(KeyAdministration.table(ring), terminator: "")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the next key active, the active key retiring, and create a new next key.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Promote the next key even if platforms may not have fetched it yet (emergency rotation).")
        var force = false

        func run() async throws {
            let settings = try await common.settings()
            let ring = try await withKeyStore(settings) { try await KeyAdministration.rotate(store: $0, policy: settings.keyPolicy, force: force) }
            print(KeyAdministration.table(ring), terminator: "")
            print("Rotated: \(ring.active?.kid ?? "-") now signs.")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a retiring key from the key set at once (for a compromised key).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The kid of a retiring key (see keys list).") var kid: String

        func run() async throws {
            let settings = try await common.settings()
            let ring = try await withKeyStore(settings) { try await KeyAdministration.retire(store: $0, kid: kid) }
            print(KeyAdministration.table(ring), terminator: "")
            print("Retired \(kid): it is no longer published.")
        }
    }
}

/// Opens the configured store, runs `body`, and closes the store on every path; refusals become a
/// one-line reason and a non-zero exit.
func withStore<T>(_ settings: GatewaySettings, _ body: (any GatewayStore) async throws -> T) async throws -> T {
    let store = try await openStore(settings: settings, logger: quietLogger)
    let result: T
    do {
        result = try await body(store)
    } catch let error as SettingsError {
        try? await store.close()
        throw CommandFailure(error.message)
    } catch {
        try? await store.close()
        throw error
    }
    try await store.close()
    return result
}

/// Runs a key operation, turning refusals into a one-line reason and a non-zero exit.
/// Runs `body` with the configured signing-key store (files, or the shared database); key and storage
/// refusals become a one-line reason.
func withKeyStore<T>(_ settings: GatewaySettings, _ body: (any SigningKeyStore) async throws -> T) async throws -> T {
    try await withStore(settings) { store in
        do {
            return try await body(try signingKeyStore(settings: settings, store: store))
        } catch let error as KeyRingError {
            throw CommandFailure(error.description)
        } catch let error as StorageError {
            throw CommandFailure(error.message)
        }
    }
}

struct ToolConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool-config",
        abstract: "Print what an LMS administrator enters to install the gateway (URLs, public key, Canvas JSON, Moodle form).")
    @OptionGroup var common: CommonOptions
    @Option(help: "Include this registered platform's issuer, client id and deployments.") var platform: String?
    @Flag(help: "Print JSON (the same document as GET /lti/config).") var json = false

    func run() async throws {
        let settings = try await common.settings()
        let keys = try await withKeyStore(settings) { try await ToolKeyService.start(store: $0, policy: settings.keyPolicy, now: Date()) }
        var registration: PlatformRegistration?
        if let platform {
            registration = try await withStore(settings) { try await $0.registration(id: platform) }
            guard registration != nil else { throw CommandFailure("no platform with id \(platform) (see platforms list)") }
        }
        guard let active = keys.ring.active else { throw CommandFailure("no active signing key") }
        let configuration = ToolConfiguration(baseURL: settings.baseURL, activeKey: active, registration: registration)
        if json {
            print(String(data: try configuration.json(), encoding: .utf8) ?? "{}")
        } else {
            print(configuration.text(), terminator: "")
        }
    }
}

/// A command that could not do its work: ArgumentParser prints `Error: <reason>` on one line and exits 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ reason: String) { description = reason }
}

/// Commands other than `serve` log only warnings and errors (stdout is for their answer).
let quietLogger: Logger = {
    var logger = Logger(label: "lti-gateway") { GatewayLogHandler(label: $0, level: .warning) }
    logger.logLevel = .warning
    return logger
}()

struct SkyPrepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skyprep", abstract: "SkyPrep admin API checks.", subcommands: [TestConnection.self])

    struct TestConnection: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-connection", abstract: "Call SkyPrep's test_connection with the configured keys; print success or the exact failure.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            guard let base = settings.skyPrepBaseURL, let acct = settings.skyPrepAcctKey, let key = settings.skyPrepAPIKey else {
                throw CommandFailure("SKYPREP_BASE_URL, SKYPREP_ACCT_KEY and SKYPREP_API_KEY are not all set: the gateway uses its built-in SkyPrep fake")
            }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let client = SkyPrepClient(http: http, settings: .init(baseURL: { base }, acctKey: acct, apiKey: key, maxAttempts: 1), logger: quietLogger)
            let outcome: Result<Bool, any Error>
            do { outcome = .success(try await client.testConnection()) } catch { outcome = .failure(error) }
            try await http.shutdown()
            switch outcome {
            case .success(true): print("SkyPrep connection: success (\(base))")
            case .success(false): throw CommandFailure("SkyPrep answered, but not with message=success")
            case .failure(let error as SkyPrepError):
                throw CommandFailure("SkyPrep \(error.code.rawValue)\(error.httpStatus.map { " (HTTP \($0))" } ?? ""): \(error.responseBody.prefix(200))")
            case .failure(let error): throw error
            }
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Background jobs (SkyPrep provisioning retries) queued in the database.", subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queued jobs: waiting for a retry, or held for an operator.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Show at most this many.") var limit = 100

        func run() async throws {
            let settings = try await common.settings()
            let jobs = try await withStore(settings) { try await $0.queuedJobs(limit: limit) }
            print(PlatformAdministration.jobsTable(jobs), terminator: "")
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a queued job (e.g. a held one, after fixing its cause) at the next poll.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The job's key (for SkyPrep provisioning: the learner id).") var key: String
        @Option(help: "The job's kind.") var kind = "skyprep.provision"

        func run() async throws {
            let settings = try await common.settings()
            let released = try await withStore(settings) { try await $0.releaseJob(kind: kind, key: key, now: Date()) }
            guard released else { throw CommandFailure("no queued \(kind) job with key \(key) (see jobs list)") }
            print("Job \(kind) \(key) will run at the next poll of a running gateway.")
        }
    }
}

extension PlatformStorageMode: ExpressibleByArgument {}
