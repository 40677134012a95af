import AsyncHTTPClient
import Configuration
import Foundation
import GatewayStoragePostgres
import LTITestSupport
import NIOHTTP1
import Testing

@testable import GatewayApp

@Suite("Settings: environment over config file over defaults; secrets from the environment only")
struct GatewaySettingsTests {
    func configFile(_ json: String) throws -> String { try temporaryConfigFile(json) }

    @Test("no file and no environment: the documented defaults")
    func defaults() async throws {
        let settings = try await GatewaySettings.load(configFile: "/nonexistent/gateway.json", environment: [:])
        #expect(settings.server.publicURL == "http://127.0.0.1:8080" && settings.server.host == "127.0.0.1" && settings.server.port == 8080)
        #expect(settings.database.url == "sqlite:data/gateway.sqlite" && settings.keys.directory == "keys")
        #expect(settings.lti.clockSkew == .seconds(30) && settings.skillable.usesSandbox && settings.keys.retiringGrace == .seconds(7 * 86_400))
        #expect(settings.server.sandboxLatency == .zero && settings.skyPrep.retryDelay == .seconds(30))
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
        #expect(example.server.publicURL == "https://lti.example.edu" && example.server.host == "0.0.0.0" && example.server.port == 8080)
        #expect(example.database.url.hasPrefix("postgres://gateway@db.example.edu") && example.server.logLevel == "notice")
        #expect(example.skillable.baseURL == "https://labondemand.com/api/v3" && example.skyPrep.baseURL == "https://api.skyprep.io/admin/api")
        #expect(example.skyPrep.groupSync && example.skillable.labHosts == [".labondemand.com"])
    }

    @Test("the file sets values, the environment (SPEC names) overrides them")
    func precedence() async throws {
        let file = try configFile(#"{"gateway": {"port": 9000, "public-url": "http://localhost:9000", "clock-skew-seconds": 45}}"#)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try await GatewaySettings.load(configFile: file, environment: [:])
        #expect(fromFile.server.port == 9000 && fromFile.server.publicURL == "http://localhost:9000" && fromFile.lti.clockSkew == .seconds(45))
        let overridden = try await GatewaySettings.load(
            configFile: file,
            environment: [
                "GATEWAY_PORT": "9100", "GATEWAY_PUBLIC_URL": "http://127.0.0.1:9100", "GATEWAY_CLOCK_SKEW_SECONDS": "10",
                "GATEWAY_DATABASE_URL": "sqlite:/tmp/x.sqlite", "GATEWAY_KEYS_DIR": "/tmp/keys", "GATEWAY_HOST": "0.0.0.0",
            ])
        #expect(overridden.server.port == 9100 && overridden.server.publicURL == "http://127.0.0.1:9100" && overridden.lti.clockSkew == .seconds(10))
        #expect(overridden.database.sqlitePath == "/tmp/x.sqlite" && overridden.keys.directory == "/tmp/keys" && overridden.server.host == "0.0.0.0")
    }

    @Test("a config file named explicitly must exist; keys that name no setting and values of the wrong shape are refused by name")
    func configFileMistakes() async throws {
        do {
            _ = try await GatewaySettings.load(configFile: "/nonexistent/gatway.json", requireFile: true, environment: [:])
            Issue.record("a missing --config file was ignored")
        } catch let error as SettingsError {
            #expect(error.message.contains("/nonexistent/gatway.json") && error.message.contains("does not exist"))
        }
        for (json, key) in [
            (#"{"gateway": {"pubilc-url": "https://lti.example.edu"}}"#, "gateway.pubilc-url"), (#"{"gatway": {"port": 9000}}"#, "gatway.port"),
            (#"{"gateway": {"port": {"value": 9000}}}"#, "gateway.port"), (#"{"gateway": {"log-level": ["info"], "port": [1]}}"#, "gateway.port"),
        ] {
            let file = try configFile(json)
            defer { try? FileManager.default.removeItem(atPath: file) }
            do {
                _ = try await GatewaySettings.load(configFile: file, environment: [:])
                Issue.record("\(json) was accepted")
            } catch let error as SettingsError {
                #expect(error.message.contains(key), "\(json): \(error.message)")
            }
        }
    }

    @Test("without GATEWAY_PUBLIC_URL the gateway names itself by its listener; an http public URL on a network is refused unless serve --sandbox")
    func publicURLFollowsTheListener() async throws {
        let moved = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_PORT": "9090"])
        #expect(moved.server.publicURL == "http://127.0.0.1:9090")
        let everywhere = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_PORT": "9091", "GATEWAY_HOST": "0.0.0.0"])
        #expect(everywhere.server.publicURL == "http://127.0.0.1:9091")
        let named = try await GatewaySettings.load(
            configFile: "/nonexistent", environment: ["GATEWAY_PORT": "9092", "GATEWAY_PUBLIC_URL": "http://localhost:8443"])
        #expect(named.server.publicURL == "http://localhost:8443")
        var network = try await GatewaySettings.load(
            configFile: "/nonexistent",
            environment: [
                "GATEWAY_PUBLIC_URL": "http://lti.example.edu", "SKILLABLE_BASE_URL": "https://labondemand.com/api/v3", "SKILLABLE_API_KEY": "k",
                "SKYPREP_BASE_URL": "https://api.skyprep.io/admin/api", "SKYPREP_ACCT_KEY": "a.skyprepapp.com", "SKYPREP_API_KEY": "k",
            ])
        do {
            try network.checkSandboxAllowed()
            Issue.record("an http public URL on a network was accepted")
        } catch let error as SettingsError {
            #expect(error.message.hasPrefix("GATEWAY_PUBLIC_URL must be https"), "\(error.message)")
        }
        network.server.sandboxRequested = true
        try network.checkSandboxAllowed()
    }

    @Test("an API key in the config file is refused, naming its key; the environment or a file it names supplies it")
    func secretsOnlyFromEnvironment() async throws {
        let withSecret = try configFile(#"{"skillable": {"api-key": "from-file", "base-url": "https://labondemand.com/api/v3"}}"#)
        defer { try? FileManager.default.removeItem(atPath: withSecret) }
        do {
            _ = try await GatewaySettings.load(configFile: withSecret, environment: ["SKILLABLE_API_KEY": "from-env"])
            Issue.record("a secret in the config file was accepted")
        } catch let error as SettingsError {
            #expect(error.message.contains("skillable.api-key") && !error.message.contains("from-file"), "\(error.message)")
        }
        let file = try configFile(#"{"skillable": {"base-url": "https://labondemand.com/api/v3"}}"#)
        defer { try? FileManager.default.removeItem(atPath: file) }
        await #expect(throws: SettingsError.self) { _ = try await GatewaySettings.load(configFile: file, environment: [:]) }
        let fromEnv = try await GatewaySettings.load(configFile: file, environment: ["SKILLABLE_API_KEY": "from-env"])
        #expect(fromEnv.skillable.apiKey == "from-env" && !fromEnv.skillable.usesSandbox)
        let keyFile = try configFile("from-secret-file\n")
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let fromKeyFile = try await GatewaySettings.load(configFile: file, environment: ["SKILLABLE_API_KEY_FILE": keyFile])
        #expect(fromKeyFile.skillable.apiKey == "from-secret-file")
        #expect(!String(describing: fromKeyFile).contains("from-secret-file") && !String(describing: fromEnv).contains("from-env"))
    }

    @Test(
        "unusable settings are refused with the setting's name",
        arguments: [
            ("GATEWAY_PUBLIC_URL", "not a url"), ("GATEWAY_PUBLIC_URL", "https://x.example/path"), ("GATEWAY_PORT", "70000"),
            ("GATEWAY_DATABASE_URL", "mysql://x"), ("GATEWAY_CLOCK_SKEW_SECONDS", "-1"), ("SKILLABLE_BASE_URL", "https://labondemand.com/api/v3"),
            ("GATEWAY_DATABASE_URL", "postgres://gw@db:5432/lti"),  // no GATEWAY_KEY_ENCRYPTION_KEY
            ("GATEWAY_DATABASE_URL", "postgres://db:5432/lti"), ("SKYPREP_RETRY_SECONDS", "0"), ("GATEWAY_JOB_POLL_SECONDS", "9999"),
            ("GATEWAY_PORT", "eighty"), ("GATEWAY_STATE_TTL_SECONDS", "10 minutes"), ("SKYPREP_GROUP_SYNC", "sometimes"),
            ("GATEWAY_LOG_LEVEL", "loud"), ("SKILLABLE_DEFERRED_LAUNCH_RULE", "maybe"), ("GATEWAY_KEY_BITS", "1024"),
            ("GATEWAY_JWKS_MAX_AGE_SECONDS", "7200"), ("SKILLABLE_LAB_HOSTS", " , "),
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
            #expect(!error.message.isEmpty)
            #expect(error.message.contains(named), "\(error.message)")
        }
    }
}

@Suite("Settings: vendor URLs")
struct VendorURLSettingsTests {
    @Test("a deployment on https never runs the built-in fakes: each vendor URL must be set; on http (a demo) the fakes answer")
    func noSandboxOnHTTPS() async throws {
        let keys = ["SKILLABLE_API_KEY": "k", "SKYPREP_ACCT_KEY": "a.skyprepapp.com", "SKYPREP_API_KEY": "k"]
        let vendors = ["SKILLABLE_BASE_URL": "https://labondemand.com/api/v3", "SKYPREP_BASE_URL": "https://api.skyprep.io/admin/api"]
        for missing in vendors.keys {
            do {
                _ = try await GatewaySettings.load(
                    configFile: "/nonexistent",
                    environment: keys.merging(vendors.filter { $0.key != missing }) { $1 }.merging(["GATEWAY_PUBLIC_URL": "https://lti.example.edu"])
                    { $1 })
                Issue.record("https without \(missing) was accepted")
            } catch let error as SettingsError {
                #expect(error.message.hasPrefix(missing), "\(error.message)")
            }
        }
        let deployed = try await GatewaySettings.load(
            configFile: "/nonexistent", environment: keys.merging(vendors) { $1 }.merging(["GATEWAY_PUBLIC_URL": "https://lti.example.edu"]) { $1 })
        #expect(deployed.sandboxVendors.isEmpty)
        let demo = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_PUBLIC_URL": "http://127.0.0.1:8080"])
        #expect(demo.sandboxVendors == ["SKILLABLE_BASE_URL", "SKYPREP_BASE_URL"])
    }

    @Test("away from this machine the fakes answer only with serve --sandbox, and never with an https public URL")
    func sandboxOnlyWhenAsked() async throws {
        var demo = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_PUBLIC_URL": "http://lti.example.edu"])
        do {
            try demo.checkSandboxAllowed()
            Issue.record("fakes allowed for a public URL on the network without --sandbox")
        } catch let error as SettingsError {
            #expect(error.message.contains("serve --sandbox"), "\(error.message)")
        }
        demo.server.sandboxRequested = true
        try demo.checkSandboxAllowed()
        demo.server.publicURL = "https://lti.example.edu"
        #expect(throws: SettingsError.self) { try demo.validate() }
        for local in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
            var fresh = GatewaySettings()
            fresh.server.publicURL = local
            try fresh.validate()
            try fresh.checkSandboxAllowed()
        }
    }

    @Test("a metrics token shorter than 16 characters is refused: it would be guessable")
    func shortMetricsToken() async throws {
        await #expect(throws: SettingsError.self) {
            _ = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_METRICS_TOKEN": "short"])
        }
        let fine = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["GATEWAY_METRICS_TOKEN": "0123456789abcdef"])
        #expect(fine.server.metricsToken == "0123456789abcdef")
    }

    @Test("the real command: serve refuses a network public URL without --sandbox, and serves with it")
    func serveSandboxCommand() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-sandbox-flag-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let environment = [
            "GATEWAY_PUBLIC_URL": "http://lti.example.test", "GATEWAY_DATABASE_URL": "sqlite:" + folder.appendingPathComponent("gw.sqlite").path,
            "GATEWAY_KEYS_DIR": folder.appendingPathComponent("keys").path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]
        let refused = try GatewayProcess(port: try await freePort(), environment: environment, folder: folder, name: "refused")
        refused.process.waitUntilExit()
        #expect(refused.process.terminationStatus != 0 && refused.log.contains("serve --sandbox"), "\(refused.log)")
        let demo = try GatewayProcess(
            port: try await freePort(), environment: environment, folder: folder, name: "demo", arguments: ["serve", "--sandbox"])
        defer { demo.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let up = await eventually(timeout: .seconds(30)) {
            try await browserRequest(http, .GET, "http://127.0.0.1:\(demo.port)/readyz").body.contains("sandbox")
        }
        #expect(up, "\(demo.log)")
    }

    @Test("GATEWAY_EVENT_LOOPS sets how many event-loop threads `serve` runs; half the cores by default")
    func eventLoops() async throws {
        #expect(ServerSettings.defaultEventLoops == max(1, ProcessInfo.processInfo.activeProcessorCount / 2))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-loops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let port = try await freePort()
        let gateway = try GatewayProcess(
            port: port,
            environment: [
                "GATEWAY_PUBLIC_URL": "http://127.0.0.1:\(port)", "GATEWAY_EVENT_LOOPS": "3",
                "GATEWAY_DATABASE_URL": "sqlite:" + folder.appendingPathComponent("gw.sqlite").path,
                "GATEWAY_KEYS_DIR": folder.appendingPathComponent("keys").path,
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            ], folder: folder, name: "loops")
        defer { gateway.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let up = await eventually(timeout: .seconds(30)) {
            try await browserRequest(http, .GET, "http://127.0.0.1:\(port)/healthz").status == 200
        }
        #expect(up, "\(gateway.log)")
        let tasks = "/proc/\(gateway.process.processIdentifier)/task"
        let names = try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap { task in
            try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(names.filter { $0.hasPrefix("NIO-SGLTN") }.count == 3, "threads: \(names.sorted())")
        let zero = try? await GatewaySettings.load(configFile: "/nonexistent/gateway.json", environment: ["GATEWAY_EVENT_LOOPS": "0"])
        #expect(zero == nil, "zero event loops was accepted")
    }

    @Test("a vendor API over plain http is refused unless it is this machine: its API key would cross the network in clear")
    func httpOnlyToLoopback() async throws {
        let keys = ["SKILLABLE_API_KEY": "k", "SKYPREP_ACCT_KEY": "a.skyprepapp.com", "SKYPREP_API_KEY": "k"]
        for (name, url) in [("SKILLABLE_BASE_URL", "http://labondemand.com/api/v3"), ("SKYPREP_BASE_URL", "http://api.skyprep.io/admin/api")] {
            await #expect(throws: SettingsError.self, "\(name)=\(url)") {
                _ = try await GatewaySettings.load(configFile: "/nonexistent", environment: keys.merging([name: url]) { $1 })
            }
        }
        for url in [
            "http://127.0.0.1:8081/sandbox/skillable/api/v3", "http://localhost:8081/x", "http://[::1]:8081/x", "https://labondemand.com/api/v3",
        ] {
            let settings = try await GatewaySettings.load(configFile: "/nonexistent", environment: keys.merging(["SKILLABLE_BASE_URL": url]) { $1 })
            #expect(settings.skillable.baseURL == url)
        }
    }
}

/// A configuration file holding `json`, in the temporary folder.
func temporaryConfigFile(_ json: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-config-\(UUID().uuidString).json").path
    try json.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Settings: one documented list")
struct SettingsDocumentationTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    @Test("every setting has a README table row naming it, with its meaning's default in the last column; no row names a setting that does not exist")
    func readmeMatchesTheList() throws {
        let rows = try String(contentsOf: Self.readme, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("| `") }
        for setting in GatewaySettings.documentation {
            let row = rows.first { $0.split(separator: "|").first?.contains("`\(setting.name)`") == true }
            guard let row else {
                Issue.record("README has no row for \(setting.name)")
                continue
            }
            let lastCell = row.split(separator: "|").last.map(String.init) ?? ""
            let expected = setting.isSecret ? "—" : setting.defaultValue
            #expect(lastCell.contains(expected), "README's default for \(setting.name) is \(lastCell), the code's is \(expected)")
        }
        let names = Set(GatewaySettings.documentation.map(\.name))
        let named = rows.compactMap { $0.split(separator: "|").first }.flatMap { cell in
            cell.split(separator: "`").filter { $0.allSatisfy { $0.isUppercase || $0 == "_" } && $0.contains("_") }.map(String.init)
        }
        for name in named where !name.hasSuffix("_FILE") {
            #expect(names.contains(name), "README documents \(name), which is no setting")
        }
    }

    @Test("the config file's keys are the names in lower case: first word, then the rest joined by -")
    func configKeys() {
        #expect(settingConfigKey("GATEWAY_CLOCK_SKEW_SECONDS").components == ["gateway", "clock-skew-seconds"])
        #expect(settingConfigKey("SKYPREP_CALLS_PER_MINUTE").components == ["skyprep", "calls-per-minute"])
    }

    @Test("SkyPrep sign-in hosts: a customer's own domain, https only; the default is skyprepapp.com")
    func skyPrepLoginHosts() async throws {
        #expect(GatewaySettings().skyPrep.loginHosts == [".skyprepapp.com"])
        let settings = try await GatewaySettings.load(
            configFile: "/nonexistent", environment: ["SKYPREP_LOGIN_HOSTS": "learn.acme.edu, .skyprepapp.com"])
        #expect(settings.skyPrep.loginHosts == ["learn.acme.edu", ".skyprepapp.com"])
        let policy = LabRedirectPolicy(exactAuthorities: [], hostSuffixes: settings.skyPrep.loginHosts, sandboxAuthority: nil)
        #expect(policy.allows("https://learn.acme.edu/login/otl/abc") && policy.allows("https://acme.skyprepapp.com/x"))
        #expect(!policy.allows("http://learn.acme.edu/login") && !policy.allows("https://evil.example/login"))
        await #expect(throws: SettingsError.self) {
            _ = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["SKYPREP_LOGIN_HOSTS": "https://learn.acme.edu/"])
        }
    }

    @Test("durations take fractions and units: milliseconds, seconds, days")
    func durations() async throws {
        let settings = try await GatewaySettings.load(
            configFile: "/nonexistent",
            environment: ["GATEWAY_KEY_RELOAD_SECONDS": "0.25", "GATEWAY_SANDBOX_LATENCY_MS": "150", "GATEWAY_KEY_GRACE_DAYS": "1.5"])
        #expect(settings.keys.reloadInterval == .milliseconds(250) && settings.server.sandboxLatency == .milliseconds(150))
        #expect(settings.keys.retiringGrace == .seconds(36 * 3600) && settings.keys.policy.retiringGrace == 36 * 3600)
    }

    @Test("a secret in the environment is never a plain value, and the config file cannot supply one")
    func secretsStayOut() async throws {
        for secret in [
            #"{"skyprep": {"api-key": "file-key"}}"#, #"{"gateway": {"database-password": "file-password"}}"#,
            #"{"gateway": {"webhook-secret": "file-webhook-secret-0123"}}"#, #"{"skyprep": {"acct-key": "file-acct"}}"#,
        ] {
            let file = try temporaryConfigFile(secret)
            defer { try? FileManager.default.removeItem(atPath: file) }
            await #expect(throws: SettingsError.self, "\(secret)") {
                _ = try await GatewaySettings.load(configFile: file, environment: ["SKYPREP_API_KEY": "env-key"])
            }
        }
        let settings = try await GatewaySettings.load(configFile: "/nonexistent", environment: ["SKYPREP_API_KEY": "env-key"])
        #expect(settings.skyPrep.apiKey == "env-key" && settings.database.password == nil && settings.skillable.webhookSecret == nil)
        #expect(
            GatewaySettings.documentation.filter(\.isSecret).map(\.name).sorted() == [
                "GATEWAY_DATABASE_PASSWORD", "GATEWAY_KEY_ENCRYPTION_KEY", "GATEWAY_METRICS_TOKEN", "GATEWAY_WEBHOOK_SECRET", "SKILLABLE_API_KEY",
                "SKYPREP_ACCT_KEY", "SKYPREP_API_KEY",
            ])
    }
}

@Suite("Settings: PostgreSQL")
struct PostgresSettingsTests {
    static let kek = Data(repeating: 1, count: 32).base64EncodedString()

    @Test("TLS is required by default across a network, preferred only to this machine; an explicit sslmode is kept")
    func tlsDefault() throws {
        #expect(try PostgresSettings(url: "postgres://gw@db.example.edu/lti").tlsMode == "require")
        #expect(try PostgresSettings(url: "postgres://gw@10.0.0.5:5432/lti").tlsMode == "require")
        #expect(try PostgresSettings(url: "postgres://gw@127.0.0.1:5432/lti").tlsMode == "prefer")
        #expect(try PostgresSettings(url: "postgres://gw@localhost/lti").tlsMode == "prefer")
        #expect(try PostgresSettings(url: "postgres://gw@db.example.edu/lti?sslmode=disable").tlsMode == "disable")
    }

    @Test("a postgres URL with pool, TLS mode and timeout; the password from GATEWAY_DATABASE_PASSWORD, never in the redacted URL")
    func parsed() async throws {
        let settings = try await GatewaySettings.load(
            configFile: "/nonexistent",
            environment: [
                "GATEWAY_DATABASE_URL": "postgres://gw:url-password@db.example.edu:6543/lti?sslmode=require&pool=7&connect_timeout=3",
                "GATEWAY_DATABASE_PASSWORD": "env-password", "GATEWAY_KEY_ENCRYPTION_KEY": Self.kek,
            ])
        let postgres = try #require(try settings.database.postgres)
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

    @Test("empty pieces, names without a value, values with an equals sign, text that is not ASCII")
    func edges() {
        let pairs = FormParameters.pairs(Substring("&&a==b&=x&flag&é=ü&&t=%E2%82%AC+%20&"))
        #expect(pairs.map(\.0) == ["a", "flag", "é", "t"])
        #expect(pairs.map(\.1) == ["=b", "", "ü", "€  "])
        let whole = "x=1&state=abc"
        #expect(FormParameters.pairs(whole.dropFirst(4)).map(\.1) == ["abc"], "a substring is read from where it starts")
        #expect(FormParameters.pairs(Substring("")).isEmpty && FormParameters.pairs(Substring("&")).isEmpty)
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
