import Foundation
import LTICore

/// A ``GatewayStore`` over SQL: the backend supplies how one statement runs (``read(_:_:)``, ``write(_:_:)``);
/// every store operation that is one statement, or a few independent ones, is written here once (``GatewaySQL``).
/// The backend keeps what differs: migrations, multi-statement transactions, the job claim.
public protocol SQLGatewayStore: GatewayStore {
    associatedtype Row: SQLRow
    /// Runs a statement that changes nothing.
    func read(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [Row]
    /// Runs a single-statement write, atomically; a unique violation is ``StorageError`` `.duplicate`.
    @discardableResult
    func write(_ statement: SQLStatement, _ values: [SQLValue]) async throws -> [Row]
    /// Runs single-statement writes on different tables as one atomic write: all or none. A unique violation in any of
    /// them is ``StorageError`` `.duplicate`, and none is kept. The statements must not depend on each other's effects
    /// (PostgreSQL runs them as one statement, on one snapshot) and none may begin with `WITH`.
    func write(together statements: [(SQLStatement, [SQLValue])]) async throws
}

extension SQLGatewayStore {
    // MARK: readiness

    public func checkWritable(now: Date) async throws {
        guard try await write(GatewaySQL.readinessCheck, [.time(now)]).count == 1 else {
            throw StorageError(.corrupt, "the readiness row is missing")
        }
    }

    // MARK: registrations

    public func allRegistrations() async throws -> [PlatformRegistration] {
        try GatewaySQL.registrations(try await read(GatewaySQL.allRegistrations, []))
    }

    public func registrations(issuer: String) async throws -> [PlatformRegistration] {
        try GatewaySQL.registrations(try await read(GatewaySQL.registrationsByIssuer, [.text(issuer), .bool(true)]))
    }

    public func registration(id: String) async throws -> PlatformRegistration? {
        try GatewaySQL.registrations(try await read(GatewaySQL.registrationByID, [.text(id)])).first
    }

    public func removeRegistration(id: String) async throws -> Bool {
        !(try await write(GatewaySQL.removeRegistration, [.text(id)]).isEmpty)
    }

    public func launchOptions(registrationID: String) async throws -> PlatformLaunchOptions {
        try await options(.launch, of: registrationID) ?? PlatformLaunchOptions()
    }

    public func setLaunchOptions(_ options: PlatformLaunchOptions, registrationID: String) async throws -> Bool {
        try await setOptions(.launch, to: options, of: registrationID)
    }

    public func skyPrepOptions(registrationID: String) async throws -> PlatformSkyPrepOptions {
        try await options(.skyPrep, of: registrationID) ?? PlatformSkyPrepOptions()
    }

    public func setSkyPrepOptions(_ options: PlatformSkyPrepOptions, registrationID: String) async throws -> Bool {
        try await setOptions(.skyPrep, to: options, of: registrationID)
    }

    /// A registration's JSON options column; nil when unset.
    private func options<T: Decodable>(_ column: GatewaySQL.OptionsColumn, of registrationID: String) async throws -> T? {
        guard let text = try await read(column.read, [.text(registrationID)]).first?.text(column.rawValue) else { return nil }
        return try StoredJSON.decode(T.self, from: text, what: "\(column.rawValue) of \(registrationID)")
    }

    private func setOptions<T: Encodable>(_ column: GatewaySQL.OptionsColumn, to value: T, of registrationID: String) async throws -> Bool {
        !(try await write(column.write, [.text(try StoredJSON.encode(value)), .text(registrationID)]).isEmpty)
    }

    // MARK: login state

    public func saveLoginState(_ state: LoginState) async throws {
        let (statement, values) = GatewaySQL.save(state)
        try await write(statement, values)
    }

    public func consumeLoginState(_ state: String, now: Date) async throws -> LoginState? {
        guard let row = try await write(GatewaySQL.consumeLoginState, [.text(state)]).first else { return nil }
        let found = try GatewaySQL.loginState(row)
        return found.expiresAt > now ? found : nil
    }

    public func loginState(_ state: String, now: Date) async throws -> LoginState? {
        try await read(GatewaySQL.loginStateByState, [.text(state), .time(now)]).first.map(GatewaySQL.loginState)
    }

    public func loginState(restartKey: String, now: Date) async throws -> LoginState? {
        try await read(GatewaySQL.loginStateByRestartKey, [.text(restartKey), .time(now)]).first.map(GatewaySQL.loginState)
    }

    public func assignRestartKey(_ key: String, toState state: String, now: Date) async throws -> String? {
        try await write(GatewaySQL.assignRestartKey, [.text(key), .text(state), .time(now)]).first?.text("restart_key")
    }

    public func deleteExpired(now: Date) async throws -> Int {
        var removed = 0
        for statement in GatewaySQL.deleteExpired {
            while true {
                let batch = try await write(statement, [.time(now)]).count
                removed += batch
                if batch < GatewaySQL.expiredBatch { break }
            }
        }
        return removed
    }

    // MARK: deep-linking sessions

    public func saveDeepLinkSession(_ session: DeepLinkSession) async throws {
        try await write(GatewaySQL.saveDeepLinkSession, GatewaySQL.values(session))
    }

    public func consumeDeepLinkSession(id: String, now: Date) async throws -> DeepLinkSession? {
        guard let row = try await write(GatewaySQL.consumeDeepLinkSession, [.text(id)]).first else { return nil }
        let session = try GatewaySQL.deepLinkSession(row)
        return session.expiresAt > now ? session : nil
    }

    // MARK: lab sessions

    public func saveLabSession(id: String, data: String, expiresAt: Date) async throws {
        try await write(GatewaySQL.saveLabSession, [.text(id), .text(data), .bool(false), .time(expiresAt)])
    }

    public func labSession(id: String) async throws -> StoredLabSession? {
        try await read(GatewaySQL.labSession, [.text(id)]).first.map(GatewaySQL.labSession)
    }

    public func useLabSessionLaunch(id: String, now: Date) async throws -> String? {
        try await write(GatewaySQL.useLabSessionLaunch, [.bool(true), .text(id), .bool(false), .time(now)]).first
            .map { try $0.requiredText("data") }
    }

    public func releaseLabSessionLaunch(id: String) async throws {
        try await write(GatewaySQL.releaseLabSessionLaunch, [.bool(false), .text(id)])
    }

    // MARK: lab starts

    public func claimLabStart(learnerID: String, labID: String, holder: String, now: Date, until: Date) async throws -> LabStartClaim {
        let claimed = try await write(GatewaySQL.claimLabStart, [.text(learnerID), .text(labID), .text(holder), .time(until), .time(now)])
        if let row = claimed.first, try row.requiredText("holder") == holder { return .claimed }
        guard let row = try await read(GatewaySQL.labStart, [.text(learnerID), .text(labID)]).first else { return .running }
        return try row.text("outcome").map { .finished(outcome: $0) } ?? .running
    }

    public func finishLabStart(learnerID: String, labID: String, holder: String, outcome: String?, sharedUntil: Date) async throws {
        if let outcome {
            try await write(GatewaySQL.shareLabStart, [.text(outcome), .time(sharedUntil), .text(learnerID), .text(labID), .text(holder)])
        } else {
            try await write(GatewaySQL.releaseLabStart, [.text(learnerID), .text(labID), .text(holder)])
        }
    }

    public func forgetLabStart(learnerID: String, labID: String) async throws {
        try await write(GatewaySQL.forgetLabStart, [.text(learnerID), .text(labID)])
    }

    // MARK: identities

    public func upsertIdentity(_ identity: LearnerIdentity) async throws -> LearnerIdentity {
        guard let row = try await write(GatewaySQL.upsertIdentity, GatewaySQL.values(identity)).first else {
            throw StorageError(.corrupt, "upsert returned no row")
        }
        return try GatewaySQL.identity(row)
    }

    public func identity(issuer: String, trustAnchor: String, subject: String) async throws -> LearnerIdentity? {
        try await read(GatewaySQL.identity, [.text(issuer), .text(trustAnchor), .text(subject)]).first.map(GatewaySQL.identity)
    }

    // MARK: launches

    public func recordLaunch(_ launch: LaunchRecord) async throws {
        try await write(GatewaySQL.recordLaunch, GatewaySQL.values(launch))
    }

    public func recordLaunch(_ launch: LaunchRecord, learner: LearnerIdentity?, job: JobToQueue?) async throws {
        guard learner != nil || job != nil else { return try await recordLaunch(launch) }
        var statements: [(SQLStatement, [SQLValue])] = []
        if let learner { statements.append((GatewaySQL.upsertIdentity, GatewaySQL.values(learner))) }
        if let job { statements.append((GatewaySQL.enqueueJob, GatewaySQL.values(job))) }
        statements.append((GatewaySQL.recordLaunch, GatewaySQL.values(launch)))
        try await write(together: statements)
    }

    public func completeLaunch(_ launch: LaunchRecord) async throws {
        guard try await write(GatewaySQL.completeLaunch, GatewaySQL.outcomeValues(launch)).isEmpty else { return }
        try await recordLaunch(launch)
    }

    public func launch(id: String) async throws -> LaunchRecord? {
        try await read(GatewaySQL.launchByID, [.text(id)]).first.map(GatewaySQL.launch)
    }

    public func recentLaunches(limit: Int) async throws -> [LaunchRecord] {
        try await read(GatewaySQL.recentLaunches, [.integer(max(0, limit))]).map(GatewaySQL.launch)
    }

    // MARK: SkyPrep accounts

    public func skyPrepAccount(learnerID: String) async throws -> SkyPrepAccount? {
        try await read(GatewaySQL.accountByLearner, [.text(learnerID)]).first.map(GatewaySQL.account)
    }

    public func skyPrepAccounts(userID: Int) async throws -> [SkyPrepAccount] {
        try await read(GatewaySQL.accountsByUser, [.integer(userID)]).map(GatewaySQL.account)
    }

    public func saveSkyPrepAccount(_ account: SkyPrepAccount) async throws {
        try await write(GatewaySQL.saveAccount, GatewaySQL.values(account))
    }

    // MARK: jobs

    public func enqueueJob(kind: String, key: String, payload: String, runAt: Date) async throws {
        try await write(GatewaySQL.enqueueJob, GatewaySQL.values(JobToQueue(kind: kind, key: key, payload: payload, runAt: runAt)))
    }

    public func renewJobLease(_ job: QueuedJob, worker: String, until: Date) async throws -> Bool {
        !(try await write(GatewaySQL.renewJobLease, [.time(until), .text(job.kind), .text(job.key), .text(worker)]).isEmpty)
    }

    public func completeJob(_ job: QueuedJob, worker: String) async throws {
        let removed = try await write(GatewaySQL.completeJob, [.text(job.kind), .text(job.key), .integer(job.revision), .text(worker)])
        guard removed.isEmpty else { return }
        try await write(GatewaySQL.unlockJob, [.text(job.kind), .text(job.key), .text(worker)])
    }

    public func failJob(_ job: QueuedJob, worker: String, failure: JobFailure, retryAt: Date?) async throws {
        let (statement, value): (SQLStatement, SQLValue) = retryAt.map { (GatewaySQL.retryJob, .time($0)) } ?? (GatewaySQL.holdJob, .bool(true))
        try await write(
            statement,
            [.text(failure.detail), .text(failure.code), .integer(job.revision), value, .text(job.kind), .text(job.key), .text(worker)])
    }

    public func jobLease(kind: String, key: String) async throws -> Date? {
        guard let row = try await read(GatewaySQL.jobLease, [.text(kind), .text(key)]).first else { return nil }
        return try row.date("locked_until")
    }

    public func queuedJob(kind: String, key: String) async throws -> QueuedJob? {
        try await read(GatewaySQL.queuedJob, [.text(kind), .text(key)]).first.map(GatewaySQL.job)
    }

    public func queuedJobs(limit: Int) async throws -> [QueuedJob] {
        try await read(GatewaySQL.queuedJobs, [.integer(max(0, limit))]).map(GatewaySQL.job)
    }

    public func releaseJob(kind: String, key: String, now: Date) async throws -> Bool {
        !(try await write(GatewaySQL.releaseJob, [.bool(false), .time(now), .text(kind), .text(key)]).isEmpty)
    }
}
