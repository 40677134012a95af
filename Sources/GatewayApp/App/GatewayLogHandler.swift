import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's log lines on standard error: `time level label: key=value … [source] message`, the
/// same shape as swift-log's `StreamLogHandler`, but metadata is rendered when a line is written, not
/// each time a request sets its reference id (which every request does, and few requests log).
public struct GatewayLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let write: @Sendable (String) -> Void

    /// - Parameter write: where finished lines go (standard error by default).
    public init(label: String, level: Logger.Level, write: @escaping @Sendable (String) -> Void = GatewayLogHandler.standardError) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        if let error = event.error { fields["error"] = "\(error)" }
        let rendered = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let time = Self.timestamp(seconds: Int(Glibc.time(nil)))
        write("\(time) \(event.level) \(label):\(rendered) [\(event.source)] \(event.message)\n")
    }

    /// `seconds` since 1970 as ISO 8601 in UTC to the second (`2026-12-01T00:37:13Z`), as `Date.formatted(.iso8601)`
    /// writes it, without a formatter.
    public static func timestamp(seconds: Int) -> String {
        var parts = tm()
        var seconds = time_t(seconds)
        guard gmtime_r(&seconds, &parts) != nil else { return "?" }
        func digits(_ value: Int32, _ count: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, count - text.count)) + text
        }
        return digits(parts.tm_year + 1900, 4) + "-" + digits(parts.tm_mon + 1, 2) + "-" + digits(parts.tm_mday, 2) + "T"
            + digits(parts.tm_hour, 2) + ":" + digits(parts.tm_min, 2) + ":" + digits(parts.tm_sec, 2) + "Z"
    }

    /// Writes a whole line with one `write(2)` to standard error, so lines of concurrent requests do not interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}
