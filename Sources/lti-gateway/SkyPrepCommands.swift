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

struct SkyPrepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skyprep", abstract: "SkyPrep admin API checks.", subcommands: [TestConnection.self])

    struct TestConnection: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-connection", abstract: "Call SkyPrep's test_connection with the configured keys; print success or the exact failure.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            guard let base = settings.skyPrep.baseURL, let acct = settings.skyPrep.acctKey, let key = settings.skyPrep.apiKey else {
                throw CommandFailure(
                    "SKYPREP_BASE_URL, SKYPREP_ACCT_KEY and SKYPREP_API_KEY are not all set: the gateway uses its built-in SkyPrep fake")
            }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let client = SkyPrepClient(
                http: http, settings: .init(baseURL: { base }, acctKey: acct, apiKey: key, maxAttempts: 1), logger: quietLogger)
            let outcome: Result<Bool, any Error>
            do { outcome = .success(try await client.testConnection()) } catch { outcome = .failure(error) }
            try await http.shutdown()
            switch outcome {
            case .success(true): print("SkyPrep connection: success (\(base))")
            case .success(false): throw CommandFailure("SkyPrep answered, but not with message=success")
            case .failure(let error as SkyPrepError):
                throw CommandFailure(
                    "SkyPrep \(error.code.rawValue)\(error.httpStatus.map { " (HTTP \($0))" } ?? ""): \(error.responseBody.prefix(200))")
            case .failure(let error): throw error
            }
        }
    }
}

struct Launches: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Launch records in the database.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recent launches, newest first; `--outcome pending` shows launches cut short while Skillable started their lab.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Only launches with this outcome (e.g. launched, pending, skillable_unavailable).") var outcome: String?
        @Option(help: "Only this platform's launches (see platforms list).") var platform: String?
        @Option(help: "Only this learner's launches.") var learner: String?
        @Option(help: "Only launches of this lab.") var lab: String?
        @Option(help: "Show at most this many (1…10000).") var limit = 100

        func run() async throws {
            guard (1...10_000).contains(limit) else { throw CommandFailure("--limit must be 1…10000") }
            let settings = try await common.settings()
            let query = LaunchQuery(registrationID: platform, learnerID: learner, labID: lab, outcome: outcome, limit: limit)
            let launches = try await withAdministration(settings) { try await $0.launches(query) }
            print(PlatformAdministration.launchesTable(launches), terminator: "")
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
            try await withAdministration(settings) { try await $0.releaseJob(kind: kind, key: key, by: .commandLine) }
            print("Job \(kind) \(key) will run at the next poll of a running gateway.")
        }
    }
}
