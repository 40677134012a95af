import Foundation
import LTICore

/// Platform registrations and their deployments.
public protocol RegistrationStore: RegistrationLookup {
    /// Adds a registration. Throws ``StorageError`` `.duplicate` when (issuer, client id) is taken.
    func addRegistration(_ registration: PlatformRegistration) async throws
    func allRegistrations() async throws -> [PlatformRegistration]
    /// Removes the registration and its deployments; `false` when there was none.
    func removeRegistration(id: String) async throws -> Bool
    /// The registration's launch options (defaults when none were set).
    func launchOptions(registrationID: String) async throws -> PlatformLaunchOptions
    /// Replaces the registration's launch options; `false` when there is no such registration.
    func setLaunchOptions(_ options: PlatformLaunchOptions, registrationID: String) async throws -> Bool
}

/// Learner identities keyed by (issuer, sub).
public protocol IdentityStore: Sendable {
    /// Inserts the identity, or updates names, email and last-seen time of the existing one with the
    /// same (issuer, sub), keeping its id and first-seen time. Returns the stored identity.
    func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity
    func identity(issuer: String, subject: String) async throws -> LearnerIdentity?
}

/// The launch record.
public protocol LaunchStore: Sendable {
    func recordLaunch(_ launch: LaunchRecord) async throws
    func launch(id: String) async throws -> LaunchRecord?
    /// The newest launches first, at most `limit`.
    func recentLaunches(limit: Int) async throws -> [LaunchRecord]
}

/// Open lab pickers (deep linking).
public protocol DeepLinkSessionStore: Sendable {
    func saveDeepLinkSession(_ session: DeepLinkSession) async throws
    /// Removes and returns the session if it exists and has not expired at `now`.
    ///
    /// - Important: Atomic: of two racing submissions of one picker, at most one gets the session.
    func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession?
}

/// Everything the gateway keeps. A backend implements all of it and passes `GatewayStoreConformance`.
public protocol GatewayStore: RegistrationStore, LoginStateStore, NonceStore, IdentityStore, LaunchStore, DeepLinkSessionStore {
    /// Applies pending schema migrations.
    func migrate() async throws
    /// Throws when the database cannot be reached (readiness).
    func ping() async throws
    /// Deletes login states, used nonces and picker sessions that expired before `now`; returns how many rows went.
    func deleteExpired(now: Date) async throws -> Int
    /// Releases connections.
    func close() async throws
}
