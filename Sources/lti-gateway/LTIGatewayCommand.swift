import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatewayApp
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import Sandbox
import ServiceLifecycle
import SkyPrep

@main
struct LTIGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lti-gateway",
        abstract: "An LTI 1.3 tool that launches learners from their LMS into Skillable labs.",
        subcommands: [
            Serve.self, Migrate.self, SandboxCommand.self, Platforms.self, Keys.self, APIKeys.self, Audit.self, Outbox.self, ToolConfig.self,
            SkyPrepCommand.self,
            Jobs.self, Launches.self,
        ])
}

/// Settings and logging shared by the commands.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "JSON configuration file (environment variables override it; default config/gateway.json).")
    var configFile: String?

    func settings() async throws -> GatewaySettings {
        do {
            // A file named on the command line must exist: a misspelt path would otherwise run on the defaults.
            return try await GatewaySettings.load(
                configFile: configFile ?? GatewaySettings.defaultConfigFile, requireFile: configFile != nil)
        } catch let error as SettingsError {
            throw CommandFailure(error.message)
        }
    }

    func logger(_ settings: GatewaySettings, label: String = "lti-gateway") -> Logger {
        let level = Logger.Level(rawValue: settings.server.logLevel) ?? .info
        LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, level: level) }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// Opens the configured store (migrated), runs `body`, and closes the store on every path; refusals become a
/// one-line reason and a non-zero exit.
func withStore<T>(_ settings: GatewaySettings, _ body: (any GatewayStore) async throws -> T) async throws -> T {
    do {
        return try await GatewayApp.withStore(settings: settings, logger: quietLogger) { try await body($0) }
    } catch let error as SettingsError {
        throw CommandFailure(error.message)
    }
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

/// Runs `body` with the administration service on the configured store and signing keys (the same service the admin
/// API uses, acting as `cli` in the audit trail); refusals become a one-line reason and a non-zero exit.
func withAdministration<T>(_ settings: GatewaySettings, _ body: (Administration) async throws -> T) async throws -> T {
    try await withStore(settings) { store in
        do {
            let keys = try signingKeyStore(settings: settings, store: store)
            return try await body(Administration(store: store, signingKeys: keys, keyPolicy: settings.keys.policy, logger: quietLogger))
        } catch let error as AdministrationError {
            throw CommandFailure(error.message)
        } catch let error as StorageError {
            throw CommandFailure(error.message)
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
