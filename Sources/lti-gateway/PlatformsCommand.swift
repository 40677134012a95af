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

struct Platforms: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register, list and remove LMS platforms, and set how their learners' labs launch.",
        subcommands: [
            Add.self, List.self, Update.self, Remove.self, AddDeployment.self, RemoveDeployment.self, SetOptions.self, SetSkyPrep.self, Invite.self,
            Approve.self,
        ])

    /// Launch options shared by `add` and `set-options`.
    struct LaunchOptionFlags: ParsableArguments {
        @Option(name: .customLong("max-active-labs"), help: "Skillable maxActiveLabs for these learners.") var maxActiveLabs: Int?
        @Option(name: .customLong("max-saved-labs"), help: "Skillable maxSavedLabs.") var maxSavedLabs: Int?
        @Option(name: .customLong("duration-minutes"), help: "Lab duration in minutes.") var durationMinutes: Int?
        @Option(name: .customLong("region-id"), help: "Skillable delivery region id.") var regionID: Int?
        @Option(help: "Lab language (default: the launch's locale).") var lang: String?
        @Flag(name: .customLong("no-tag"), help: "Do not tag labs with the platform and course.") var noTag = false
        @Flag(name: .customLong("context-variables"), help: "Fill lab variables LtiContextId, LtiContextTitle, LtiRoles.")
        var contextVariables = false
        @Option(
            name: .customLong("platform-storage"),
            help: "LTI Platform Storage for launches in the LMS frame: auto (when the login asks for it), on, off.")
        var platformStorage: PlatformStorageMode?
        @Option(name: .customLong("storage-frame"), help: "Frame for storage messages when the login names none (Blackboard: lti_storage_frame).")
        var storageFrame: String?
        @Option(
            name: .customLong("storage-origin"),
            help: "Origin of the platform's storage frame when it is not the auth endpoint's (older Canvas: the institution's domain).")
        var storageOrigin: String?
        @Option(
            name: .customLong("picker-role"),
            help:
                "A role that may open the lab picker (repeatable): a full LTI role URI, or a course role's short name (Instructor). Default: course instructors, content developers, teaching assistants and administrators, and institution or system administrators."
        )
        var pickerRoles: [String] = []
        @Option(
            name: .customLong("frame-ancestor"),
            help:
                "An origin whose pages may show the gateway's pages with actions in a frame (repeatable): https://school.instructure.com, a wildcard https://*.example.edu, or * for any. Default: the issuer's and auth endpoint's origins, the storage origin, and the course domains of Canvas, Blackboard and Schoology clouds."
        )
        var frameAncestors: [String] = []

        var options: PlatformLaunchOptions {
            PlatformLaunchOptions(
                maxActiveLabs: maxActiveLabs, maxSavedLabs: maxSavedLabs, durationMinutes: durationMinutes,
                regionID: regionID, lang: lang, sendTag: !noTag, sendContextVariables: contextVariables,
                platformStorage: platformStorage, storageFrame: storageFrame, storageOrigin: storageOrigin,
                pickerRoles: pickerRoles.isEmpty ? nil : pickerRoles, frameAncestors: frameAncestors.isEmpty ? nil : frameAncestors)
        }
    }

    struct SetOptions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-options", abstract: "Set how labs launch for a platform's learners (replaces earlier options).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @OptionGroup var launch: LaunchOptionFlags

        func run() async throws {
            let settings = try await common.settings()
            try await withAdministration(settings) { try await $0.setLaunchOptions(platformID: id, launch.options, by: .commandLine) }
            print("Launch options of \(id): \(PlatformAdministration.describe(launch.options))")
        }
    }

    struct SetSkyPrep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-skyprep", abstract: "Set how a platform's learners are provisioned in SkyPrep (replaces earlier SkyPrep options).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @Flag(inversion: .prefixedNo, help: "Create and update these learners' SkyPrep users on launches.") var provisioning = true
        @Option(help: "SkyPrep account (acct_key, e.g. acme.skyprepapp.com); default SKYPREP_ACCT_KEY.") var account: String?
        @Option(
            name: .customLong("api-key-variable"),
            help: "Environment variable holding that account's API key: SKYPREP_API_KEY_<NAME>; default SKYPREP_API_KEY.")
        var apiKeyVariable: String?
        @Flag(inversion: .prefixedNo, help: "Send the LMS course title as a SkyPrep group on sign-in (default: SKYPREP_GROUP_SYNC).")
        var groupSync: Bool?
        @Flag(name: .customLong("link-by-email"), help: "Link a learner to an existing SkyPrep user with the same email (off: never merge by email).")
        var linkByEmail = false
        @Option(name: .customLong("synthetic-email-domain"), help: "Provision learners without an email as <learner id>@DOMAIN (default: skip them).")
        var syntheticEmailDomain: String?
        @Option(name: .customLong("role"), help: "Map an LTI role to a SkyPrep role, e.g. Instructor=manager (repeat for several).")
        var roles: [String] = []
        @Flag(inversion: .prefixedNo, help: "Enrol the learner in the launch's skyprep_course_id on sign-in.") var enrol = true
        @Option(name: .customLong("course"), help: "A SkyPrep course id links may enrol learners in (repeatable); a link naming another is refused.")
        var courses: [String] = []
        @Option(name: .customLong("group-prefix"), help: "What group names made from course titles start with (default \"LMS: \").")
        var groupPrefix: String?

        func run() async throws {
            var roleMap: [String: String] = [:]
            for pair in roles {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw CommandFailure("--role takes LTI_ROLE=SKYPREP_ROLE, got \(pair)") }
                roleMap[parts[0]] = parts[1]
            }
            let options = PlatformSkyPrepOptions(
                provisioning: provisioning, account: account, apiKeyVariable: apiKeyVariable, groupSync: groupSync, linkByEmail: linkByEmail,
                syntheticEmailDomain: syntheticEmailDomain, roleMap: roleMap, enrolOnSSO: enrol,
                allowedCourseIDs: courses.isEmpty ? nil : courses, groupPrefix: groupPrefix)
            let settings = try await common.settings()
            try await withAdministration(settings) { try await $0.setSkyPrepOptions(platformID: id, options, by: .commandLine) }
            print("SkyPrep options of \(id): \(PlatformAdministration.describe(options))")
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register an LMS platform (one issuer and client id).")
        @OptionGroup var common: CommonOptions
        @Option(help: "The platform's issuer (iss), e.g. https://canvas.instructure.com.") var issuer: String
        @Option(name: .customLong("client-id"), help: "The client id the LMS gave this tool.") var clientID: String
        @Option(name: .customLong("auth-url"), help: "The platform's OIDC authorization endpoint.") var authURL: String
        @Option(name: .customLong("token-url"), help: "The platform's OAuth 2 token endpoint.") var tokenURL: String
        @Option(name: .customLong("jwks-url"), help: "The platform's public key set URL.") var jwksURL: String
        @Option(name: .customLong("deployment"), help: "A deployment id (repeat for several).") var deployments: [String] = []
        @OptionGroup var launch: LaunchOptionFlags

        func run() async throws {
            let settings = try await common.settings()
            let registration = try await withAdministration(settings) { administration in
                try await administration.addPlatform(
                    issuer: issuer, clientID: clientID, authURL: authURL, tokenURL: tokenURL, jwksURL: jwksURL, deployments: deployments,
                    options: launch.options, by: .commandLine
                ).registration
            }
            print("Registered platform (issuer \(registration.issuer), client id \(registration.clientID)):")
            print(registration.id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered platforms.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try await common.settings()
            let platforms = try await withAdministration(settings) { try await $0.platforms() }
            print(PlatformAdministration.table(platforms.map { ($0.registration, $0.options, $0.skyPrep) }), terminator: "")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a platform registration and its deployments.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String

        func run() async throws {
            let settings = try await common.settings()
            try await withAdministration(settings) { try await $0.removePlatform(id: id, by: .commandLine) }
            print("Removed platform \(id)")
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a platform's endpoints (its issuer and client id name it and stay; options: set-options, set-skyprep).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @Option(name: .customLong("auth-url"), help: "The platform's OIDC authorization endpoint.") var authURL: String?
        @Option(name: .customLong("token-url"), help: "The platform's OAuth 2 token endpoint.") var tokenURL: String?
        @Option(name: .customLong("jwks-url"), help: "The platform's public key set URL (learners are tied to it: see the README).")
        var jwksURL: String?

        func run() async throws {
            guard authURL != nil || tokenURL != nil || jwksURL != nil else {
                throw CommandFailure("nothing to change: give --auth-url, --token-url or --jwks-url")
            }
            let settings = try await common.settings()
            let platform = try await withAdministration(settings) {
                try await $0.updatePlatform(id: id, .init(authURL: authURL, tokenURL: tokenURL, jwksURL: jwksURL), by: .commandLine)
            }
            print(PlatformAdministration.table([(platform.registration, platform.options, platform.skyPrep)]), terminator: "")
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a one-time registration link (LTI Dynamic Registration) for an LMS administrator; printed alone on the last line.")
        @OptionGroup var common: CommonOptions
        @Option(name: .customLong("expires-in"), help: "How long the link works: e.g. 30m, 12h, 7d (1 minute to 30 days).")
        var expiresIn = "7d"
        @Option(help: "What the link is for (shown in the audit trail and invitations' list), e.g. \"Canvas test instance\".")
        var note: String?

        func run() async throws {
            guard let seconds = Self.seconds(expiresIn) else { throw CommandFailure("--expires-in takes a number and m, h or d, e.g. 12h or 7d") }
            let settings = try await common.settings()
            let created = try await withAdministration(settings) {
                try await $0.createInvite(expiresIn: seconds, note: note, baseURL: settings.baseURL, by: .commandLine)
            }
            print(
                "Registration link \(created.invite.id), one use, until \(ISO8601DateFormatter().string(from: created.invite.expiresAt)). "
                    + "Paste it as the LMS's LTI Advantage registration URL (Canvas: Developer Keys → + LTI Key → Dynamic Registration; "
                    + "Moodle: Manage tools → Tool URL → Add LTI Advantage):")
            print(created.link)
        }

        /// `30m`, `12h`, `7d` in seconds.
        static func seconds(_ text: String) -> TimeInterval? {
            guard let unit = text.last, let amount = Double(text.dropLast()), amount > 0 else { return nil }
            switch unit {
            case "m": return amount * 60
            case "h": return amount * 3600
            case "d": return amount * 86_400
            default: return nil
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept the launches of a platform registered dynamically (when GATEWAY_REGISTRATION_APPROVAL is on).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String

        func run() async throws {
            let settings = try await common.settings()
            _ = try await withAdministration(settings) { try await $0.approvePlatform(id: id, by: .commandLine) }
            print("Approved platform \(id): its launches are accepted from now on.")
        }
    }

    struct AddDeployment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-deployment",
            abstract: "Add a deployment id to a platform (another install of the tool: a Canvas sub-account, a second Moodle course).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @Argument(help: "The deployment id the LMS shows for the new install.") var deployment: String

        func run() async throws {
            let settings = try await common.settings()
            let platform = try await withAdministration(settings) {
                try await $0.addDeployment(platformID: id, deploymentID: deployment, by: .commandLine)
            }
            print("Deployments of \(id): \(platform.registration.deploymentIDs.joined(separator: ", "))")
        }
    }

    struct RemoveDeployment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-deployment", abstract: "Remove a deployment id from a platform (its launches are refused from then on).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The platform id (see platforms list).") var id: String
        @Argument(help: "The deployment id to remove.") var deployment: String

        func run() async throws {
            let settings = try await common.settings()
            let platform = try await withAdministration(settings) {
                try await $0.removeDeployment(platformID: id, deploymentID: deployment, by: .commandLine)
            }
            print("Deployments of \(id): \(platform.registration.deploymentIDs.joined(separator: ", "))")
        }
    }
}

extension PlatformStorageMode: ExpressibleByArgument {}
