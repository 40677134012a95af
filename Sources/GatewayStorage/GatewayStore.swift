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
    /// Replaces the endpoints (authorization, token, key set) and the deployments of the registration with
    /// `registration.id`, in one transaction; its issuer, client id and creation time stay. `false` when there is none.
    func updateRegistration(_ registration: PlatformRegistration) async throws -> Bool
    /// Adds one deployment after the registration's others (one statement: concurrent additions all stay); `false`
    /// when there is no such registration, ``StorageError`` `.duplicate` when it has this deployment.
    func addDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool
    /// Removes one deployment, unless it is the registration's last; `false` when nothing was removed.
    func removeDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool
}

/// Learner identities keyed by (issuer, sub).
public protocol IdentityStore: Sendable {
    /// Inserts the identity, or updates names, email and last-seen time of the existing one with the
    /// same (issuer, sub), keeping its id and first-seen time. Returns the stored identity.
    func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity
    func identity(issuer: String, trustAnchor: String, subject: String) async throws -> LearnerIdentity?
}

/// The launch record.
public protocol LaunchStore: Sendable {
    /// Stores a new launch record (a second record with the same id is ``StorageError`` `.duplicate`).
    func recordLaunch(_ launch: LaunchRecord) async throws
    /// Stores a new launch record with its learner (inserted or updated as ``IdentityStore/upsertIdentity(_:)`` does)
    /// and a job (queued as ``JobQueueStore/enqueueJob(kind:key:payload:runAt:)`` does), each when given, in one atomic
    /// write: all or none.
    func recordLaunch(_ launch: LaunchRecord, learner: LearnerIdentity?, job: JobToQueue?) async throws
    /// Stores the outcome of a launch recorded before (as pending): its outcome, vendor result and lab instance;
    /// records it whole when no earlier record exists.
    func completeLaunch(_ launch: LaunchRecord) async throws
    func launch(id: String) async throws -> LaunchRecord?
    /// The newest launches first, at most `limit`.
    func recentLaunches(limit: Int) async throws -> [LaunchRecord]
    /// The launches `query` selects, newest first (time, then id), at most `query.limit`.
    func launches(matching query: LaunchQuery) async throws -> [LaunchRecord]
    /// The newest launch that started lab instance `labInstanceID`.
    func launch(labInstanceID: String) async throws -> LaunchRecord?
    /// Records where the launch's lab stands (a Skillable event): its state, and the completion status and end time
    /// when the event carried them (nil keeps what is stored).
    func recordLabEvent(launchID: String, state: String, completionStatus: Int?, endedAt: Date?) async throws
}

/// Skillable webhook events already handled, so that a retried delivery is handled once.
public protocol WebhookEventStore: Sendable {
    /// Whether `event` for lab instance `labInstanceID` was handled.
    func webhookEventHandled(event: String, labInstanceID: String) async throws -> Bool
    /// Remembers that `event` for `labInstanceID` was handled, until `expiresAt` (long after Skillable stops retrying).
    func recordWebhookEvent(event: String, labInstanceID: String, at: Date, expiresAt: Date) async throws
}

/// Admin API keys, stored by the digest of their secret.
public protocol APIKeyStore: Sendable {
    /// Stores a new key (a taken id or digest is ``StorageError`` `.duplicate`).
    func addAPIKey(_ key: StoredAPIKey) async throws
    /// The key whose secret has this SHA-256 digest, expired or not.
    func apiKey(secretDigest: String) async throws -> StoredAPIKey?
    func apiKey(id: String) async throws -> StoredAPIKey?
    /// Every key, oldest first.
    func apiKeys() async throws -> [StoredAPIKey]
    /// Deletes the key; `false` when there was none. Every instance refuses it from its next request on.
    func deleteAPIKey(id: String) async throws -> Bool
    /// Records that the key was used at `at` (later times only).
    func markAPIKeyUsed(id: String, at: Date) async throws
}

/// Invitations to register a platform dynamically, and what a registration through one stores.
public protocol RegistrationInviteStore: Sendable {
    func addInvite(_ invite: RegistrationInvite) async throws
    /// The invitation whose token has this digest, used or not.
    func invite(tokenDigest: String) async throws -> RegistrationInvite?
    /// Every invitation, newest first.
    func invites() async throws -> [RegistrationInvite]
    /// Counts an attempt to register through the invitation; `false` when it is used, expired, unknown, or has had
    /// `limit` attempts (a leaked link cannot be used to probe without end).
    func countInviteAttempt(tokenDigest: String, now: Date, limit: Int) async throws -> Bool
    /// In one transaction: uses the invitation (unused and unexpired at `now`, else nothing is stored) and stores
    /// `registration` — or, when (issuer, client id) was registered dynamically before, replaces its endpoints, granted
    /// scopes and adds its deployments, keeping its id and options (its approval too, unless `registration` is not
    /// approved: then it waits for approval again). A platform registered by hand is never changed this way.
    func completeDynamicRegistration(
        _ registration: PlatformRegistration, inviteDigest: String, now: Date
    ) async throws
        -> DynamicRegistrationResult
    /// Approves a registration waiting for an operator; `false` when there is no such registration.
    func approveRegistration(id: String) async throws -> Bool
}

/// Who changed what, through the admin API or the command line.
public protocol AuditStore: Sendable {
    func recordAuditEvent(_ event: AuditEvent) async throws
    /// Events newest first (time, then id), after `after` when given, at most `limit`.
    func auditEvents(after: ListPosition?, limit: Int) async throws -> [AuditEvent]
}

/// Open lab pickers (deep linking).
public protocol DeepLinkSessionStore: Sendable {
    func saveDeepLinkSession(_ session: DeepLinkSession) async throws
    /// Removes and returns the session if it exists and has not expired at `now`.
    ///
    /// - Important: Atomic: of two racing submissions of one picker, at most one gets the session.
    func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession?
}

/// The too-many-labs page's sessions, kept server-side: the page carries only a random handle (never the learner's
/// name or email), and its launch action can be used once.
public protocol LabSessionStore: Sendable {
    /// Stores a session under `id` (a digest of the page's handle) until `expiresAt`.
    func saveLabSession(id: String, data: String, expiresAt: Date) async throws
    /// The session `id`, expired or not (nil when unknown).
    func labSession(id: String) async throws -> StoredLabSession?
    /// Marks the session's launch action used and returns its data, if it exists, has not expired at `now` and its
    /// launch has not been used.
    ///
    /// - Important: Atomic: of two racing launches from one page, at most one gets the data.
    func useLabSessionLaunch(id: String, now: Date) async throws -> String?
    /// Makes the session's launch usable again (its use started no lab).
    func releaseLabSessionLaunch(id: String) async throws
}

/// Lab starts shared by every instance: one learner's start of one lab runs on one instance at a time, and a start
/// that succeeded is shared with further clicks for a short while — wherever the load balancer sends them.
public protocol LabStartStore: Sendable {
    /// Claims the start of (`learnerID`, `labID`) for `holder` until `until`, unless another holder's claim or a
    /// finished start is still in force at `now`; what the caller found.
    ///
    /// - Important: Atomic: of racing claimers (in any process), one gets the claim.
    func claimLabStart(learnerID: String, labID: String, holder: String, now: Date, until: Date) async throws -> LabStartClaim
    /// Ends `holder`'s claim: with `outcome` (a started lab, shared until `sharedUntil`), or without (the next click
    /// starts anew).
    func finishLabStart(learnerID: String, labID: String, holder: String, outcome: String?, sharedUntil: Date) async throws
    /// Stops sharing the finished start of (`learnerID`, `labID`), whoever made it (its lab no longer runs); a start
    /// under way is left alone.
    func forgetLabStart(learnerID: String, labID: String) async throws
}

/// Whether the database answers (readiness).
public protocol DatabaseHealth: Sendable {
    /// Throws unless the database takes a write now: one row updated (through the same write path as every launch),
    /// so a database that answers reads but cannot write (a read-only file, a full disk, a write queue at its
    /// bound) is not ready.
    func checkWritable(now: Date) async throws
}

/// Removal of one-time state that expired.
public protocol ExpiredStateStore: Sendable {
    /// Deletes login states, picker and lab sessions that expired before `now`; returns how many rows went.
    func deleteExpired(now: Date) async throws -> Int
}

/// Everything the gateway keeps. A backend implements all of it and passes `GatewayStoreConformance`; each
/// consumer depends only on the narrow protocols it uses.
public protocol GatewayStore: RegistrationStore, LoginStateStore, IdentityStore, LaunchStore, DeepLinkSessionStore,
    LabSessionStore, LabStartStore, SkyPrepAccountStore, JobQueueStore, DatabaseHealth, ExpiredStateStore, APIKeyStore, AuditStore,
    WebhookEventStore, RegistrationInviteStore
{
    /// Applies pending schema migrations.
    func migrate() async throws
    /// Runs the store's background work until the calling task is cancelled: PostgreSQL's connection pool (no
    /// statement runs without it), SQLite's log checkpointer. Whoever opens a store runs it around its use of the
    /// store — ``whileRunning(_:)`` — so that the work has an owner and ends before ``close()``.
    func run() async
    /// Releases connections; after ``run()`` has ended.
    func close() async throws
}

extension GatewayStore {
    /// Runs `body` with the store's background work (``run()``) running beside it, and stops that work when
    /// `body` ends, on every path.
    public func whileRunning<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await self.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// SkyPrep users of learners, and per-registration SkyPrep settings.
public protocol SkyPrepAccountStore: Sendable {
    func skyPrepAccount(learnerID: String) async throws -> SkyPrepAccount?
    /// The learners linked to SkyPrep user `userID` (more than one only where an operator enabled linking by email).
    func skyPrepAccounts(userID: Int) async throws -> [SkyPrepAccount]
    /// Inserts or replaces the learner's SkyPrep account.
    func saveSkyPrepAccount(_ account: SkyPrepAccount) async throws
    /// The registration's SkyPrep options (defaults when none were set).
    func skyPrepOptions(registrationID: String) async throws -> PlatformSkyPrepOptions
    /// Replaces the registration's SkyPrep options; `false` when there is no such registration.
    func setSkyPrepOptions(_ options: PlatformSkyPrepOptions, registrationID: String) async throws -> Bool
}

/// A durable job queue: what is accepted survives restarts; each job runs on one worker at a time.
public protocol JobQueueStore: Sendable {
    /// Adds the job, or — when (kind, key) is queued — replaces its payload and bumps its revision; a job that has
    /// not run yet becomes due by `runAt` at the latest, while a job that failed keeps its backoff and a held job
    /// stays held until an operator releases it (new input never hammers a failing vendor or undoes a hold).
    func enqueueJob(kind: String, key: String, payload: String, runAt: Date) async throws
    /// Leases up to `limit` due jobs of `kind` (optionally only `key`) that are neither held nor leased, to
    /// `worker` until `leaseUntil`, counting an attempt.
    ///
    /// - Important: Atomic: of racing claimers (in any process), each job goes to one.
    func claimJobs(kind: String, key: String?, now: Date, leaseUntil: Date, worker: String, limit: Int) async throws -> [QueuedJob]
    /// Extends `worker`'s lease on the job to `until` while it runs (a heartbeat), so a short lease never expires under
    /// a live worker while a dead worker's jobs are due again soon; `false` when `worker` no longer holds it.
    func renewJobLease(_ job: QueuedJob, worker: String, until: Date) async throws -> Bool
    /// Removes the job if it still has the claimed revision; otherwise (enqueued again meanwhile) releases it to run again.
    func completeJob(_ job: QueuedJob, worker: String) async throws
    /// Releases the job with `error`: due again at `retryAt`, or held for an operator when `retryAt` is nil.
    func failJob(_ job: QueuedJob, worker: String, failure: JobFailure, retryAt: Date?) async throws
    /// The queued job (kind, key), if any.
    func queuedJob(kind: String, key: String) async throws -> QueuedJob?
    /// When the current lease on the job (kind, key) ends; nil when no worker holds it (operators, tests).
    func jobLease(kind: String, key: String) async throws -> Date?
    /// Queued jobs, oldest first (operators).
    func queuedJobs(limit: Int) async throws -> [QueuedJob]
    /// Queued jobs of `kind`, oldest first (operators).
    func queuedJobs(kind: String, limit: Int) async throws -> [QueuedJob]
    /// How many jobs of `kind` wait (to run, or to run again) and how many are held for an operator.
    func jobCounts(kind: String) async throws -> (waiting: Int, held: Int)
    /// Makes a job (held or waiting) due at `now`, its attempts counted afresh; `false` when there is no such job.
    func releaseJob(kind: String, key: String, now: Date) async throws -> Bool
}
