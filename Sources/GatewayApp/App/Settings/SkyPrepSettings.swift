import Foundation
import LTICore
import SkyPrep

/// The SkyPrep admin API and how learners' accounts are kept there.
public struct SkyPrepSettings: SettingsArea {
    /// SkyPrep admin API base, e.g. https://api.skyprep.io/admin/api; nil → the built-in fake.
    public var baseURL: String?
    /// - Important: Secret: the customer's SkyPrep domain, e.g. acme.skyprepapp.com.
    public var acctKey: String?
    /// - Important: Secret.
    public var apiKey: String?
    /// Client-side rate limit of SkyPrep calls.
    public var callsPerMinute = 100
    /// Send the LMS course title as the learner's SkyPrep group on SSO.
    public var groupSync = false
    /// First delay before a failed provisioning runs again; doubles per attempt up to an hour.
    public var retryDelay = Duration.seconds(30)
    /// Hosts SkyPrep sign-in links may point to besides the account's own domain (https only; a leading `.` allows
    /// subdomains), for customers on a domain of their own.
    public var loginHosts = [".skyprepapp.com"]
    /// How a SkyPrep user is found by email.
    public var userLookup = SkyPrepUserLookup.listAll

    public init() {}

    public static let settings: [Setting<Self>] = [
        .optionalText(
            "SKYPREP_BASE_URL", \.baseURL, "SkyPrep admin API, e.g. `https://api.skyprep.io/admin/api`", absent: "built-in sandbox",
            reason: vendorURLProblem),
        .secret("SKYPREP_ACCT_KEY", \.acctKey, "the customer's SkyPrep domain, e.g. `acme.skyprepapp.com`"),
        .secret("SKYPREP_API_KEY", \.apiKey, "the SkyPrep API key"),
        .integer("SKYPREP_CALLS_PER_MINUTE", \.callsPerMinute, "client-side rate limit", allowed: 1...10_000),
        .flag("SKYPREP_GROUP_SYNC", \.groupSync, "send the LMS course title as a SkyPrep group on sign-in"),
        .duration(
            "SKYPREP_RETRY_SECONDS", \.retryDelay, "first wait before a failed provisioning runs again (doubles, at most 1 h)",
            range: 0.1...3600),
        .parsed(
            "SKYPREP_USER_LOOKUP", \.userLookup,
            "how a SkyPrep user is found by email to link an account: `get_users` (documented; lists the whole tenant) or `get_user` (by `user_email`: one user, the smallest answer; unconfirmed at SkyPrep, so opt-in)",
            rule: "get_users or get_user", parse: { SkyPrepUserLookup(rawValue: $0) }, format: { $0.rawValue }),
        .parsed(
            "SKYPREP_LOGIN_HOSTS", \.loginHosts,
            "hosts SkyPrep sign-in links may point to besides the account's domain (comma-separated, https only; leading `.` = subdomains)",
            rule: "a comma-separated list of host names",
            parse: { text in
                let hosts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
                return hosts.isEmpty || hosts.contains(where: { $0.contains("/") || $0.contains(":") }) ? nil : hosts
            }, format: { $0.joined(separator: ",") }),
    ]

    public func validateTogether() throws {
        if baseURL != nil, acctKey?.isEmpty != false || apiKey?.isEmpty != false {
            throw SettingsError(message: "SKYPREP_ACCT_KEY and SKYPREP_API_KEY must be set when SKYPREP_BASE_URL is set")
        }
    }
}
