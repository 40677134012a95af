import Foundation

/// The one rule for URLs of platforms and vendors the gateway calls or stores: https, or plain http only to this
/// machine (a local platform, the sandbox, tests).
public enum SecureURL {
    /// The lower-cased scheme and host, and the port, of `url` when it is absolute, carries no credentials, and is
    /// https — or http to a loopback host; nil otherwise.
    public static func parse(_ url: String) -> (scheme: String, host: String, port: Int)? {
        guard url.count <= 2048, let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty, components.user == nil, components.password == nil,
            scheme == "https" || (scheme == "http" && Loopback.isLoopback(host))
        else { return nil }
        return (scheme, host, components.port ?? (scheme == "https" ? 443 : 80))
    }
}
