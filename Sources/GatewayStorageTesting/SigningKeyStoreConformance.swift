import Foundation
import GatewayStorage
import LTICore
import Synchronization

/// The behaviour every ``SigningKeyStore`` backend must show.
///
/// Each check gets two handles on one fresh, empty storage location (as two processes or instances
/// would have): `@Test(arguments: SigningKeyStoreConformance.checks)`.
public enum SigningKeyStoreConformance {
    public struct Check: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (_ store: any SigningKeyStore, _ otherHandle: any SigningKeyStore) async throws -> Void
        public var description: String { name }
    }

    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    /// Keys generated once per process: RSA generation is slow.
    static let keys: [ToolKey] = (0..<4).map { i in
        try! ToolKey.generate(now: epoch.addingTimeInterval(Double(i) * 60))
    }

    /// Hands out the pre-generated keys in turn.
    static func generator() -> @Sendable () throws -> ToolKey {
        let counter = Mutex(0)
        return {
            let index = counter.withLock { value in
                defer { value += 1 }
                return value
            }
            return keys[index % keys.count]
        }
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) throws {
        if !condition { throw GatewayStoreConformance.Failure(description: "SigningKeyStoreConformance:\(line): \(message())") }
    }

    public static let checks: [Check] = [
        Check(name: "an empty store holds an empty ring") { store, _ in
            try expect(try await store.loadKeyRing().keys.isEmpty, "not empty")
        },
        Check(name: "a readied ring round-trips: kids, states, dates, private keys") { store, other in
            let generate = generator()
            let stored = try await store.updateKeyRing { try $0.readied(now: epoch, generate: generate) }
            let loaded = try await other.loadKeyRing()
            try expect(loaded.active?.kid == stored.active?.kid && loaded.next?.kid == stored.next?.kid, "kids differ")
            try expect(loaded.active?.activatedAt == epoch, "activation time \(String(describing: loaded.active?.activatedAt))")
            try expect(loaded.keys.count == 2, "\(loaded.keys.count) keys")
            try expect(loaded.active?.privateKeyPEM == stored.active?.privateKeyPEM, "private key differs")
        },
        Check(name: "rotation and retirement are stored and seen through another handle") { store, other in
            let generate = generator()
            let first = try await store.updateKeyRing { try $0.readied(now: epoch, generate: generate) }
            let firstActive = try first.active.map(\.kid) ?? { throw GatewayStoreConformance.Failure(description: "no active") }()
            let before = try await other.keyRingRevision()
            let rotated = try await store.updateKeyRing {
                try $0.rotated(now: epoch.addingTimeInterval(3600), grace: 7 * 86400, minimumNextAge: 0, force: false, generate: generate)
            }
            try expect(try await other.keyRingRevision() != before, "revision unchanged after rotation")
            let seen = try await other.loadKeyRing()
            try expect(seen.active?.kid == rotated.active?.kid && seen.key(kid: firstActive)?.state == .retiring, "rotation not seen")
            try expect(seen.key(kid: firstActive)?.retiresAt == epoch.addingTimeInterval(3600 + 7 * 86400), "retires-at lost")
            _ = try await other.updateKeyRing { try $0.retired(kid: firstActive) }
            try expect(try await store.loadKeyRing().key(kid: firstActive) == nil, "retired key still stored")
        },
        Check(name: "a refused change stores nothing") { store, _ in
            let generate = generator()
            _ = try await store.updateKeyRing { try $0.readied(now: epoch, generate: generate) }
            let revision = try await store.keyRingRevision()
            let activeKid = try await store.loadKeyRing().active?.kid ?? ""
            do {
                _ = try await store.updateKeyRing { try $0.retired(kid: activeKid) }
                try expect(false, "retiring the active key was accepted")
            } catch KeyRingError.cannotRetireActive {}
            try expect(try await store.keyRingRevision() == revision, "revision changed")
        },
        Check(name: "concurrent writers through two handles are serialised: no update is lost") { store, other in
            let generate = generator()
            _ = try await store.updateKeyRing { try $0.readied(now: epoch, generate: generate) }
            let start = try await store.keyRingRevision()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<6 {
                    let handle = i % 2 == 0 ? store : other
                    group.addTask { _ = try await handle.updateKeyRing { $0 } }
                }
                try await group.waitForAll()
            }
            let end = try await store.keyRingRevision()
            try expect(end == start + 6, "revision \(end), expected \(start + 6)")
        },
    ]
}
