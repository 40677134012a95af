import Foundation
import Logging
import Synchronization

/// Keeps every log line (message and metadata) in memory, to prove what logs contain and what they never contain.
public final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    public init() {}

    public var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    /// A logger whose lines (at `level` and above) go here.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { label in RecordingLogHandler(recorder: self, label: label) }
        logger.logLevel = level
        return logger
    }

    /// Lines that mention `text`.
    public func lines(containing text: String) -> [String] { all.filter { $0.contains(text) } }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        recorder.append("\(event.level) \(fields) \(event.message)\(event.error.map { " error=\($0)" } ?? "")")
    }
}
