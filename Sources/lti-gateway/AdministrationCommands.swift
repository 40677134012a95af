import ArgumentParser
import Foundation
import GatewayApp
import GatewayStorage

struct APIKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys", abstract: "Admin API keys: create (the secret is shown once), list, revoke.",
        discussion:
            "Scopes: \(APIScope.allCases.map(\.rawValue).joined(separator: ", ")). Rotate a key without downtime: create the new key, switch your scripts to it, then revoke the old one.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key; its secret is printed once, alone on the last line.")
        @OptionGroup var common: CommonOptions
        @Option(help: "What the key is for (shown in lists), e.g. \"provisioning pipeline\".") var name: String
        @Option(name: .customLong("scope"), parsing: .upToNextOption, help: "Scopes the key holds (one or more).") var scopes: [String] = []
        @Option(help: "When the key stops working: an ISO 8601 date-time such as 2027-06-30T00:00:00Z.") var expires: String?
        @Flag(help: "A test key (sk_test_…) rather than a live one (sk_live_…).") var test = false

        func run() async throws {
            guard !scopes.isEmpty else {
                throw CommandFailure("at least one --scope is required (\(APIScope.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var expiresAt: Date?
            if let expires {
                guard let date = ISO8601Time.parse(expires) else {
                    throw CommandFailure("--expires must be an ISO 8601 date-time such as 2027-06-30T00:00:00Z")
                }
                expiresAt = date
            }
            let settings = try await common.settings()
            let created = try await withAdministration(settings) {
                try await $0.createAPIKey(name: name, scopes: scopes, expiresAt: expiresAt, environment: test ? .test : .live, by: .commandLine)
            }
            print("Created API key \(created.key.id) (\(created.key.scopes.joined(separator: " "))). Its secret is shown this once; store it now:")
            print(created.secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys (never their secrets).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            print(AdministrationTables.apiKeys(try await withAdministration(settings) { try await $0.apiKeyList() }), terminator: "")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an API key: every instance refuses it from its next request on.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The key's id (key_…, see api-keys list).") var id: String

        func run() async throws {
            let settings = try await common.settings()
            try await withAdministration(settings) { try await $0.deleteAPIKey(id: id, by: .commandLine) }
            print("Revoked API key \(id)")
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Who changed platforms, signing keys and API keys, and when.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List changes, newest first.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Show at most this many (1…10000).") var limit = 100

        func run() async throws {
            guard (1...10_000).contains(limit) else { throw CommandFailure("--limit must be 1…10000") }
            let settings = try await common.settings()
            let events = try await withAdministration(settings) { try await $0.auditEvents(after: nil, limit: limit) }
            print(AdministrationTables.auditEvents(events), terminator: "")
        }
    }
}

struct Outbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scores waiting for the LMS's gradebook, or failed: list, retry.", subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List score deliveries waiting or failed, oldest first.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Show at most this many (1…10000).") var limit = 100

        func run() async throws {
            guard (1...10_000).contains(limit) else { throw CommandFailure("--limit must be 1…10000") }
            let settings = try await common.settings()
            print(AdministrationTables.outbox(try await withAdministration(settings) { try await $0.outbox(limit: limit) }), terminator: "")
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliver a failed score again at the next poll of a running gateway.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The delivery's id (its lab instance, see outbox list).") var id: String

        func run() async throws {
            let settings = try await common.settings()
            _ = try await withAdministration(settings) { try await $0.retryDelivery(id: id, by: .commandLine) }
            print("Score delivery \(id) will be tried at the next poll of a running gateway.")
        }
    }
}
