import Configuration
import Foundation
import GatewaySupport
import LTICore

/// One setting of the gateway: its environment name, what it means, whether it is secret, how it is read into
/// the part of the settings it belongs to, and the rule its value must keep.
///
/// The settings' only list: each area (``ServerSettings``, ``DatabaseSettings``, …) declares its own beside its
/// properties, the config file's keys are derived from the names, and the README's tables are checked against
/// ``GatewaySettings/documentation`` by a test.
public struct Setting<Area: SettingsArea>: Sendable {
    /// The environment variable, as SPEC.md names it, e.g. `GATEWAY_CLOCK_SKEW_SECONDS`.
    public let name: String
    /// What the setting means, in one line.
    public let meaning: String
    /// Read from the environment (or the file named by `NAME_FILE`) only, never from the config file, never logged.
    public let isSecret: Bool
    /// Reads the setting when `config` holds it; refuses a value of the wrong form.
    let read: @Sendable (inout Area, ConfigReader) throws -> Void
    /// Refuses a value outside the setting's rule.
    let check: @Sendable (Area) throws -> Void
    /// The value in `area`, as the documentation writes it (a secret only as set or not).
    let describe: @Sendable (Area) -> String

    /// The key in the config file, derived from the name: `GATEWAY_CLOCK_SKEW_SECONDS` → `gateway.clock-skew-seconds`.
    public var configKey: ConfigKey { settingConfigKey(name) }
}

/// The config file's key of the setting `name`: its first word, then the rest in lower case joined by `-`.
func settingConfigKey(_ name: String) -> ConfigKey {
    let lower = name.lowercased()
    guard let split = lower.firstIndex(of: "_") else { return ConfigKey([lower]) }
    return ConfigKey([String(lower[..<split]), lower[lower.index(after: split)...].replacingOccurrences(of: "_", with: "-")])
}

/// A part of the settings with a job of its own (database, keys, Skillable, …): its defaults are its
/// properties' initial values, its ``settings`` list says how each is read and checked.
public protocol SettingsArea: Sendable, CustomStringConvertible {
    /// The defaults.
    init()
    /// Every setting of this area, in the order the documentation lists them.
    static var settings: [Setting<Self>] { get }
    /// Rules that tie several settings of this area together (each setting's own rule is in ``settings``).
    func validateTogether() throws
}

extension SettingsArea {
    /// The defaults, overridden by what `config` holds; secrets only from `secrets`.
    public init(config: ConfigReader, secrets: ConfigReader) throws {
        self.init()
        for setting in Self.settings { try setting.read(&self, setting.isSecret ? secrets : config) }
    }

    /// Refuses values that cannot work, naming the setting.
    public func validate() throws {
        for setting in Self.settings { try setting.check(self) }
        try validateTogether()
    }

    public func validateTogether() throws {}

    /// Each setting as `NAME=value`; a secret only as `(set)`.
    public var description: String {
        Self.settings.map { "\($0.name)=\($0.describe(self))" }.joined(separator: " ")
    }

    /// Each setting with its default, for the documentation.
    static var documentation: [SettingDocumentation] {
        let defaults = Self()
        return settings.map { .init(name: $0.name, meaning: $0.meaning, isSecret: $0.isSecret, defaultValue: $0.describe(defaults)) }
    }
}

/// A setting as the documentation shows it.
public struct SettingDocumentation: Sendable, Equatable {
    public var name: String
    public var meaning: String
    public var isSecret: Bool
    /// The default as written in the README (`—` when there is none).
    public var defaultValue: String
}

// MARK: - The kinds of setting

extension Setting {
    /// A length of time given as a number of `unit`s (seconds unless said), kept within `range`.
    static func duration(
        _ name: String, _ path: any WritableKeyPath<Area, Duration> & Sendable, _ meaning: String, unit: TimeUnit = .seconds,
        range: ClosedRange<Double>
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                if let value = try number(name, config) { area[keyPath: path] = unit.duration(value) }
            },
            check: { area in
                let value = unit.count(area[keyPath: path])
                guard range.contains(value) else { throw SettingsError(message: "\(name) must be \(describeRange(range))") }
            },
            describe: { formatNumber(unit.count($0[keyPath: path])) })
    }

    /// A number, kept within `range`.
    static func number(
        _ name: String, _ path: any WritableKeyPath<Area, Double> & Sendable, _ meaning: String, range: ClosedRange<Double>
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                if let value = try number(name, config) { area[keyPath: path] = value }
            },
            check: { area in
                guard range.contains(area[keyPath: path]) else { throw SettingsError(message: "\(name) must be \(describeRange(range))") }
            },
            describe: { formatNumber($0[keyPath: path]) })
    }

    /// A whole number among `allowed`.
    static func integer(
        _ name: String, _ path: any WritableKeyPath<Area, Int> & Sendable, _ meaning: String, allowed: ClosedRange<Int>
    ) -> Setting {
        integer(name, path, meaning, isAllowed: { allowed.contains($0) }, rule: "\(allowed.lowerBound)…\(allowed.upperBound)")
    }

    /// A whole number for which `isAllowed` holds (`rule` says which, in the refusal).
    static func integer(
        _ name: String, _ path: any WritableKeyPath<Area, Int> & Sendable, _ meaning: String, isAllowed: @escaping @Sendable (Int) -> Bool,
        rule: String
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                let key = settingConfigKey(name)
                if let value = config.int(forKey: key) {
                    area[keyPath: path] = value
                } else if let text = config.string(forKey: key) {
                    guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                        throw SettingsError(message: "\(name) must be a whole number, not \(text)")
                    }
                    area[keyPath: path] = value
                }
            },
            check: { area in
                guard isAllowed(area[keyPath: path]) else { throw SettingsError(message: "\(name) must be \(rule)") }
            },
            describe: { String($0[keyPath: path]) })
    }

    /// `true` or `false`.
    static func flag(_ name: String, _ path: any WritableKeyPath<Area, Bool> & Sendable, _ meaning: String) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                let key = settingConfigKey(name)
                if let value = config.bool(forKey: key) {
                    area[keyPath: path] = value
                } else if let text = config.string(forKey: key) {
                    throw SettingsError(message: "\(name) must be true or false, not \(text)")
                }
            },
            check: { _ in },
            describe: { String($0[keyPath: path]) })
    }

    /// A text; `reason` returns why a value cannot work (nil when it can).
    static func text(
        _ name: String, _ path: any WritableKeyPath<Area, String> & Sendable, _ meaning: String,
        reason: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                if let value = config.string(forKey: settingConfigKey(name)) { area[keyPath: path] = value }
            },
            check: { area in
                if let reason = reason(area[keyPath: path]) { throw SettingsError(message: "\(name) \(reason)") }
            },
            describe: { $0[keyPath: path] })
    }

    /// A text that may be absent (`absent` says what happens then, in the documentation).
    static func optionalText(
        _ name: String, _ path: any WritableKeyPath<Area, String?> & Sendable, _ meaning: String, absent: String,
        reason: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                if let value = config.string(forKey: settingConfigKey(name)), !value.isEmpty { area[keyPath: path] = value }
            },
            check: { area in
                if let value = area[keyPath: path], let reason = reason(value) { throw SettingsError(message: "\(name) \(reason)") }
            },
            describe: { $0[keyPath: path] ?? absent })
    }

    /// A value of its own form, parsed by `parse` and written back by `format`; `rule` names the forms in the refusal.
    static func parsed<Value: Sendable>(
        _ name: String, _ path: any WritableKeyPath<Area, Value> & Sendable, _ meaning: String, rule: String,
        parse: @escaping @Sendable (String) -> Value?, format: @escaping @Sendable (Value) -> String
    ) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: false,
            read: { area, config in
                guard let text = config.string(forKey: settingConfigKey(name)) else { return }
                guard let value = parse(text) else { throw SettingsError(message: "\(name) must be \(rule), not \(text)") }
                area[keyPath: path] = value
            },
            check: { _ in },
            describe: { format($0[keyPath: path]) })
    }

    /// A secret: from the environment variable, or the file named by `NAME_FILE`; never from the config file.
    static func secret(_ name: String, _ path: any WritableKeyPath<Area, String?> & Sendable, _ meaning: String) -> Setting {
        Setting(
            name: name, meaning: meaning, isSecret: true,
            read: { area, secrets in
                if let value = secrets.string(forKey: settingConfigKey(name), isSecret: true) { area[keyPath: path] = value }
            },
            check: { _ in },
            describe: { $0[keyPath: path] == nil ? "—" : "(set)" })
    }

    /// A number from `config` when it holds one; a value of another form is refused.
    private static func number(_ name: String, _ config: ConfigReader) throws -> Double? {
        let key = settingConfigKey(name)
        if let value = config.double(forKey: key) { return value }
        guard let text = config.string(forKey: key) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw SettingsError(message: "\(name) must be a number, not \(text)")
        }
        return value
    }
}

/// The unit a duration setting is written in.
enum TimeUnit: Sendable {
    case milliseconds, seconds, days

    var seconds: Double {
        switch self {
        case .milliseconds: 0.001
        case .seconds: 1
        case .days: 86_400
        }
    }

    func duration(_ count: Double) -> Duration { .milliseconds(Int64((count * seconds * 1000).rounded())) }

    func count(_ duration: Duration) -> Double { duration.totalSeconds / seconds }
}

/// `30` rather than `30.0`; `0.1` as it is.
func formatNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

private func describeRange(_ range: ClosedRange<Double>) -> String {
    range.upperBound == .greatestFiniteMagnitude
        ? "at least \(formatNumber(range.lowerBound))" : "\(formatNumber(range.lowerBound))…\(formatNumber(range.upperBound))"
}

/// Why a vendor's base URL cannot be used: not an absolute http(s) URL, or plain `http` to a host that is not
/// this machine (the API key would cross the network in clear). Nil when it can.
func vendorURLProblem(_ url: String) -> String? {
    guard URLAuthority(url) != nil, let components = URLComponents(string: url), let host = components.host else {
        return "must be an absolute http(s) URL"
    }
    if components.scheme?.lowercased() == "http" && !Loopback.isLoopback(host) {
        return "must use https (plain http only to this machine: 127.0.0.1, ::1, localhost)"
    }
    return nil
}
