/// Host names that reach only this machine: the one case where plain `http` (or a database without TLS) exposes
/// nothing on a network.
public enum Loopback {
    /// Whether `host` (as in a URL; IPv6 with or without brackets) is a loopback address or `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
