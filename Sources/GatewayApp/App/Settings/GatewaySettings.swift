import Configuration
import Foundation
import GatewayStoragePostgres
import GatewaySupport
import LTICore
import SystemPackage

/// Every setting of the gateway, read once at start, in areas with a job each.
///
/// Sources, highest first: the environment (SPEC.md's names, e.g. `GATEWAY_PUBLIC_URL`), then the JSON file
/// `config/gateway.json` (the same names as nested keys: `{"gateway": {"public-url": …}}`), then the defaults,
/// which are the areas' initial values. Secrets are read from the environment only — the variable itself, or
/// the file named by `<NAME>_FILE` — never from the configuration file.
public struct GatewaySettings: Sendable, CustomStringConvertible {
    public var server = ServerSettings()
    public var database = DatabaseSettings()
    public var lti = LTISettings()
    public var keys = KeySettings()
    public var skillable = SkillableSettings()
    public var skyPrep = SkyPrepSettings()
    /// The environment's secrets, for the ones named at run time (a platform's own SkyPrep API key variable).
    public var secrets = EnvironmentSecrets(environment: [:])

    /// The defaults.
    public init() {}

    /// Reads every area from `config`, the secrets from `secrets`.
    public init(config: ConfigReader, secrets: EnvironmentSecrets) throws {
        let secretReader = try secrets.reader(names: Self.documentation.filter(\.isSecret).map(\.name))
        server = try ServerSettings(config: config, secrets: secretReader)
        // Without a public URL of its own, the gateway names itself by where it listens (a port changed alone must
        // not leave every URL it hands out on the old port).
        if config.string(forKey: settingConfigKey("GATEWAY_PUBLIC_URL")) == nil {
            let host = ["0.0.0.0", "::", ""].contains(server.host) ? "127.0.0.1" : server.host.contains(":") ? "[\(server.host)]" : server.host
            server.publicURL = "http://\(host):\(server.port == 0 ? 8080 : server.port)"
        }
        database = try DatabaseSettings(config: config, secrets: secretReader)
        lti = try LTISettings(config: config, secrets: secretReader)
        keys = try KeySettings(config: config, secrets: secretReader)
        skillable = try SkillableSettings(config: config, secrets: secretReader)
        skyPrep = try SkyPrepSettings(config: config, secrets: secretReader)
        self.secrets = secrets
    }

    /// The configuration file read when none is named.
    public static let defaultConfigFile = "config/gateway.json"

    /// Loads settings from the environment over `configFile` (when it exists; `requireFile`: it must), and checks them.
    /// A key the file sets that names no setting, or a value that is an object or list where a setting takes one
    /// value, is refused with its name (a misspelt key is a mistake, never silently ignored).
    public static func load(
        configFile: String = defaultConfigFile, requireFile: Bool = false,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> GatewaySettings {
        if requireFile, !FileManager.default.fileExists(atPath: configFile) {
            throw SettingsError(message: "config file \(configFile) does not exist")
        }
        if FileManager.default.fileExists(atPath: configFile) { try checkKeys(ofFile: configFile) }
        let secretNames = Set(documentation.filter(\.isSecret).map(\.name))
        // Secrets never pass through the plain reader: neither the environment's copy nor the file can supply them.
        let plainEnvironment = environment.filter { name, _ in
            !secretNames.contains(name) && !(name.hasSuffix("_FILE") && secretNames.contains(String(name.dropLast(5))))
        }
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: plainEnvironment)]
        if FileManager.default.fileExists(atPath: configFile) {
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: .init(configFile)))
            } catch {
                throw SettingsError(message: "config file \(configFile) is not valid JSON")
            }
        }
        let settings = try GatewaySettings(config: ConfigReader(providers: providers), secrets: EnvironmentSecrets(environment: environment))
        try settings.validate()
        return settings
    }

    /// Every key the file sets names a setting, with one value (text, number or truth) or a list of texts.
    static func checkKeys(ofFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw SettingsError(message: "config file \(path) is not a JSON object") }
        let known = Dictionary(documentation.map { (settingConfigKey($0.name).components.joined(separator: "."), $0.isSecret) }) { a, _ in a }
        func walk(_ value: Any, path: [String]) throws {
            let dotted = path.joined(separator: ".")
            if let object = value as? [String: Any], known[dotted] == nil {
                for (key, child) in object.sorted(by: { $0.key < $1.key }) { try walk(child, path: path + [key]) }
                return
            }
            guard let secret = known[dotted] else {
                throw SettingsError(
                    message: "config file \(path.isEmpty ? "" : "key ")\(dotted) names no setting (see the README's table of settings)")
            }
            if secret {
                throw SettingsError(message: "config file key \(dotted) is a secret: set it in the environment (or NAME_FILE), never in a file")
            }
            let scalar = value is String || value is NSNumber || (value as? [Any])?.allSatisfy { $0 is String } == true
            guard scalar else { throw SettingsError(message: "config file key \(dotted) must be a text, a number, true or false") }
        }
        try walk(object, path: [])
    }

    /// Refuses settings that cannot work, with the setting's name.
    public func validate() throws {
        try server.validate()
        try database.validate()
        try lti.validate()
        try keys.validate()
        if let token = server.metricsToken, token.count < 16 {
            throw SettingsError(message: "GATEWAY_METRICS_TOKEN must be at least 16 characters (e.g. openssl rand -hex 16)")
        }
        if let secret = skillable.webhookSecret, secret.count < 16 {
            throw SettingsError(message: "GATEWAY_WEBHOOK_SECRET must be at least 16 characters (e.g. openssl rand -hex 16)")
        }
        if let opsPort = server.opsPort, opsPort != 0, opsPort == server.port, server.opsHost == server.host {
            throw SettingsError(message: "GATEWAY_OPS_PORT must differ from GATEWAY_PORT: it is a second listener")
        }
        try skillable.validate()
        try skyPrep.validate()
        // A deployment (https) never serves the built-in fakes on the listener of /lti: learners would get fake labs.
        if server.publicURL.lowercased().hasPrefix("https://"), let fake = sandboxVendors.first {
            throw SettingsError(
                message:
                    "\(fake) must be set when GATEWAY_PUBLIC_URL is https: without it the built-in sandbox would answer learners with fake labs (for a demo, use an http public URL)"
            )
        }
    }

    /// Before serving: elsewhere than on this machine (a fresh clone), the built-in fakes answer only when asked for
    /// with `serve --sandbox` (``ServerSettings/sandboxRequested``, set after the settings are read).
    public func checkSandboxAllowed() throws {
        // Browsers store the state cookie (`Secure`) only over https, or from this machine: an http public URL on a
        // network starts fine and then refuses every launch.
        let url = URLComponents(string: server.publicURL)
        if url?.scheme?.lowercased() == "http", !Loopback.isLoopback(url?.host ?? ""), !server.sandboxRequested {
            throw SettingsError(
                message:
                    "GATEWAY_PUBLIC_URL must be https for a gateway reached over a network (browsers keep the launch's Secure cookie only over https); http is for this machine, or a demo with serve --sandbox"
            )
        }
        let publicHost = URLComponents(string: server.publicURL)?.host ?? ""
        if !Loopback.isLoopback(publicHost), !server.sandboxRequested, let fake = sandboxVendors.first {
            throw SettingsError(
                message:
                    "\(fake) must be set when GATEWAY_PUBLIC_URL is not this machine: without it the built-in sandbox would answer learners with fake labs (for a demo, run `lti-gateway serve --sandbox`)"
            )
        }
    }

    /// The vendors the built-in sandbox stands in for (their base URL unset), by setting name.
    public var sandboxVendors: [String] {
        (skillable.usesSandbox ? ["SKILLABLE_BASE_URL"] : []) + (skyPrep.baseURL == nil ? ["SKYPREP_BASE_URL"] : [])
    }

    /// Every setting with its meaning and default, in the README's order: the settings' one list.
    public static var documentation: [SettingDocumentation] {
        ServerSettings.documentation + DatabaseSettings.documentation + LTISettings.documentation + KeySettings.documentation
            + SkillableSettings.documentation + SkyPrepSettings.documentation
    }

    /// The normalised public base URL (no trailing slash).
    public var baseURL: String { server.baseURL }

    /// Every setting as `NAME=value`, secrets only as `(set)`.
    public var description: String {
        [server.description, database.description, lti.description, keys.description, skillable.description, skyPrep.description]
            .joined(separator: " ")
    }
}

/// A setting that cannot work; the message names it.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
