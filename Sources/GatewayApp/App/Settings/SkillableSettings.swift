import Foundation
import LTICore
import Skillable

/// The Skillable Lab on Demand API and how lab launches use it.
public struct SkillableSettings: SettingsArea {
    /// Lab on Demand API base; nil → the built-in sandbox.
    public var baseURL: String?
    /// - Important: Secret.
    public var apiKey: String?
    /// Deadline of one Skillable call.
    public var timeout = Duration.seconds(10)
    /// Hosts besides the API's own that Skillable lab URLs may be on (a leading `.` allows subdomains).
    public var labHosts = [".labondemand.com"]
    /// How long the lab list is used before a background refresh.
    public var catalogLifetime = Duration.seconds(300)
    /// How long a learner waits in all for a lab launch, retries included.
    public var launchDeadline = Duration.seconds(20)
    /// Attempts of one launch on outages.
    public var launchAttempts = 3
    /// How a deferred-launch answer is recognised.
    public var deferredLaunchRule = DeferredLaunchRule.urlWithNonSuccess
    /// How long a finished launch is shared with further clicks of the same learner and lab.
    public var launchJoinWindow = Duration.seconds(10)
    /// How long the too-many-labs page's actions stay valid.
    public var labSessionLifetime = Duration.seconds(900)
    /// The secret Skillable sends in its webhooks' `Authorization` header; nil: webhooks are refused.
    /// - Important: Secret.
    public var webhookSecret: String?

    public init() {}

    /// Whether the built-in Skillable sandbox serves this gateway.
    public var usesSandbox: Bool { baseURL == nil }

    public static let settings: [Setting<Self>] = [
        .optionalText(
            "SKILLABLE_BASE_URL", \.baseURL, "Lab on Demand API v3, e.g. `https://labondemand.com/api/v3`", absent: "built-in sandbox",
            reason: vendorURLProblem),
        .secret("SKILLABLE_API_KEY", \.apiKey, "the Lab on Demand API key"),
        .duration("SKILLABLE_TIMEOUT_SECONDS", \.timeout, "deadline of one Skillable call", range: 0.1...120),
        .parsed(
            "SKILLABLE_LAB_HOSTS", \.labHosts, "hosts lab URLs may be on (comma-separated; leading `.` = subdomains)",
            rule: "a comma-separated list of host names",
            parse: { text in
                let hosts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
                return hosts.isEmpty ? nil : hosts
            }, format: { $0.joined(separator: ",") }),
        .duration(
            "SKILLABLE_CATALOG_TTL_SECONDS", \.catalogLifetime, "how long the lab list is used before a background refresh", range: 1...86_400),
        .duration(
            "SKILLABLE_LAUNCH_DEADLINE_SECONDS", \.launchDeadline, "how long a learner waits in all for a launch, retries included",
            range: 1...120),
        .integer("SKILLABLE_LAUNCH_ATTEMPTS", \.launchAttempts, "attempts of one launch on outages", allowed: 1...10),
        .parsed(
            "SKILLABLE_DEFERRED_LAUNCH_RULE", \.deferredLaunchRule,
            "how a deferred-launch answer is recognised: `url-with-non-success`, `field:NAME`, `off`",
            rule: "url-with-non-success, field:NAME or off", parse: { DeferredLaunchRule(setting: $0) }, format: { $0.description }),
        .duration(
            "GATEWAY_LAUNCH_JOIN_SECONDS", \.launchJoinWindow, "how long a finished launch is shared with further clicks on the same lab",
            range: 0...300),
        .duration(
            "GATEWAY_LAB_SESSION_TTL_SECONDS", \.labSessionLifetime, "how long the too-many-labs page's actions stay valid", range: 60...86_400),
        .secret(
            "GATEWAY_WEBHOOK_SECRET", \.webhookSecret,
            "the secret Skillable sends in its webhooks' `Authorization` header (`Bearer SECRET`, or Basic with it as the password; at least 16 characters); unset, webhooks are refused"
        ),
    ]

    public func validateTogether() throws {
        if baseURL != nil, apiKey?.isEmpty != false {
            throw SettingsError(message: "SKILLABLE_API_KEY must be set when SKILLABLE_BASE_URL is set")
        }
    }
}
