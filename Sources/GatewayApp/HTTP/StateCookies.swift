import Crypto
import Foundation
import Hummingbird
import LTICore

/// Why the storage page could not read the secret, as logged: one of a fixed set, never the posted text.
enum StorageFailure: String, CustomStringConvertible {
    case timeout, refused, unreachable, unsupported, empty, noCapabilities = "no_capabilities", topLevel = "top_level", noscript, other

    init(_ posted: String) { self = StorageFailure(rawValue: posted) ?? .other }
    var description: String { rawValue }
}

/// The two state cookies of a login: the same value as a plain `SameSite=None` cookie and as a `Partitioned`
/// (CHIPS) one, which Chromium-family browsers keep inside an LMS frame when they block third-party cookies.
/// They have different names, so a browser that keeps both (cookies allowed, or no CHIPS support) sends
/// both, and neither replaces the other.
///
/// Both carry the `__Host-` prefix, so a browser accepts them only as `Secure`, `Path=/` and without `Domain`: a
/// sibling subdomain or a plain-http page cannot plant a state cookie of its own (login CSRF).
enum StateCookies {
    /// `Set-Cookie` values binding `state` to this browser.
    static func set(for state: String, maxAge: Int) -> [String] {
        let names = GatewayCookieNames.stateCookieNames(for: state)
        let attributes = "Path=/; Max-Age=\(maxAge); HttpOnly; Secure; SameSite=None"
        return ["\(names.plain)=\(state); \(attributes)", "\(names.partitioned)=\(state); \(attributes); Partitioned"]
    }

    /// How many logins' state cookies of each kind a browser keeps at once: with more, a page that makes a browser
    /// start logins over and over could push the learner's real state cookie out of the browser's cookie jar.
    static let maxLivePerKind = 8

    /// `Set-Cookie` values expiring the oldest state cookies `cookieHeader` carries, so that with the login's own
    /// there are at most ``maxLivePerKind`` of each kind. Browsers list older cookies first (RFC 6265 §5.4).
    static func expireOldest(in cookieHeader: String?) -> [String] {
        // Every login passes here: most browsers carry no state cookie of ours, and that is seen without splitting.
        guard let cookieHeader,
            cookieHeader.contains(GatewayCookieNames.plainPrefix) || cookieHeader.contains(GatewayCookieNames.partitionedPrefix)
        else { return [] }
        let names = cookieHeader.split(separator: ";").compactMap { pair in
            pair.split(separator: "=", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        var expired: [String] = []
        for (prefix, partitioned) in [(GatewayCookieNames.plainPrefix, false), (GatewayCookieNames.partitionedPrefix, true)] {
            let live = names.filter { $0.hasPrefix(prefix) }
            for name in live.prefix(max(0, live.count - (maxLivePerKind - 1))) {
                expired.append("\(name)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None" + (partitioned ? "; Partitioned" : ""))
            }
        }
        return expired
    }

    /// `Set-Cookie` values removing both cookies named `names`.
    static func expire(_ names: (plain: String, partitioned: String)) -> [String] {
        [
            "\(names.plain)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None",
            "\(names.partitioned)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None; Partitioned",
        ]
    }

    /// The value of the state cookie named `names` this request carries (the plain one first), and whether it
    /// was the partitioned one.
    static func value(_ names: (plain: String, partitioned: String), in cookies: Cookies) -> (value: String, partitioned: Bool)? {
        if let plain = cookies[names.plain]?.value { return (plain, false) }
        if let partitioned = cookies[names.partitioned]?.value { return (partitioned, true) }
        return nil
    }
}

/// Names of the cookies the gateway sets.
public enum GatewayCookieNames {
    /// One cookie per login, named after a digest of its state, so several launches in one browser
    /// (several LMS frames) do not overwrite each other: `__Host-lti_gw_state_` and 12 hex digits of SHA-256(state).
    public static func stateCookieName(for state: String) -> String {
        stateCookieNames(for: state).plain
    }

    /// The login's two state cookies: `__Host-lti_gw_state_…` and the partitioned `__Host-lti_gw_pstate_…`, with the same digest.
    public static func stateCookieNames(for state: String) -> (plain: String, partitioned: String) {
        let digest = Hex.encode(SHA256.hash(data: Data(state.utf8)).prefix(6))
        return (plainPrefix + digest, partitionedPrefix + digest)
    }

    static let plainPrefix = "__Host-lti_gw_state_"
    static let partitionedPrefix = "__Host-lti_gw_pstate_"
}
