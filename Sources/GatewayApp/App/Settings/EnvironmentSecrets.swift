import Configuration
import Foundation

/// Secrets from the environment: the variable itself, or the file named by `<NAME>_FILE` (surrounding
/// whitespace trimmed). The environment is captured once, when the settings are loaded.
public struct EnvironmentSecrets: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    /// Never the values: settings may be printed.
    public var description: String { "EnvironmentSecrets(redacted)" }
    public var debugDescription: String { description }

    /// The secret `name`, nil when neither `name` nor `name_FILE` is set.
    /// - Throws: ``SettingsError`` when `name_FILE` names a file that cannot be read or is empty.
    public func value(_ name: String) throws -> String? {
        if let value = environment[name], !value.isEmpty { return value }
        guard let path = environment[name + "_FILE"], !path.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SettingsError(message: "\(name)_FILE names \(path), which cannot be read")
        }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw SettingsError(message: "\(name)_FILE names an empty file") }
        return value
    }

    /// A configuration reader holding the secrets `names` (those that are set), each marked secret so that
    /// swift-configuration never prints them.
    func reader(names: [String]) throws -> ConfigReader {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for name in names {
            if let secret = try value(name) {
                values[AbsoluteConfigKey(settingConfigKey(name))] = ConfigValue(.string(secret), isSecret: true)
            }
        }
        return ConfigReader(provider: InMemoryProvider(name: "environment secrets", values: values))
    }
}
