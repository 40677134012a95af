import Foundation
import GatewayStorage
import LTICore
import Synchronization
import Testing

@testable import GatewayApp

/// A monotonic clock the test moves by hand.
final class ManualInstantClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    private let start = ContinuousClock.now
    var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
    func advance(_ duration: Duration) { offset.withLock { $0 += duration } }
}

@Suite("Registration cache")
struct RegistrationCacheTests {
    static func registration(_ id: String) -> PlatformRegistration {
        PlatformRegistration(
            id: id, issuer: "https://lms.example.edu", clientID: "c-\(id)", authURL: "https://lms.example.edu/auth",
            tokenURL: "https://lms.example.edu/token", jwksURL: "https://lms.example.edu/jwks", deploymentIDs: ["d"],
            createdAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test("registrations and options are reused within the TTL and read again after it; unknown ones are never kept")
    func ttl() async throws {
        let store = MemoryGatewayStore()
        try await store.addRegistration(Self.registration("r1"))
        let clock = ManualInstantClock()
        let cache = RegistrationCache(store: store, ttl: .seconds(5), now: { clock.now })
        #expect(try await cache.launchOptions(registrationID: "r1").maxActiveLabs == nil)
        #expect(try await cache.registrations(issuer: "https://lms.example.edu").map(\.id) == ["r1"])
        #expect(try await cache.registrations(issuer: "https://unknown.example").isEmpty)

        // Changed behind the cache's back, as `platforms …` in another process does.
        #expect(try await store.setLaunchOptions(PlatformLaunchOptions(maxActiveLabs: 3), registrationID: "r1"))
        try await store.addRegistration(Self.registration("r2"))
        try await store.addRegistration(
            PlatformRegistration(
                id: "r3", issuer: "https://unknown.example", clientID: "x", authURL: "https://u/a",
                tokenURL: "https://u/t", jwksURL: "https://u/j", deploymentIDs: ["d"], createdAt: Date()))
        #expect(try await cache.launchOptions(registrationID: "r1").maxActiveLabs == nil)
        #expect(try await cache.registrations(issuer: "https://lms.example.edu").map(\.id) == ["r1"])
        // An issuer not found before is looked up again at once (a newly added platform works immediately).
        #expect(try await cache.registrations(issuer: "https://unknown.example").map(\.id) == ["r3"])

        clock.advance(.seconds(4))
        #expect(try await cache.launchOptions(registrationID: "r1").maxActiveLabs == nil, "expired before the TTL")
        clock.advance(.seconds(2))
        #expect(try await cache.launchOptions(registrationID: "r1").maxActiveLabs == 3)
        #expect(try await cache.registrations(issuer: "https://lms.example.edu").map(\.id).sorted() == ["r1", "r2"])
    }

    @Test("a removed registration stops being found once its entry expires; TTL 0 reads every time")
    func removal() async throws {
        let store = MemoryGatewayStore()
        try await store.addRegistration(Self.registration("r1"))
        let uncached = RegistrationCache(store: store, ttl: .zero)
        let clock = ManualInstantClock()
        let cached = RegistrationCache(store: store, ttl: .seconds(5), now: { clock.now })
        #expect(try await cached.registration(id: "r1") != nil)
        #expect(try await store.removeRegistration(id: "r1"))
        #expect(try await uncached.registration(id: "r1") == nil)
        #expect(try await cached.registration(id: "r1") != nil)
        clock.advance(.seconds(5))
        #expect(try await cached.registration(id: "r1") == nil)
    }
}
