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

extension LabRedirectPolicy {
    /// The policy's hosts as CSP sources, for `form-action`: browsers hold a form's redirects to it too, so a page whose
    /// form is answered with a redirect into a lab must name the lab's hosts. Exact authorities without a scheme (the
    /// page's own), host suffixes as https wildcards; anything that is not a plain host is left out.
    var formActionSources: [String] {
        var sources = exactAuthorities.sorted()
        if let sandbox = sandboxAuthority?() { sources.append(sandbox) }
        for suffix in hostSuffixes {
            sources += suffix.hasPrefix(".") ? ["https://*" + suffix, "https://" + suffix.dropFirst()] : ["https://" + suffix]
        }
        return sources.filter { source in
            !source.isEmpty
                && source.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x3A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || "-.*/[]".utf8.contains(byte)
                }
        }
    }
}

/// Where the forms of a page may post: this gateway, and where the gateway's answer to them may redirect the browser
/// (a lab, SkyPrep).
struct FormTargets: Sendable {
    let policies: [LabRedirectPolicy]

    /// The page's CSP `form-action` value.
    var formAction: String {
        var seen: Set<String> = []
        return (["'self'"] + policies.flatMap(\.formActionSources)).filter { seen.insert($0).inserted }.joined(separator: " ")
    }
}

/// A vendor's URL the gateway did not send the learner to.
struct RedirectRefused: Error, CustomStringConvertible {
    let authority: String
    let setting: String
    var description: String { "the vendor sent the learner to \(authority), which is not an allowed host (see \(setting))" }
}
