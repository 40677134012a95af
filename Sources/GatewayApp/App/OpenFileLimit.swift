#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit, which bounds how many client connections the gateway may hold.
enum OpenFileLimit {
    /// Descriptors kept back from client connections: the database, vendor and platform connections, key files, logs.
    static let reserved = 256

    /// The current soft limit (nil when it cannot be read or is unlimited).
    static var current: Int? {
        var limit = rlimit()
        guard getrlimit(resourceKind, &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit to the hard limit (at most `ceiling`) where the system allows it; returns the limit in
    /// force afterwards.
    @discardableResult
    static func raise(upTo ceiling: Int = 1 << 20) -> Int? {
        var limit = rlimit()
        guard getrlimit(resourceKind, &limit) == 0 else { return nil }
        let target = min(limit.rlim_max, rlim_t(ceiling))
        if limit.rlim_cur < target {
            limit.rlim_cur = target
            _ = setrlimit(resourceKind, &limit)
        }
        return current
    }

    /// The most client connections the gateway accepts at once: `requested`, but never so many that the descriptors
    /// left for everything else fall below ``reserved``.
    static func connectionCap(requested: Int, limit: Int? = current) -> Int {
        guard let limit else { return requested }
        return max(16, min(requested, limit - reserved))
    }

    #if canImport(Glibc)
    private static let resourceKind = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceKind = RLIMIT_NOFILE
    #endif
}
