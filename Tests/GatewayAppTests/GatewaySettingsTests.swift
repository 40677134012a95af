import Foundation
import GatewayStoragePostgres
import Testing

@testable import GatewayApp

@Suite("Settings: environment over config file over defaults; secrets from the environment only")
struct GatewaySettingsTests {
    func configFile(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-config-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("no file and no environment: the documented defaults")
    func defaults() async throws {
        let settings = try await GatewaySettings.load(configFile: "/nonexistent/gateway.json", environment: [:])
        #expect(settings.publicURL == "http://127.0.0.1:8080" && settings.host == "127.0.0.1" && settings.port == 8080)
        #expect(settings.databaseURL == "sqlite:data/gateway.sqlite" && settings.keysDirectory == "keys")
        #expect(settings.clockSkewSeconds == 30 && settings.usesSkillableSandbox)
    }

    /// The repository's `config/` folder.
    static let configFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("config")

    @Test("the shipped config file sets nothing: every default comes from the code")
    func shippedConfigSetsNothing() async throws {
        let shipped = try await GatewaySettings.load(configFile: Self.configFolder.appendingPathComponent("gateway.json").path, environment: [:])
        let none = try await GatewaySettings.load(configFile: "/nonexistent/gateway.json", environment: [:])
        #expect(String(describing: shipped) == String(describing: none))
    }

    @Test("the example deployment file is read as documented")
    func exampleConfig() async throws {
        let example = try await GatewaySettings.load(
            configFile: Self.configFolder.appendingPathComponent("gateway.example.json").path,
            environment: [  // the secrets such a deployment supplies from its environment
                "GATEWAY_KEY_ENCRYPTION_KEY": Data(repeating: 7, count: 32).base64EncodedString(), "SKILLABLE_API_KEY": "skillable-key",
                "SKYPREP_ACCT_KEY": "acme.skyprepapp.com", "SKYPREP_API_KEY": "skyprep-key",
            ])
        #expect(example.publicURL == "https://lti.example.edu" && example.host == "0.0.0.0" && example.port == 8080)
        #expect(example.databaseURL.hasPrefix("postgres://gateway@db.example.edu") && example.logLevel == "notice")
        #expect(example.skillableBaseURL == "https://labondemand.com/api/v3" && example.skyPrepBaseURL == "https://api.skyprep.io/admin/api")
        #expect(example.skyPrepGroupSync)
    }

    @Test("the file sets values, the environment (SPEC names) overrides them")
    func precedence() async throws {
        let file = try configFile(#"{"gateway": {"port": 9000, "public-url": "https://file.example", "clock-skew-seconds": 45}}"#)
        let fromFile = try await GatewaySettings.load(configFile: file, environment: [:])
        #expect(fromFile.port == 9000 && fromFile.publicURL == "https://file.example" && fromFile.clockSkewSeconds == 45)
        let overridden = try await GatewaySettings.load(
            configFile: file,
            environment: [
                "GATEWAY_PORT": "9100", "GATEWAY_PUBLIC_URL": "https://env.example", "GATEWAY_CLOCK_SKEW_SECONDS": "10",
                "GATEWAY_DATABASE_URL": "sqlite:/tmp/x.sqlite", "GATEWAY_KEYS_DIR": "/tmp/keys", "GATEWAY_HOST": "0.0.0.0",
            ])
        #expect(overridden.port == 9100 && overridden.publicURL == "https://env.example" && overridden.clockSkewSeconds == 10)
        #expect(overridden.sqlitePath == "/tmp/x.sqlite" && overridden.keysDirectory == "/tmp/keys" && overridden.host == "0.0.0.0")
    }

    @Test("an API key in the config file is ignored; the environment or a file it names supplies it")
    func secretsOnlyFromEnvironment() async throws {
        let file = try configFile(#"{"skillable": {"api-key": "from-file", "base-url": "https://labondemand.com/api/v3"}}"#)
        await #expect(throws: SettingsError.self) { _ = try await GatewaySettings.load(configFile: file, environment: [:]) }
        let fromEnv = try await GatewaySettings.load(configFile: file, environment: ["SKILLABLE_API_KEY": "from-env"])
        #expect(fromEnv.skillableAPIKey == "from-env" && !fromEnv.usesSkillableSandbox)
        let keyFile = try configFile("from-secret-file\n")
        let fromKeyFile = try await GatewaySettings.load(configFile: file, environment: ["SKILLABLE_API_KEY_FILE": keyFile])
        #expect(fromKeyFile.skillableAPIKey == "from-secret-file")
    }

    @Test(
        "unusable settings are refused with the setting's name",
        arguments: [
            ("GATEWAY_PUBLIC_URL", "not a url"), ("GATEWAY_PUBLIC_URL", "https://x.example/path"), ("GATEWAY_PORT", "70000"),
            ("GATEWAY_DATABASE_URL", "mysql://x"), ("GATEWAY_CLOCK_SKEW_SECONDS", "-1"), ("SKILLABLE_BASE_URL", "https://labondemand.com/api/v3"),
            ("GATEWAY_DATABASE_URL", "postgres://gw@db:5432/lti"),  // no GATEWAY_KEY_ENCRYPTION_KEY
            ("GATEWAY_DATABASE_URL", "postgres://db:5432/lti"), ("SKYPREP_RETRY_SECONDS", "0"), ("GATEWAY_JOB_POLL_SECONDS", "9999"),
        ])
    func refused(name: String, value: String) async throws {
        do {
            _ = try await GatewaySettings.load(configFile: "/nonexistent", environment: [name: value])
            Issue.record("accepted \(name)=\(value)")
        } catch let error as SettingsError {
            let named =
                name == "SKILLABLE_BASE_URL"
                ? "SKILLABLE_API_KEY"
                : value.hasPrefix("postgres://gw@") ? "GATEWAY_KEY_ENCRYPTION_KEY" : name
            #expect(error.message.contains(named), "\(error.message)")
        }
    }
}

@Suite("Settings: PostgreSQL")
struct PostgresSettingsTests {
    static let kek = Data(repeating: 1, count: 32).base64EncodedString()

    @Test("a postgres URL with pool, TLS mode and timeout; the password from GATEWAY_DATABASE_PASSWORD, never in the redacted URL")
    func parsed() async throws {
        let settings = try await GatewaySettings.load(
            configFile: "/nonexistent",
            environment: [
                "GATEWAY_DATABASE_URL": "postgres://gw:url-password@db.example.edu:6543/lti?sslmode=require&pool=7&connect_timeout=3",
                "GATEWAY_DATABASE_PASSWORD": "env-password", "GATEWAY_KEY_ENCRYPTION_KEY": Self.kek,
            ])
        let postgres = try #require(try settings.postgres)
        #expect(postgres.host == "db.example.edu" && postgres.port == 6543 && postgres.database == "lti" && postgres.username == "gw")
        #expect(postgres.tlsMode == "require" && postgres.maximumConnections == 7 && postgres.connectTimeoutSeconds == 3)
        #expect(postgres.password == "env-password")
        #expect(!postgres.redactedURL.contains("password"))
    }

    @Test(
        "bad PostgreSQL settings are refused with the reason",
        arguments: [
            "postgres://gw@db/lti?sslmode=sometimes", "postgres://gw@db/lti?pool=0", "postgres://gw@db/", "postgres://gw@db/lti?connect_timeout=x",
        ])
    func refused(url: String) async throws {
        await #expect(throws: SettingsError.self) {
            _ = try await GatewaySettings.load(
                configFile: "/nonexistent", environment: ["GATEWAY_DATABASE_URL": url, "GATEWAY_KEY_ENCRYPTION_KEY": Self.kek])
        }
        await #expect(throws: SettingsError.self) {
            _ = try await GatewaySettings.load(
                configFile: "/nonexistent",
                environment: [
                    "GATEWAY_DATABASE_URL": "postgres://gw@db/lti", "GATEWAY_KEY_ENCRYPTION_KEY": "too-short",
                ])
        }
    }
}

@Suite("Form parameters")
struct FormParametersTests {
    @Test("plus, percent escapes, UTF-8, repeated names; malformed escapes are dropped")
    func parsing() {
        let parsed = FormParameters.parse(Substring("a=1+2&b=%C3%A9t%C3%A9&c=&a=ignored&d=%ZZ&e=%2B%26%3D"))
        #expect(parsed["a"] == "1 2" && parsed["b"] == "été" && parsed["c"] == "" && parsed["d"] == nil && parsed["e"] == "+&=")
        #expect(FormParameters.pairs(Substring("lab=1&lab=2&x=y")).filter { $0.0 == "lab" }.map(\.1) == ["1", "2"])
        #expect(FormParameters.parse(Substring("bad=%C3"))["bad"] == nil)
    }
}

@Suite("Small helpers")
struct HelperTests {
    @Test("uniqued keeps the first of each, in order (chosen labs, deployment ids)")
    func uniqued() {
        #expect(["1003", "1001", "1003", "1002", "1001"].uniqued() == ["1003", "1001", "1002"])
        #expect([String]().uniqued().isEmpty)
    }
}
