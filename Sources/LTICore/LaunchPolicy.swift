import Foundation

/// The tunable parts of login and launch validation.
public struct LaunchPolicy: Sendable {
    /// Leeway for `exp`, `iat` and `nbf` (checklist "Launch" rule 7; zero leeway fails real launches).
    public var clockLeeway: TimeInterval
    /// How old an `iat` may be, beyond the leeway (checklist "Launch" rule 7).
    public var maxTokenAge: TimeInterval
    /// Tokens larger than this are refused before parsing (checklist "Launch" rule 2).
    public var maxTokenBytes: Int
    /// How long a login state waits for its launch (checklist "Login" rule 3: minutes).
    public var stateLifetime: TimeInterval
    /// The exact redirect URI registered with every platform: `…/lti/launch`.
    public var redirectURI: String
    /// Hosts (lower-cased `host[:port]`) a `target_link_uri` may point at: the gateway's own (rule 12).
    public var toolHosts: Set<String>
    /// Audiences besides our client id that a token may also carry (OIDC Core §3.1.3.7 step 3). Default: none.
    public var trustedExtraAudiences: Set<String>
    /// Whether `sub` is required (checklist "Launch" rule 15: required by default).
    public var requireSubject: Bool

    public init(
        clockLeeway: TimeInterval = 30, maxTokenAge: TimeInterval = 600, maxTokenBytes: Int = 64 * 1024,
        stateLifetime: TimeInterval = 600, redirectURI: String, toolHosts: Set<String>,
        trustedExtraAudiences: Set<String> = [], requireSubject: Bool = true
    ) {
        self.clockLeeway = clockLeeway
        self.maxTokenAge = maxTokenAge
        self.maxTokenBytes = maxTokenBytes
        self.stateLifetime = stateLifetime
        self.redirectURI = redirectURI
        self.toolHosts = Set(toolHosts.map { $0.lowercased() })
        self.trustedExtraAudiences = trustedExtraAudiences
        self.requireSubject = requireSubject
    }

    /// True when `uri` is an absolute http(s) URL whose authority is one of ``toolHosts``.
    public func isToolURL(_ uri: String) -> Bool {
        guard let authority = URLAuthority(uri) else { return false }
        return toolHosts.contains(authority)
    }
}

/// The lower-cased `host[:port]` of an absolute http(s) URL, or nil.
public func URLAuthority(_ uri: String) -> String? {
    guard let components = URLComponents(string: uri),
        let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
        let host = components.host?.lowercased(), !host.isEmpty,
        components.user == nil, components.password == nil
    else { return nil }
    if let port = components.port { return "\(host):\(port)" }
    return host
}

/// Compares two secrets in time independent of where they differ.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
    return difference == 0
}
