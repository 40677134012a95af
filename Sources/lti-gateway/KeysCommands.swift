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

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The tool's signing keys: list, rotate, retire.",
        discussion:
            "Keys go next → active → retiring → removed. A running gateway picks up a change within GATEWAY_KEY_RELOAD_SECONDS (default 15 s). See the key-rotation runbook in the README.",
        subcommands: [List.self, Init.self, Rotate.self, Retire.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the active and next keys if there are none yet (the gateway's first start does the same).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            let ring = try await withAdministration(settings) { try await $0.readySigningKeys(by: .commandLine) }
            print(KeyAdministration.table(ring), terminator: "")
        }
    }

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
        @Flag(help: "Promote the next key even if platforms may not have fetched it yet (the active key leaked, the next did not).")
        var force = false
        @Flag(
            help:
                "Replace every key (active, next, retiring) with fresh ones at once: for keys that may all have leaked with the folder or database they are kept in."
        )
        var emergency = false

        func run() async throws {
            let settings = try await common.settings()
            guard !(force && emergency) else { throw CommandFailure("--force and --emergency exclude each other (--emergency replaces every key)") }
            let ring = try await withAdministration(settings) {
                try await $0.rotateSigningKeys(force: force, emergency: emergency, by: .commandLine)
            }
            print(KeyAdministration.table(ring), terminator: "")
            print(
                emergency
                    ? "Replaced every key: \(ring.active?.kid ?? "-") now signs; no earlier key is published."
                    : "Rotated: \(ring.active?.kid ?? "-") now signs.")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a retiring key from the key set at once (for a compromised key).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The kid of a retiring key (see keys list).") var kid: String

        func run() async throws {
            let settings = try await common.settings()
            let ring = try await withAdministration(settings) { try await $0.retireSigningKey(kid: kid, by: .commandLine) }
            print(KeyAdministration.table(ring), terminator: "")
            print("Retired \(kid): it is no longer published.")
        }
    }
}

struct ToolConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool-config",
        abstract: "Print what an LMS administrator enters to install the gateway (URLs, Canvas developer key, Moodle form).",
        discussion:
            "--lms prints only that LMS's block, field for field in its form's order; with --json, only what that LMS takes (Canvas: the developer key JSON to paste; Moodle: its form's fields). A warning goes to stderr when the public URL is http or this machine's."
    )
    @OptionGroup var common: CommonOptions
    @Option(help: "Include this registered platform's issuer, client id and deployments.") var platform: String?
    @Option(help: "Only this LMS's block: canvas or moodle.") var lms: ToolConfiguration.LMS?
    @Flag(help: "Print JSON (without --lms: the same document as GET /lti/config).") var json = false

    func run() async throws {
        let settings = try await common.settings()
        // Read-only: keys are created by the gateway's first start or by `keys init`, never by a command that prints.
        let ring = try await withKeyStore(settings) { try await $0.loadKeyRing() }
        guard let active = ring.active else {
            throw CommandFailure(
                "no signing keys yet: start the gateway once (lti-gateway serve) or run lti-gateway keys init, then run tool-config again")
        }
        var registration: PlatformRegistration?
        if let platform {
            registration = try await withStore(settings) { try await $0.registration(id: platform) }
            guard registration != nil else { throw CommandFailure("no platform with id \(platform) (see platforms list)") }
        }
        let configuration = ToolConfiguration(baseURL: settings.baseURL, activeKey: active, registration: registration)
        if let warning = configuration.reachabilityWarning {
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
        if json {
            print(String(data: try configuration.json(lms: lms), encoding: .utf8) ?? "{}", terminator: lms == .moodle ? "" : "\n")
        } else {
            print(configuration.text(lms: lms), terminator: "")
        }
    }
}

extension ToolConfiguration.LMS: ExpressibleByArgument {}
