import Foundation
import GatewayStorage
import LTICore
import Synchronization

/// Platform registrations and their options, read from the store at most once per `ttl` per key, so a
/// launch does not read them from the database again and again. A change made by `platforms …` (in any
/// process, or on any instance of a shared database) is seen within `ttl`. Only what exists is kept, so
/// made-up issuers in forged launches cannot grow it.
final class RegistrationCache: RegistrationLookup {
    private struct Entry<Value> {
        let value: Value
        let expires: ContinuousClock.Instant
    }

    private struct Options {
        let launch: PlatformLaunchOptions
        let skyPrep: PlatformSkyPrepOptions
    }

    let store: any RegistrationStore & SkyPrepAccountStore
    let ttl: Duration
    /// The cache's clock (tests move it).
    let now: @Sendable () -> ContinuousClock.Instant
    private let byIssuer = Mutex<[String: Entry<[PlatformRegistration]>]>([:])
    private let byID = Mutex<[String: Entry<PlatformRegistration>]>([:])
    private let options = Mutex<[String: Entry<Options>]>([:])

    /// - Parameter ttl: zero reads the store every time.
    init(store: any RegistrationStore & SkyPrepAccountStore, ttl: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.store = store
        self.ttl = ttl
        self.now = now
    }

    func registrations(issuer: String) async throws -> [PlatformRegistration] {
        let now = now()
        if let hit = byIssuer.withLock({ $0[issuer] }), hit.expires > now { return hit.value }
        let found = try await store.registrations(issuer: issuer)
        if !found.isEmpty, ttl > .zero { byIssuer.withLock { $0[issuer] = Entry(value: found, expires: now + ttl) } }
        return found
    }

    func registration(id: String) async throws -> PlatformRegistration? {
        let now = now()
        if let hit = byID.withLock({ $0[id] }), hit.expires > now { return hit.value }
        let found = try await store.registration(id: id)
        if let found, ttl > .zero { byID.withLock { $0[id] = Entry(value: found, expires: now + ttl) } }
        return found
    }

    func launchOptions(registrationID: String) async throws -> PlatformLaunchOptions {
        try await bothOptions(registrationID).launch
    }

    func skyPrepOptions(registrationID: String) async throws -> PlatformSkyPrepOptions {
        try await bothOptions(registrationID).skyPrep
    }

    private func bothOptions(_ registrationID: String) async throws -> Options {
        let now = now()
        if let hit = options.withLock({ $0[registrationID] }), hit.expires > now { return hit.value }
        let found = Options(
            launch: try await store.launchOptions(registrationID: registrationID),
            skyPrep: try await store.skyPrepOptions(registrationID: registrationID))
        // Options of an unknown registration are defaults: kept only for registrations that exist.
        if ttl > .zero, try await registration(id: registrationID) != nil {
            options.withLock { $0[registrationID] = Entry(value: found, expires: now + ttl) }
        }
        return found
    }
}
