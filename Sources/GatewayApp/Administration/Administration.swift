import Foundation
import GatewayStorage
import LTICore
import Logging

/// Every change operators make to platforms, signing keys and API keys, and what they read back — one
/// implementation behind both the command line and the admin API. Each change is recorded in the audit trail
/// with its actor once it is stored.
public struct Administration: Sendable {
    /// A platform registration with its launch and SkyPrep options.
    public struct Platform: Sendable, Equatable {
        public var registration: PlatformRegistration
        public var options: PlatformLaunchOptions
        public var skyPrep: PlatformSkyPrepOptions
    }

    /// What a change to a platform sets; nil leaves a part as it is. The issuer and client id name a platform and
    /// are never changed (register another platform instead).
    public struct PlatformChanges: Sendable, Equatable {
        public var authURL: String?
        public var tokenURL: String?
        public var jwksURL: String?
        public var deployments: [String]?
        public var options: PlatformLaunchOptions?
        public var skyPrep: PlatformSkyPrepOptions?

        public init(
            authURL: String? = nil, tokenURL: String? = nil, jwksURL: String? = nil, deployments: [String]? = nil,
            options: PlatformLaunchOptions? = nil, skyPrep: PlatformSkyPrepOptions? = nil
        ) {
            self.authURL = authURL
            self.tokenURL = tokenURL
            self.jwksURL = jwksURL
            self.deployments = deployments
            self.options = options
            self.skyPrep = skyPrep
        }
    }

    public let store: any GatewayStore
    public let signingKeys: any SigningKeyStore
    public let keyPolicy: KeyPolicy
    public let apiKeys: APIKeyService
    let now: @Sendable () -> Date
    let logger: Logger
    /// Runs after the stored key ring changed (the server reloads its signer and key set at once).
    let keysChanged: @Sendable () async -> Void

    public init(
        store: any GatewayStore, signingKeys: any SigningKeyStore, keyPolicy: KeyPolicy, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }, keysChanged: @escaping @Sendable () async -> Void = {}
    ) {
        self.store = store
        self.signingKeys = signingKeys
        self.keyPolicy = keyPolicy
        self.apiKeys = APIKeyService(store: store, now: now, logger: logger)
        self.now = now
        self.logger = logger
        self.keysChanged = keysChanged
    }

    // MARK: audit

    /// Records a change that was stored. Never fails the change: the change happened, and answering with an error
    /// would make its caller repeat it (a second rotation); an event that cannot be stored is logged whole instead.
    func audit(_ action: String, _ target: String, by actor: AdministrationActor) async {
        let event = AuditEvent(id: "evt_" + SecureRandom.token(byteCount: 12), actor: actor.name, action: action, target: target, at: now())
        do {
            try await store.recordAuditEvent(event)
        } catch {
            logger.error(
                "audit event not stored",
                metadata: [
                    "gw.audit.actor": "\(event.actor)", "gw.audit.action": "\(event.action)", "gw.audit.target": "\(event.target)",
                    "gw.audit.at": "\(ISO8601DateFormatter().string(from: event.at))", "error": "\(error)",
                ])
        }
    }

    /// Audit events, newest first.
    public func auditEvents(after: ListPosition?, limit: Int) async throws -> [AuditEvent] {
        try await store.auditEvents(after: after, limit: limit)
    }

    // MARK: platforms

    public func platforms() async throws -> [Platform] {
        var result: [Platform] = []
        for registration in try await store.allRegistrations() { result.append(try await details(registration)) }
        return result
    }

    public func platform(id: String) async throws -> Platform {
        guard let registration = try await store.registration(id: id) else { throw Self.noPlatform(id) }
        return try await details(registration)
    }

    private func details(_ registration: PlatformRegistration) async throws -> Platform {
        Platform(
            registration: registration, options: try await store.launchOptions(registrationID: registration.id),
            skyPrep: try await store.skyPrepOptions(registrationID: registration.id))
    }

    static func noPlatform(_ id: String) -> AdministrationError { .notFound("no platform with id \(id) (see platforms list)") }

    /// Registers a platform, with its options when given (validated before anything is stored).
    public func addPlatform(
        issuer: String, clientID: String, authURL: String, tokenURL: String, jwksURL: String, deployments: [String],
        options: PlatformLaunchOptions? = nil, skyPrep: PlatformSkyPrepOptions? = nil, by actor: AdministrationActor
    ) async throws -> Platform {
        if let problem = options?.problem { throw AdministrationError.invalid("options", problem) }
        if let problem = skyPrep?.problem { throw AdministrationError.invalid("skyprep", problem) }
        let registration = try await PlatformAdministration.add(
            store: store, issuer: issuer, clientID: clientID, authURL: authURL, tokenURL: tokenURL, jwksURL: jwksURL,
            deployments: deployments, origin: actor == .commandLine ? "cli" : "api", now: now())
        if let options { try await PlatformAdministration.setLaunchOptions(store: store, registrationID: registration.id, options: options) }
        if let skyPrep { try await PlatformAdministration.setSkyPrepOptions(store: store, registrationID: registration.id, options: skyPrep) }
        await audit("platform.create", registration.id, by: actor)
        return try await details(registration)
    }

    /// Changes what `changes` sets, after validating all of it.
    public func updatePlatform(id: String, _ changes: PlatformChanges, by actor: AdministrationActor) async throws -> Platform {
        guard var registration = try await store.registration(id: id) else { throw Self.noPlatform(id) }
        registration.authURL = changes.authURL ?? registration.authURL
        registration.tokenURL = changes.tokenURL ?? registration.tokenURL
        registration.jwksURL = changes.jwksURL ?? registration.jwksURL
        if let deployments = changes.deployments { registration.deploymentIDs = try PlatformAdministration.validDeployments(deployments) }
        try PlatformAdministration.validateEndpoints(registration)
        if let problem = changes.options?.problem { throw AdministrationError.invalid("options", problem) }
        if let problem = changes.skyPrep?.problem { throw AdministrationError.invalid("skyprep", problem) }
        if changes.authURL != nil || changes.tokenURL != nil || changes.jwksURL != nil || changes.deployments != nil {
            guard try await store.updateRegistration(registration) else { throw Self.noPlatform(id) }
        }
        if let options = changes.options { try await PlatformAdministration.setLaunchOptions(store: store, registrationID: id, options: options) }
        if let skyPrep = changes.skyPrep { try await PlatformAdministration.setSkyPrepOptions(store: store, registrationID: id, options: skyPrep) }
        if changes != PlatformChanges() { await audit("platform.update", id, by: actor) }
        return try await platform(id: id)
    }

    /// Sets a platform's launch options (replacing earlier ones).
    public func setLaunchOptions(platformID: String, _ options: PlatformLaunchOptions, by actor: AdministrationActor) async throws {
        try await PlatformAdministration.setLaunchOptions(store: store, registrationID: platformID, options: options)
        await audit("platform.options.set", platformID, by: actor)
    }

    /// Sets a platform's SkyPrep options (replacing earlier ones).
    public func setSkyPrepOptions(platformID: String, _ options: PlatformSkyPrepOptions, by actor: AdministrationActor) async throws {
        try await PlatformAdministration.setSkyPrepOptions(store: store, registrationID: platformID, options: options)
        await audit("platform.skyprep.set", platformID, by: actor)
    }

    /// Removes a platform and its deployments; its launch records stay.
    public func removePlatform(id: String, by actor: AdministrationActor) async throws {
        guard try await store.removeRegistration(id: id) else { throw Self.noPlatform(id) }
        await audit("platform.delete", id, by: actor)
    }

    /// Adds a deployment (another install of the tool on the same platform: a Canvas sub-account, another course).
    public func addDeployment(platformID: String, deploymentID: String, by actor: AdministrationActor) async throws -> Platform {
        _ = try PlatformAdministration.validDeployments([deploymentID])
        do {
            guard try await store.addDeployment(deploymentID, registrationID: platformID) else { throw Self.noPlatform(platformID) }
        } catch let error as StorageError where error.code == .duplicate {
            throw AdministrationError(.conflict, "platform \(platformID) already has this deployment")
        }
        await audit("platform.deployment.add", "\(platformID)/\(deploymentID)", by: actor)
        return try await platform(id: platformID)
    }

    /// Removes a deployment; a platform keeps one at least.
    public func removeDeployment(platformID: String, deploymentID: String, by actor: AdministrationActor) async throws -> Platform {
        guard try await store.removeDeployment(deploymentID, registrationID: platformID) else {
            let registration = try await store.registration(id: platformID)
            guard let registration else { throw Self.noPlatform(platformID) }
            guard registration.deploymentIDs.contains(deploymentID) else {
                throw AdministrationError.notFound("platform \(platformID) has no such deployment (see platforms list)")
            }
            throw AdministrationError(.conflict, "this is the platform's only deployment; remove the platform instead")
        }
        await audit("platform.deployment.remove", "\(platformID)/\(deploymentID)", by: actor)
        return try await platform(id: platformID)
    }

    // MARK: dynamic registration

    /// A registration invitation just created, with the link that carries its token: the only time the link exists.
    public struct CreatedInvite: Sendable {
        public var invite: RegistrationInvite
        public var link: String
    }

    /// Creates a one-time registration link for an LMS administrator (LTI Dynamic Registration), valid for `expiresIn`.
    public func createInvite(
        expiresIn: TimeInterval, note: String?, baseURL: String, by actor: AdministrationActor
    ) async throws
        -> CreatedInvite
    {
        guard (60...(30 * 86_400)).contains(expiresIn) else {
            throw AdministrationError.invalid("expires_in", "expires_in must be from 1 minute to 30 days")
        }
        if let note, note.count > 200 || note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw AdministrationError.invalid("note", "note must be at most 200 printable characters")
        }
        let token = SecureRandom.token(byteCount: 32)
        let now = now()
        let invite = RegistrationInvite(
            id: "inv_" + SecureRandom.token(byteCount: 9), tokenDigest: DynamicRegistration.digest(token), note: note, createdBy: actor.name,
            createdAt: now, expiresAt: now.addingTimeInterval(expiresIn))
        try await store.addInvite(invite)
        await audit("registration_invite.create", invite.id, by: actor)
        return CreatedInvite(invite: invite, link: baseURL + "/lti/register?invite=" + token)
    }

    /// Invitations, newest first (never their tokens).
    public func invites() async throws -> [RegistrationInvite] { try await store.invites() }

    /// Accepts the launches of a platform registered dynamically while approval is required.
    public func approvePlatform(id: String, by actor: AdministrationActor) async throws -> Platform {
        guard try await store.approveRegistration(id: id) else { throw Self.noPlatform(id) }
        await audit("platform.approve", id, by: actor)
        return try await platform(id: id)
    }

    // MARK: signing keys

    /// The published keys (active, next, retiring).
    public func signingKeyRing() async throws -> ToolKeyRing { try await signingKeys.loadKeyRing() }

    /// next → active, active → retiring, a new next; with `emergency`, every key replaced at once.
    public func rotateSigningKeys(force: Bool, emergency: Bool, by actor: AdministrationActor) async throws -> ToolKeyRing {
        guard !(force && emergency) else {
            throw AdministrationError.invalid("emergency", "force and emergency exclude each other (emergency replaces every key)")
        }
        let ring = try await Self.keyChange {
            emergency
                ? try await KeyAdministration.replaceAll(store: signingKeys, policy: keyPolicy, now: now())
                : try await KeyAdministration.rotate(store: signingKeys, policy: keyPolicy, force: force, now: now())
        }
        await keysChanged()
        await audit(emergency ? "signing_keys.replace_all" : "signing_keys.rotate", ring.active?.kid ?? "-", by: actor)
        return ring
    }

    /// Creates the active and next keys when there are none (a first start does the same); audited when it created any.
    public func readySigningKeys(by actor: AdministrationActor) async throws -> ToolKeyRing {
        let before = try await signingKeys.loadKeyRing()
        let ring = try await Self.keyChange { try await KeyAdministration.ready(store: signingKeys, policy: keyPolicy, now: now()) }
        if before.keys.count != ring.keys.count { await audit("signing_keys.create", ring.active?.kid ?? "-", by: actor) }
        return ring
    }

    /// Removes a retiring key from the key set at once.
    public func retireSigningKey(kid: String, by actor: AdministrationActor) async throws -> ToolKeyRing {
        let ring = try await Self.keyChange { try await KeyAdministration.retire(store: signingKeys, kid: kid) }
        await keysChanged()
        await audit("signing_key.retire", kid, by: actor)
        return ring
    }

    /// A key-ring change, its refusals as administration errors.
    private static func keyChange(_ body: () async throws -> ToolKeyRing) async throws -> ToolKeyRing {
        do {
            return try await body()
        } catch let error as KeyRingError {
            if case .unknownKey = error { throw AdministrationError.notFound(error.description) }
            throw AdministrationError(.conflict, error.description)
        }
    }

    // MARK: API keys

    /// Creates an API key; its secret is in the answer and nowhere else.
    public func createAPIKey(
        name: String, scopes: [String], expiresAt: Date?, environment: APIKeyService.Environment, by actor: AdministrationActor
    ) async throws -> APIKeyService.Created {
        let created = try await apiKeys.create(name: name, scopes: scopes, expiresAt: expiresAt, environment: environment, by: actor)
        await audit("api_key.create", created.key.id, by: actor)
        return created
    }

    public func apiKeyList() async throws -> [StoredAPIKey] { try await store.apiKeys() }

    public func apiKey(id: String) async throws -> StoredAPIKey {
        guard let key = try await store.apiKey(id: id) else { throw AdministrationError.notFound("no API key with id \(id) (see api-keys list)") }
        return key
    }

    /// Deletes an API key: every instance refuses it from its next request on. An API key may delete only keys whose
    /// scopes it holds all of (it could not have created them either).
    public func deleteAPIKey(id: String, by actor: AdministrationActor) async throws {
        let key = try await apiKey(id: id)
        guard key.scopes.allSatisfy({ APIScope(rawValue: $0).map(actor.holds) ?? false }) else {
            throw AdministrationError(.forbidden, "An API key cannot delete a key with a scope it does not hold.")
        }
        guard try await store.deleteAPIKey(id: id) else { throw AdministrationError.notFound("no API key with id \(id) (see api-keys list)") }
        await audit("api_key.delete", id, by: actor)
    }

    // MARK: jobs

    /// Makes a held or waiting background job due now (after its cause was fixed).
    public func releaseJob(kind: String, key: String, by actor: AdministrationActor) async throws {
        guard try await store.releaseJob(kind: kind, key: key, now: now()) else {
            throw AdministrationError.notFound("no queued job \(key) (see jobs list)")
        }
        await audit("job.retry", "\(kind)/\(key)", by: actor)
    }

    // MARK: score outbox

    /// A score delivery waiting or failed, as operators see it.
    public struct OutboxDelivery: Sendable, Equatable {
        /// The lab instance the score is for (the delivery's id).
        public var id: String
        public var launchID: String?
        /// `pending` (not tried yet), `retrying` (failed, due again), `failed` (held for an operator).
        public var state: String
        public var attempts: Int
        public var lastError: String?
        public var nextAttemptAt: Date?
    }

    static func delivery(_ job: QueuedJob) -> OutboxDelivery {
        OutboxDelivery(
            id: job.key, launchID: try? StoredJSON.decode(ScoreDelivery.self, from: job.payload, what: "score delivery").launchID,
            state: job.held ? "failed" : job.attempts == 0 ? "pending" : "retrying", attempts: job.attempts,
            lastError: job.lastError.map { error in job.failureCode.map { "[\($0)] \(error)" } ?? error },
            nextAttemptAt: job.held ? nil : job.nextRunAt)
    }

    /// Score deliveries waiting or failed, oldest first.
    public func outbox(limit: Int) async throws -> [OutboxDelivery] {
        try await store.queuedJobs(kind: ScoreOutbox.kind, limit: limit).map(Self.delivery)
    }

    /// Makes a failed (or waiting) delivery due now.
    public func retryDelivery(id: String, by actor: AdministrationActor) async throws -> OutboxDelivery {
        guard try await store.releaseJob(kind: ScoreOutbox.kind, key: id, now: now()),
            let job = try await store.queuedJob(kind: ScoreOutbox.kind, key: id)
        else { throw AdministrationError.notFound("no score delivery \(id) waiting or failed (see outbox list)") }
        await audit("outbox.retry", id, by: actor)
        return Self.delivery(job)
    }

    // MARK: launches

    public func launches(_ query: LaunchQuery) async throws -> [LaunchRecord] { try await store.launches(matching: query) }

    public func launch(id: String) async throws -> LaunchRecord {
        guard let launch = try await store.launch(id: id) else { throw AdministrationError.notFound("no launch with id \(id)") }
        return launch
    }
}
