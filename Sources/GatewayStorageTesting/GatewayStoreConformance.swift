import Foundation
import GatewayStorage
import LTICore

/// The behaviour every ``GatewayStore`` backend must show, as named checks.
///
/// A backend's test target runs each check against a fresh, migrated store:
/// `@Test(arguments: GatewayStoreConformance.checks) func conformance(check:) async throws`.
public enum GatewayStoreConformance {
    /// One named behaviour.
    public struct Check: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (any GatewayStore) async throws -> Void
        public var description: String { name }
    }

    /// Thrown when a backend does not behave as required.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String,
                       file: StaticString = #fileID, line: UInt = #line) throws {
        if !condition { throw Failure(description: "\(file):\(line): \(message())") }
    }

    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    static func registration(_ id: String, issuer: String = "https://lms.example.edu", clientID: String? = nil,
                             deployments: [String] = ["dep-1"]) -> PlatformRegistration {
        PlatformRegistration(id: id, issuer: issuer, clientID: clientID ?? "client-\(id)",
                             authURL: "https://lms.example.edu/auth", tokenURL: "https://lms.example.edu/token",
                             jwksURL: "https://lms.example.edu/jwks", deploymentIDs: deployments, createdAt: epoch)
    }

    static func loginState(_ state: String, expiresIn: TimeInterval = 600) -> LoginState {
        LoginState(state: state, nonce: "nonce-\(state)", registrationID: "reg", targetLinkURI: "https://tool/lti/launch",
                   createdAt: epoch, expiresAt: epoch.addingTimeInterval(expiresIn))
    }

    public static let checks: [Check] = [
        Check(name: "registrations round-trip with deployments") { store in
            let r = registration("r1", deployments: ["dep-1", "dep-2"])
            try await store.addRegistration(r)
            let found = try await store.registration(id: "r1")
            try expect(found == r, "read back \(String(describing: found))")
            try expect(try await store.allRegistrations() == [r], "listed")
        },
        Check(name: "one issuer may hold many client ids, found by issuer") { store in
            try await store.addRegistration(registration("a", clientID: "c1"))
            try await store.addRegistration(registration("b", clientID: "c2"))
            try await store.addRegistration(registration("c", issuer: "https://other.example", clientID: "c1"))
            let found = try await store.registrations(issuer: "https://lms.example.edu")
            try expect(Set(found.map(\.id)) == ["a", "b"], "found \(found.map(\.id))")
        },
        Check(name: "the same issuer and client id twice is a duplicate") { store in
            try await store.addRegistration(registration("a", clientID: "c1"))
            do {
                try await store.addRegistration(registration("b", clientID: "c1"))
                try expect(false, "second add succeeded")
            } catch let error as StorageError {
                try expect(error.code == .duplicate, "code \(error.code)")
            }
        },
        Check(name: "removing a registration removes it and its deployments") { store in
            try await store.addRegistration(registration("a"))
            try expect(try await store.removeRegistration(id: "a"), "not removed")
            try expect(try await store.registration(id: "a") == nil, "still found")
            try expect(try await store.removeRegistration(id: "a") == false, "removed twice")
            try await store.addRegistration(registration("a2"))
            try expect(try await store.registration(id: "a2")?.deploymentIDs == ["dep-1"], "deployments of re-added")
        },
        Check(name: "launch options: defaults until set, stored per registration, refused for an unknown one") { store in
            try await store.addRegistration(registration("a"))
            try expect(try await store.launchOptions(registrationID: "a") == PlatformLaunchOptions(), "defaults")
            let options = PlatformLaunchOptions(maxActiveLabs: 3, maxSavedLabs: 1, durationMinutes: 45, regionID: 7, lang: "pt-BR",
                                                sendTag: false, sendContextVariables: true)
            try expect(try await store.setLaunchOptions(options, registrationID: "a"), "not stored")
            try expect(try await store.launchOptions(registrationID: "a") == options, "read back")
            try expect(try await store.setLaunchOptions(options, registrationID: "missing") == false, "stored for a missing registration")
        },
        Check(name: "a login state is consumed once") { store in
            try await store.saveLoginState(loginState("s1"))
            let first = try await store.consumeLoginState("s1", now: epoch)
            try expect(first == loginState("s1"), "first consume \(String(describing: first))")
            try expect(try await store.consumeLoginState("s1", now: epoch) == nil, "second consume succeeded")
            try expect(try await store.consumeLoginState("never", now: epoch) == nil, "unknown consumed")
        },
        Check(name: "an expired login state cannot be consumed") { store in
            try await store.saveLoginState(loginState("s1", expiresIn: 10))
            try expect(try await store.consumeLoginState("s1", now: epoch.addingTimeInterval(11)) == nil, "expired consumed")
        },
        Check(name: "of many racing consumers of one state exactly one wins") { store in
            try await store.saveLoginState(loginState("race"))
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<16 { group.addTask { try await store.consumeLoginState("race", now: epoch) != nil } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            try expect(wins == 1, "\(wins) winners")
        },
        Check(name: "a nonce is accepted once, also under a race") { store in
            try expect(try await store.markNonceUsed(issuer: "i", nonce: "n1", expiresAt: epoch), "first use refused")
            try expect(try await store.markNonceUsed(issuer: "i", nonce: "n1", expiresAt: epoch) == false, "second use accepted")
            try expect(try await store.markNonceUsed(issuer: "j", nonce: "n1", expiresAt: epoch), "other issuer refused")
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<16 { group.addTask { try await store.markNonceUsed(issuer: "i", nonce: "n2", expiresAt: epoch) } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            try expect(wins == 1, "\(wins) winners")
        },
        Check(name: "expired states and nonces are cleaned up, live ones kept") { store in
            try await store.saveLoginState(loginState("old", expiresIn: 10))
            try await store.saveLoginState(loginState("live", expiresIn: 1000))
            _ = try await store.markNonceUsed(issuer: "i", nonce: "old", expiresAt: epoch.addingTimeInterval(10))
            _ = try await store.markNonceUsed(issuer: "i", nonce: "live", expiresAt: epoch.addingTimeInterval(1000))
            let removed = try await store.deleteExpired(now: epoch.addingTimeInterval(100))
            try expect(removed == 2, "removed \(removed)")
            try expect(try await store.consumeLoginState("live", now: epoch) != nil, "live state gone")
            try expect(try await store.markNonceUsed(issuer: "i", nonce: "live", expiresAt: epoch) == false, "live nonce forgotten")
        },
        Check(name: "an identity keeps its id and first-seen time and takes new names") { store in
            let first = LearnerIdentity(id: "u1", issuer: "i", subject: "s", givenName: "Ada", familyName: "L", email: nil,
                                        firstSeen: epoch, lastSeen: epoch)
            _ = try await store.upsertIdentity(first)
            var second = first
            second.id = "u-other"
            second.givenName = "Augusta"
            second.email = "ada@example.edu"
            second.firstSeen = epoch.addingTimeInterval(50)
            second.lastSeen = epoch.addingTimeInterval(50)
            let stored = try await store.upsertIdentity(second)
            try expect(stored.id == "u1" && stored.firstSeen == epoch, "identity changed: \(stored)")
            try expect(stored.givenName == "Augusta" && stored.email == "ada@example.edu", "names not updated")
            try expect(try await store.identity(issuer: "i", subject: "s") == stored, "read back")
            try expect(try await store.identity(issuer: "i", subject: "other") == nil, "unknown found")
        },
        Check(name: "a picker session is consumed once, keeps data exactly (or its absence), and expires") { store in
            let withData = DeepLinkSession(id: "p1", registrationID: "r", deploymentID: "d", returnURL: "https://lms/return",
                                           data: #"{"opaque":"x y\u00e9"} "#, acceptMultiple: true, acceptLineItem: false,
                                           createdAt: epoch, expiresAt: epoch.addingTimeInterval(600))
            var without = withData
            without.id = "p2"
            without.data = nil
            without.expiresAt = epoch.addingTimeInterval(10)
            try await store.saveDeepLinkSession(withData)
            try await store.saveDeepLinkSession(without)
            try expect(try await store.consumeDeepLinkSession(id: "p1", now: epoch) == withData, "read back with data")
            try expect(try await store.consumeDeepLinkSession(id: "p1", now: epoch) == nil, "consumed twice")
            try expect(try await store.consumeDeepLinkSession(id: "p2", now: epoch.addingTimeInterval(11)) == nil, "expired consumed")
            var racing = withData
            racing.id = "p3"
            try await store.saveDeepLinkSession(racing)
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { try await store.consumeDeepLinkSession(id: "p3", now: epoch) != nil } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            try expect(wins == 1, "\(wins) winners")
            var dataless = without
            dataless.id = "p4"
            dataless.expiresAt = epoch.addingTimeInterval(600)
            try await store.saveDeepLinkSession(dataless)
            try expect(try await store.consumeDeepLinkSession(id: "p4", now: epoch)?.data == nil, "absent data came back")
        },
        Check(name: "launches are recorded and listed newest first") { store in
            for i in 0..<3 {
                try await store.recordLaunch(LaunchRecord(
                    id: "l\(i)", registrationID: "r", deploymentID: "d", learnerID: "u", subject: "s",
                    messageType: "LtiResourceLinkRequest", resourceLinkID: "rl", contextID: i == 0 ? nil : "ctx", labID: "42",
                    outcome: "launched", vendorResultCode: 1, labInstanceID: "99\(i)", agsLineItem: nil,
                    createdAt: epoch.addingTimeInterval(Double(i))))
            }
            let recent = try await store.recentLaunches(limit: 2)
            try expect(recent.map(\.id) == ["l2", "l1"], "order \(recent.map(\.id))")
            let first = try await store.launch(id: "l0")
            try expect(first?.contextID == nil && first?.labInstanceID == "990" && first?.vendorResultCode == 1, "read back \(String(describing: first))")
        },
    ]
}
