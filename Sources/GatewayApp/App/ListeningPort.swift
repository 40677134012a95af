import Foundation
import Synchronization

/// The port a running server bound, published once it is known.
public final class ListeningPort: Sendable {
    private let port = Mutex<Int?>(nil)
    public init() {}
    public var value: Int? { port.withLock { $0 } }
    func set(_ value: Int) { port.withLock { $0 = value } }

    /// Waits (up to `timeout`) until the server has bound its port.
    public func wait(timeout: Duration = .seconds(10)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw SettingsError(message: "the server did not start listening within \(timeout)")
    }
}
