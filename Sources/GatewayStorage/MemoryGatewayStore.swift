import Foundation
import LTICore

/// A ``GatewayStore`` in memory, for tests and throwaway runs. Loses everything on exit.
public actor MemoryGatewayStore: GatewayStore {
    private var registrationsByID: [String: PlatformRegistration] = [:]
    private var loginStates: [String: LoginState] = [:]
    private var usedNonces: [String: Date] = [:]
    private var identities: [String: LearnerIdentity] = [:]
    private var launches: [LaunchRecord] = []
    private var deepLinkSessions: [String: DeepLinkSession] = [:]
    private var options: [String: PlatformLaunchOptions] = [:]

    public init() {}

    public func migrate() async throws {}
    public func ping() async throws {}
    public func close() async throws {}

    public func addRegistration(_ registration: PlatformRegistration) async throws {
        if registrationsByID[registration.id] != nil || registrationsByID.values.contains(where: {
            $0.issuer == registration.issuer && $0.clientID == registration.clientID
        }) {
            throw StorageError(.duplicate, "a registration with this issuer and client id exists")
        }
        registrationsByID[registration.id] = registration
    }

    public func allRegistrations() async throws -> [PlatformRegistration] {
        registrationsByID.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func removeRegistration(id: String) async throws -> Bool {
        options[id] = nil
        return registrationsByID.removeValue(forKey: id) != nil
    }

    public func launchOptions(registrationID: String) async throws -> PlatformLaunchOptions {
        options[registrationID] ?? PlatformLaunchOptions()
    }

    public func setLaunchOptions(_ options: PlatformLaunchOptions, registrationID: String) async throws -> Bool {
        guard registrationsByID[registrationID] != nil else { return false }
        self.options[registrationID] = options
        return true
    }

    public func registrations(issuer: String) async throws -> [PlatformRegistration] {
        try await allRegistrations().filter { $0.issuer == issuer }
    }

    public func registration(id: String) async throws -> PlatformRegistration? { registrationsByID[id] }

    public func saveLoginState(_ state: LoginState) async throws {
        guard loginStates[state.state] == nil else { throw StorageError(.duplicate, "state exists") }
        loginStates[state.state] = state
    }

    public func consumeLoginState(_ state: String, now: Date) async throws -> LoginState? {
        guard let found = loginStates.removeValue(forKey: state), found.expiresAt > now else { return nil }
        return found
    }

    public func markNonceUsed(issuer: String, nonce: String, expiresAt: Date) async throws -> Bool {
        let key = issuer + "\u{0}" + nonce
        guard usedNonces[key] == nil else { return false }
        usedNonces[key] = expiresAt
        return true
    }

    public func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity {
        let key = identity.issuer + "\u{0}" + identity.subject
        var stored = identities[key] ?? identity
        stored.givenName = identity.givenName
        stored.familyName = identity.familyName
        stored.email = identity.email
        stored.lastSeen = identity.lastSeen
        identities[key] = stored
        return stored
    }

    public func identity(issuer: String, subject: String) async throws -> LearnerIdentity? {
        identities[issuer + "\u{0}" + subject]
    }

    public func recordLaunch(_ launch: LaunchRecord) async throws {
        guard !launches.contains(where: { $0.id == launch.id }) else { throw StorageError(.duplicate, "launch exists") }
        launches.append(launch)
    }

    public func launch(id: String) async throws -> LaunchRecord? { launches.first { $0.id == id } }

    public func recentLaunches(limit: Int) async throws -> [LaunchRecord] {
        Array(launches.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.prefix(limit))
    }

    public func saveDeepLinkSession(_ session: DeepLinkSession) async throws {
        guard deepLinkSessions[session.id] == nil else { throw StorageError(.duplicate, "session exists") }
        deepLinkSessions[session.id] = session
    }

    public func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession? {
        guard let found = deepLinkSessions.removeValue(forKey: id), found.expiresAt > now else { return nil }
        return found
    }

    public func deleteExpired(now: Date) async throws -> Int {
        let before = loginStates.count + usedNonces.count + deepLinkSessions.count
        loginStates = loginStates.filter { $0.value.expiresAt > now }
        usedNonces = usedNonces.filter { $0.value > now }
        deepLinkSessions = deepLinkSessions.filter { $0.value.expiresAt > now }
        return before - loginStates.count - usedNonces.count - deepLinkSessions.count
    }
}
