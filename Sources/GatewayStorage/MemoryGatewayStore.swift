import Foundation
import LTICore

/// A ``GatewayStore`` in memory, for tests and throwaway runs. Loses everything on exit.
public actor MemoryGatewayStore: GatewayStore {
    private var registrationsByID: [String: PlatformRegistration] = [:]
    private var loginStates: [String: LoginState] = [:]
    private var identities: [String: LearnerIdentity] = [:]
    private var launches: [LaunchRecord] = []
    private var deepLinkSessions: [String: DeepLinkSession] = [:]
    private var labSessions: [String: StoredLabSession] = [:]
    private var labStarts: [String: (holder: String, outcome: String?, expiresAt: Date)] = [:]
    private var options: [String: PlatformLaunchOptions] = [:]
    private var skyPrepOptionsByRegistration: [String: PlatformSkyPrepOptions] = [:]
    private var skyPrepAccounts: [String: SkyPrepAccount] = [:]
    private var jobs: [String: (job: QueuedJob, worker: String?, leaseUntil: Date?)] = [:]
    private var apiKeysByID: [String: StoredAPIKey] = [:]
    private var audit: [AuditEvent] = []
    private var webhookEvents: [String: Date] = [:]
    private var invitesByDigest: [String: RegistrationInvite] = [:]
    private var inviteAttempts: [String: Int] = [:]

    public init() {}

    public func migrate() async throws {}
    public func checkWritable(now: Date) async throws {}
    /// Nothing runs in the background: waits until cancelled.
    public func run() async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    public func close() async throws {}

    public func addRegistration(_ registration: PlatformRegistration) async throws {
        if registrationsByID[registration.id] != nil
            || registrationsByID.values.contains(where: {
                $0.issuer == registration.issuer && $0.clientID == registration.clientID
            })
        {
            throw StorageError(.duplicate, "a registration with this issuer and client id exists")
        }
        registrationsByID[registration.id] = registration
    }

    public func allRegistrations() async throws -> [PlatformRegistration] {
        registrationsByID.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func removeRegistration(id: String) async throws -> Bool {
        options[id] = nil
        skyPrepOptionsByRegistration[id] = nil
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
        try await allRegistrations().filter { $0.issuer == issuer && $0.approved }
    }

    public func registration(id: String) async throws -> PlatformRegistration? { registrationsByID[id] }

    public func addDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool {
        guard var stored = registrationsByID[registrationID] else { return false }
        guard !stored.deploymentIDs.contains(deploymentID) else { throw StorageError(.duplicate, "deployment exists") }
        stored.deploymentIDs.append(deploymentID)
        registrationsByID[registrationID] = stored
        return true
    }

    public func removeDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool {
        guard var stored = registrationsByID[registrationID], stored.deploymentIDs.count > 1, stored.deploymentIDs.contains(deploymentID) else {
            return false
        }
        stored.deploymentIDs.removeAll { $0 == deploymentID }
        registrationsByID[registrationID] = stored
        return true
    }

    public func updateRegistration(_ registration: PlatformRegistration) async throws -> Bool {
        guard var stored = registrationsByID[registration.id] else { return false }
        stored.authURL = registration.authURL
        stored.tokenURL = registration.tokenURL
        stored.jwksURL = registration.jwksURL
        stored.deploymentIDs = registration.deploymentIDs
        registrationsByID[registration.id] = stored
        return true
    }

    public func saveLoginState(_ state: LoginState) async throws {
        guard loginStates[state.state] == nil else { throw StorageError(.duplicate, "state exists") }
        loginStates[state.state] = state
    }

    public func consumeLoginState(_ state: String, now: Date) async throws -> LoginState? {
        guard let found = loginStates.removeValue(forKey: state), found.expiresAt > now else { return nil }
        return found
    }

    public func loginState(_ state: String, now: Date) async throws -> LoginState? {
        loginStates[state].flatMap { $0.expiresAt > now ? $0 : nil }
    }

    public func loginState(restartKey: String, now: Date) async throws -> LoginState? {
        loginStates.values.first { $0.restartKey == restartKey && $0.expiresAt > now }
    }

    public func assignRestartKey(_ key: String, toState state: String, now: Date) async throws -> String? {
        guard var found = loginStates[state], found.expiresAt > now else { return nil }
        if found.restartKey == nil {
            found.restartKey = key
            loginStates[state] = found
        }
        return found.restartKey
    }

    public func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity {
        let key = identity.issuer + "\u{0}" + identity.trustAnchor + "\u{0}" + identity.subject
        var stored = identities[key] ?? identity
        stored.givenName = identity.givenName
        stored.familyName = identity.familyName
        stored.email = identity.email
        stored.lastSeen = identity.lastSeen
        identities[key] = stored
        return stored
    }

    public func identity(issuer: String, trustAnchor: String, subject: String) async throws -> LearnerIdentity? {
        identities[issuer + "\u{0}" + trustAnchor + "\u{0}" + subject]
    }

    public func recordLaunch(_ launch: LaunchRecord) async throws {
        guard !launches.contains(where: { $0.id == launch.id }) else { throw StorageError(.duplicate, "launch exists") }
        launches.append(launch)
    }

    public func recordLaunch(_ launch: LaunchRecord, learner: LearnerIdentity?, job: JobToQueue?) async throws {
        try await recordLaunch(launch)  // checks first: a duplicate changes nothing
        if let learner { _ = try await upsertIdentity(learner) }
        if let job { try await enqueueJob(kind: job.kind, key: job.key, payload: job.payload, runAt: job.runAt) }
    }

    public func completeLaunch(_ launch: LaunchRecord) async throws {
        guard let index = launches.firstIndex(where: { $0.id == launch.id }) else { return launches.append(launch) }
        launches[index].outcome = launch.outcome
        launches[index].vendorResultCode = launch.vendorResultCode
        launches[index].labInstanceID = launch.labInstanceID
    }

    public func launch(id: String) async throws -> LaunchRecord? { launches.first { $0.id == id } }

    public func launches(matching query: LaunchQuery) async throws -> [LaunchRecord] {
        let selected = launches.filter { launch in
            (query.registrationID.map { $0 == launch.registrationID } ?? true) && (query.learnerID.map { $0 == launch.learnerID } ?? true)
                && (query.labID.map { $0 == launch.labID } ?? true) && (query.outcome.map { $0 == launch.outcome } ?? true)
                && (query.createdFrom.map { launch.createdAt >= $0 } ?? true) && (query.createdBefore.map { launch.createdAt < $0 } ?? true)
                && (query.after.map { (launch.createdAt, launch.id) < ($0.time, $0.id) } ?? true)
        }
        return Array(selected.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.prefix(max(0, query.limit)))
    }

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

    public func saveLabSession(id: String, data: String, expiresAt: Date) async throws {
        guard labSessions[id] == nil else { throw StorageError(.duplicate, "lab session exists") }
        labSessions[id] = StoredLabSession(data: data, expiresAt: expiresAt, launchUsed: false)
    }

    public func labSession(id: String) async throws -> StoredLabSession? { labSessions[id] }

    public func useLabSessionLaunch(id: String, now: Date) async throws -> String? {
        guard var session = labSessions[id], !session.launchUsed, session.expiresAt > now else { return nil }
        session.launchUsed = true
        labSessions[id] = session
        return session.data
    }

    public func claimLabStart(learnerID: String, labID: String, holder: String, now: Date, until: Date) async throws -> LabStartClaim {
        let key = learnerID + "\u{0}" + labID
        if let current = labStarts[key], current.expiresAt > now, current.holder != holder || current.outcome != nil {
            return current.outcome.map { .finished(outcome: $0) } ?? .running
        }
        labStarts[key] = (holder, nil, until)
        return .claimed
    }

    public func finishLabStart(learnerID: String, labID: String, holder: String, outcome: String?, sharedUntil: Date) async throws {
        let key = learnerID + "\u{0}" + labID
        guard labStarts[key]?.holder == holder else { return }
        labStarts[key] = outcome.map { (holder, $0, sharedUntil) }
    }

    public func forgetLabStart(learnerID: String, labID: String) async throws {
        let key = learnerID + "\u{0}" + labID
        if labStarts[key]?.outcome != nil { labStarts[key] = nil }
    }

    public func releaseLabSessionLaunch(id: String) async throws { labSessions[id]?.launchUsed = false }

    public func deleteExpired(now: Date) async throws -> Int {
        let before = loginStates.count + deepLinkSessions.count + labSessions.count
        loginStates = loginStates.filter { $0.value.expiresAt > now }
        deepLinkSessions = deepLinkSessions.filter { $0.value.expiresAt > now }
        labSessions = labSessions.filter { $0.value.expiresAt > now }
        labStarts = labStarts.filter { $0.value.expiresAt > now }
        webhookEvents = webhookEvents.filter { $0.value > now }
        return before - loginStates.count - deepLinkSessions.count - labSessions.count
    }

    // MARK: SkyPrep

    public func skyPrepAccount(learnerID: String) async throws -> SkyPrepAccount? { skyPrepAccounts[learnerID] }

    public func skyPrepAccounts(userID: Int) async throws -> [SkyPrepAccount] {
        skyPrepAccounts.values.filter { $0.userID == userID }.sorted { $0.learnerID < $1.learnerID }
    }

    public func saveSkyPrepAccount(_ account: SkyPrepAccount) async throws { skyPrepAccounts[account.learnerID] = account }

    public func skyPrepOptions(registrationID: String) async throws -> PlatformSkyPrepOptions {
        skyPrepOptionsByRegistration[registrationID] ?? PlatformSkyPrepOptions()
    }

    public func setSkyPrepOptions(_ options: PlatformSkyPrepOptions, registrationID: String) async throws -> Bool {
        guard registrationsByID[registrationID] != nil else { return false }
        skyPrepOptionsByRegistration[registrationID] = options
        return true
    }

    // MARK: jobs

    public func enqueueJob(kind: String, key: String, payload: String, runAt: Date) async throws {
        let id = kind + "\u{0}" + key
        if var entry = jobs[id] {
            entry.job.payload = payload
            entry.job.revision += 1
            if entry.job.attempts == 0 { entry.job.nextRunAt = min(entry.job.nextRunAt, runAt) }
            jobs[id] = entry
        } else {
            jobs[id] = (
                QueuedJob(
                    kind: kind, key: key, payload: payload, revision: 1, attempts: 0, nextRunAt: runAt,
                    lastError: nil, held: false, createdAt: runAt), nil, nil
            )
        }
    }

    public func claimJobs(kind: String, key: String?, now: Date, leaseUntil: Date, worker: String, limit: Int) async throws -> [QueuedJob] {
        let due = jobs.filter { _, entry in
            entry.job.kind == kind && (key == nil || entry.job.key == key) && !entry.job.held && entry.job.nextRunAt <= now
                && (entry.leaseUntil.map { $0 <= now } ?? true)
        }.sorted { $0.value.job.nextRunAt < $1.value.job.nextRunAt }.prefix(limit)
        return due.map { id, entry in
            var job = entry.job
            job.attempts += 1
            jobs[id] = (job, worker, leaseUntil)
            return job
        }
    }

    public func renewJobLease(_ job: QueuedJob, worker: String, until: Date) async throws -> Bool {
        let id = job.kind + "\u{0}" + job.key
        guard let entry = jobs[id], entry.worker == worker else { return false }
        jobs[id] = (entry.job, worker, until)
        return true
    }

    public func completeJob(_ job: QueuedJob, worker: String) async throws {
        let id = job.kind + "\u{0}" + job.key
        guard let entry = jobs[id], entry.worker == worker else { return }
        if entry.job.revision == job.revision {
            jobs[id] = nil
        } else {
            jobs[id] = (entry.job, nil, nil)
        }
    }

    public func failJob(_ job: QueuedJob, worker: String, failure: JobFailure, retryAt: Date?) async throws {
        let id = job.kind + "\u{0}" + job.key
        guard var entry = jobs[id], entry.worker == worker else { return }
        entry.job.lastError = failure.detail
        entry.job.failureCode = failure.code
        // Enqueued again meanwhile: the new input runs now, whatever the old one did.
        if entry.job.revision == job.revision {
            if let retryAt { entry.job.nextRunAt = retryAt } else { entry.job.held = true }
        }
        jobs[id] = (entry.job, nil, nil)
    }

    public func queuedJob(kind: String, key: String) async throws -> QueuedJob? { jobs[kind + "\u{0}" + key]?.job }

    public func jobLease(kind: String, key: String) async throws -> Date? { jobs[kind + "\u{0}" + key]?.leaseUntil }

    public func queuedJobs(limit: Int) async throws -> [QueuedJob] {
        Array(jobs.values.map(\.job).sorted { ($0.createdAt, $0.kind, $0.key) < ($1.createdAt, $1.kind, $1.key) }.prefix(limit))
    }

    public func releaseJob(kind: String, key: String, now: Date) async throws -> Bool {
        let id = kind + "\u{0}" + key
        guard var entry = jobs[id] else { return false }
        entry.job.held = false
        entry.job.nextRunAt = now
        entry.job.attempts = 0
        jobs[id] = entry
        return true
    }

    // MARK: API keys and audit

    public func addAPIKey(_ key: StoredAPIKey) async throws {
        guard apiKeysByID[key.id] == nil, !apiKeysByID.values.contains(where: { $0.secretDigest == key.secretDigest }) else {
            throw StorageError(.duplicate, "an API key with this id or secret exists")
        }
        apiKeysByID[key.id] = key
    }

    public func apiKey(secretDigest: String) async throws -> StoredAPIKey? {
        apiKeysByID.values.first { $0.secretDigest == secretDigest }
    }

    public func apiKey(id: String) async throws -> StoredAPIKey? { apiKeysByID[id] }

    public func apiKeys() async throws -> [StoredAPIKey] {
        apiKeysByID.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func deleteAPIKey(id: String) async throws -> Bool { apiKeysByID.removeValue(forKey: id) != nil }

    public func markAPIKeyUsed(id: String, at: Date) async throws {
        guard let key = apiKeysByID[id], key.lastUsedAt.map({ $0 < at }) ?? true else { return }
        apiKeysByID[id]?.lastUsedAt = at
    }

    public func recordAuditEvent(_ event: AuditEvent) async throws {
        guard !audit.contains(where: { $0.id == event.id }) else { throw StorageError(.duplicate, "audit event exists") }
        audit.append(event)
    }

    public func auditEvents(after: ListPosition?, limit: Int) async throws -> [AuditEvent] {
        let selected = audit.filter { event in after.map { (event.at, event.id) < ($0.time, $0.id) } ?? true }
        return Array(selected.sorted { ($0.at, $0.id) > ($1.at, $1.id) }.prefix(max(0, limit)))
    }

    // MARK: grade passback

    public func launch(labInstanceID: String) async throws -> LaunchRecord? {
        launches.filter { $0.labInstanceID == labInstanceID }.max { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func recordLabEvent(launchID: String, state: String, completionStatus: Int?, endedAt: Date?) async throws {
        guard let index = launches.firstIndex(where: { $0.id == launchID }) else { return }
        launches[index].labState = state
        launches[index].completionStatus = completionStatus ?? launches[index].completionStatus
        launches[index].endedAt = endedAt ?? launches[index].endedAt
    }

    public func webhookEventHandled(event: String, labInstanceID: String) async throws -> Bool {
        webhookEvents["\(event) \(labInstanceID)"] != nil
    }

    public func recordWebhookEvent(event: String, labInstanceID: String, at: Date, expiresAt: Date) async throws {
        if webhookEvents["\(event) \(labInstanceID)"] == nil { webhookEvents["\(event) \(labInstanceID)"] = expiresAt }
    }

    public func queuedJobs(kind: String, limit: Int) async throws -> [QueuedJob] {
        Array(try await queuedJobs(limit: Int.max).filter { $0.kind == kind }.prefix(max(0, limit)))
    }

    public func jobCounts(kind: String) async throws -> (waiting: Int, held: Int) {
        let jobs = self.jobs.values.map(\.job).filter { $0.kind == kind }
        return (jobs.count { !$0.held }, jobs.count { $0.held })
    }

    // MARK: dynamic registration

    public func addInvite(_ invite: RegistrationInvite) async throws {
        guard invitesByDigest[invite.tokenDigest] == nil else { throw StorageError(.duplicate, "invite exists") }
        invitesByDigest[invite.tokenDigest] = invite
    }

    public func invite(tokenDigest: String) async throws -> RegistrationInvite? { invitesByDigest[tokenDigest] }

    public func invites() async throws -> [RegistrationInvite] {
        invitesByDigest.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    public func completeDynamicRegistration(
        _ registration: PlatformRegistration, inviteDigest: String, now: Date
    ) async throws
        -> DynamicRegistrationResult
    {
        guard var invite = invitesByDigest[inviteDigest], invite.usedAt == nil, invite.expiresAt > now else { return .inviteUnusable }
        let existing = registrationsByID.values.first { $0.issuer == registration.issuer && $0.clientID == registration.clientID }
        if let existing, existing.origin != "dynamic" { return .registeredByHand(existing.id) }
        invite.usedAt = now
        invite.registrationID = existing?.id ?? registration.id
        invitesByDigest[inviteDigest] = invite
        guard var updated = existing else {
            registrationsByID[registration.id] = registration
            return .created(registration.id)
        }
        updated.authURL = registration.authURL
        updated.tokenURL = registration.tokenURL
        updated.jwksURL = registration.jwksURL
        updated.grantedScopes = registration.grantedScopes
        if !registration.approved { updated.approved = false }
        updated.deploymentIDs += registration.deploymentIDs.filter { !updated.deploymentIDs.contains($0) }
        registrationsByID[updated.id] = updated
        return .updated(updated.id)
    }

    public func countInviteAttempt(tokenDigest: String, now: Date, limit: Int) async throws -> Bool {
        guard let invite = invitesByDigest[tokenDigest], invite.usedAt == nil, invite.expiresAt > now, inviteAttempts[tokenDigest, default: 0] < limit
        else { return false }
        inviteAttempts[tokenDigest, default: 0] += 1
        return true
    }

    public func approveRegistration(id: String) async throws -> Bool {
        guard registrationsByID[id] != nil else { return false }
        registrationsByID[id]?.approved = true
        return true
    }
}
