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

    func allows(_ url: String) -> Bool {
        guard let authority = URLAuthority(url) else { return false }
        if exactAuthorities.contains(authority) || authority == sandboxAuthority?() { return true }
        guard url.lowercased().hasPrefix("https://"), let host = URLComponents(string: url)?.host?.lowercased() else { return false }
        return hostSuffixes.contains { suffix in
            suffix.hasPrefix(".") ? (host.hasSuffix(suffix) || host == String(suffix.dropFirst())) : host == suffix
        }
    }
}
