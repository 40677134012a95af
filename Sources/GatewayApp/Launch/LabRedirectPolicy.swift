import Foundation
import LTICore

/// Where the gateway will send a learner's browser after a lab launch (checklist "Launch" rule 12: no open redirect).
struct LabRedirectPolicy: Sendable {
    /// Exact `host[:port]` authorities: the gateway's own and the Skillable API's.
    let exactAuthorities: Set<String>
    /// Host suffixes such as `.labondemand.com` (https only).
    let hostSuffixes: [String]
    /// The built-in sandbox's loopback authority, known once the server listens.
    let sandboxAuthority: (@Sendable () -> String?)?

    /// Why `url` was refused, for the log: only its host and port (the rest may carry a one-time token), and the
    /// setting that allows more hosts.
    func refusal(_ url: String, setting: String) -> RedirectRefused {
        RedirectRefused(authority: URLAuthority(url) ?? "an unreadable URL", setting: setting)
    }

    func allows(_ url: String) -> Bool {
        guard let authority = URLAuthority(url) else { return false }
        if exactAuthorities.contains(authority) || authority == sandboxAuthority?() { return true }
        guard url.lowercased().hasPrefix("https://"), let host = URLComponents(string: url)?.host?.lowercased() else { return false }
        return hostSuffixes.contains { suffix in
            suffix.hasPrefix(".") ? (host.hasSuffix(suffix) || host == String(suffix.dropFirst())) : host == suffix
        }
    }
}

/// A vendor's URL the gateway did not send the learner to.
struct RedirectRefused: Error, CustomStringConvertible {
    let authority: String
    let setting: String
    var description: String { "the vendor sent the learner to \(authority), which is not an allowed host (see \(setting))" }
}
