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
///
/// A URL made only of plain characters (a host name of letters, digits, dots and hyphens, a decimal port, a path and
/// query of RFC 3986's unreserved and sub-delimiter characters and valid percent escapes) is read directly; any other
/// is left to Foundation's parser, whose answer it would be (a differential test holds the two to the same answer).
public func URLAuthority(_ uri: String) -> String? {
    if let plain = PlainURL.authority(uri) { return plain }
    return foundationURLAuthority(uri)
}

/// ``URLAuthority(_:)`` by Foundation's URL parser: the reference for every URL.
public func foundationURLAuthority(_ uri: String) -> String? {
    guard let components = URLComponents(string: uri),
        let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
        let host = components.host?.lowercased(), !host.isEmpty,
        components.user == nil, components.password == nil
    else { return nil }
    if let port = components.port { return "\(host):\(port)" }
    return host
}

/// The authority of a URL in the plain subset described at ``URLAuthority(_:)``, read without Foundation.
public enum PlainURL {
    /// The authority of a plain URL; nil when the URL is outside the plain subset (then the reference parser decides).
    public static func authority(_ uri: String) -> String? {
        var uri = uri
        return uri.withUTF8 { authority(bytes: $0) }
    }

    private static func authority(bytes: UnsafeBufferPointer<UInt8>) -> String? {
        // Scheme: "http" or "https", any case, then "://".
        var index = 0
        func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
        let count = bytes.count
        guard count >= 8, count <= 4096 else { return nil }
        for byte in "http".utf8 {
            guard lower(bytes[index]) == byte else { return nil }
            index += 1
        }
        if lower(bytes[index]) == UInt8(ascii: "s") { index += 1 }
        guard index + 3 <= count, bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"),
            bytes[index + 2] == UInt8(ascii: "/")
        else { return nil }
        index += 3
        // Host: letters, digits, dots and hyphens only, starting with a letter or digit.
        var host: [UInt8] = []
        while index < count, isHostByte(bytes[index]) {
            host.append(lower(bytes[index]))
            index += 1
        }
        guard let first = host.first, isLetterOrDigit(first) else { return nil }
        // Foundation turns punycode labels (`xn--`) into Unicode: those are its to read.
        guard !host.indices.dropLast(3).contains(where: { host[$0] == 0x78 && host[$0 + 1] == 0x6E && host[$0 + 2] == 0x2D && host[$0 + 3] == 0x2D })
        else { return nil }
        var port: Int?
        if index < count, bytes[index] == UInt8(ascii: ":") {
            index += 1
            var digits = 0
            var value = 0
            while index < count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                value = value * 10 + Int(bytes[index] - 0x30)
                digits += 1
                index += 1
                guard digits <= 5 else { return nil }
            }
            if digits > 0 { port = value }
        }
        // The authority ends here; what follows is a path, query and fragment of plain characters only.
        guard index == count || bytes[index] == UInt8(ascii: "/") || bytes[index] == UInt8(ascii: "?") || bytes[index] == UInt8(ascii: "#")
        else { return nil }
        var inFragment = false
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < count, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else { return nil }
                index += 3
                continue
            }
            if byte == UInt8(ascii: "#") {
                guard !inFragment else { return nil }
                inFragment = true
            } else if !isPathByte(byte) {
                return nil
            }
            index += 1
        }
        let name = String(decoding: host, as: UTF8.self)
        return port.map { "\(name):\($0)" } ?? name
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        isLetterOrDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46)
    }

    /// Unreserved, sub-delimiters, ":", "@", "/" and "?" (RFC 3986 `pchar`, query and fragment characters).
    private static func isPathByte(_ byte: UInt8) -> Bool {
        isLetterOrDigit(byte) || "-._~!$&'()*+,;=:@/?".utf8.contains(byte)
    }
}

/// Compares two secrets in time independent of where they differ.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
    return difference == 0
}
