import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatewayApp
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import NIOCore
import Sandbox
import ServiceLifecycle
import SkyPrep

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")
    @OptionGroup var common: CommonOptions
    @Flag(
        help:
            "Let the built-in Skillable and SkyPrep fakes stand in for unset vendors although GATEWAY_PUBLIC_URL is another machine (a demo; never with an https public URL). On this machine they do without it."
    )
    var sandbox = false

    func run() async throws {
        var settings = try await common.settings()
        // Before anything starts the shared event loops: their number is fixed when they are first used.
        NIOSingletons.groupLoopCountSuggestion = settings.server.eventLoops
        settings.server.sandboxRequested = sandbox
        let logger = common.logger(settings)
        do {
            try await runGateway(settings: settings, logger: logger)
        } catch let error as SettingsError {
            throw CommandFailure(error.message)
        }
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
        do {
            try await withStore(settings: settings, logger: logger) { _ in }
        } catch {
            throw CommandFailure("migration failed: \(error)")
        }
        print("Database is up to date.")
    }
}

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run only the local Skillable and SkyPrep fakes (for a gateway elsewhere).",
        discussion:
            "Serves the Lab API v3 fake at http://HOST:PORT/sandbox/skillable/api/v3 (api_key header: SKILLABLE_API_KEY, default sandbox-key) and the SkyPrep admin API fake at http://HOST:PORT/sandbox/skyprep/admin/api (SKYPREP_ACCT_KEY and SKYPREP_API_KEY, defaults sandbox.skyprepapp.com and sandbox-key)."
    )
    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port.") var port = 8081

    func run() async throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        let key = ProcessInfo.processInfo.environment["SKILLABLE_API_KEY"] ?? "sandbox-key"
        let sandbox = SkillableSandbox(apiKey: key)
        let environment = ProcessInfo.processInfo.environment
        let skyPrep = SkyPrepSandbox(
            acctKey: environment["SKYPREP_ACCT_KEY"] ?? "sandbox.skyprepapp.com",
            apiKey: environment["SKYPREP_API_KEY"] ?? "sandbox-key")
        let router = Router()
        sandbox.addRoutes(to: router)
        skyPrep.addRoutes(to: router)
        let logger = Logger(label: "lti-gateway-sandbox")
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "lti-gateway-sandbox"),
            onServerRunning: { channel in
                logger.info("sandbox listening", metadata: ["url": "http://\(host):\(channel.localAddress?.port ?? port)\(sandbox.prefix)/api/v3"])
            }, logger: logger)
        try await app.runService()
    }
}
