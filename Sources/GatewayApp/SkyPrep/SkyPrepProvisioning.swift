import Foundation
import GatewayStorage
import GatewaySupport
import LTICore
import Logging
import Metrics
import SkyPrep

/// What provisioning one learner in SkyPrep needs: the durable job's payload.
struct SkyPrepProvisioningRequest: Codable, Sendable, Equatable {
    var learnerID: String
    var registrationID: String
    var email: String?
    var firstName: String
    var lastName: String
    var roles: [String]

    init(identity: LearnerIdentity, registrationID: String, roles: [String]) {
        learnerID = identity.id
        self.registrationID = registrationID
        email = identity.email.flatMap { $0.contains("@") ? $0 : nil }
        firstName = identity.givenName ?? ""
        lastName = identity.familyName ?? ""
        self.roles = roles
    }

    /// The domain of the email the LMS shared (lowercased), for operators: never the whole address.
    var emailDomain: String? {
        guard let email, let at = email.lastIndex(of: "@"), email.index(after: at) < email.endIndex else { return nil }
        return email[email.index(after: at)...].lowercased()
    }

    /// The address SkyPrep knows this learner by: the LMS's, else the platform's synthetic rule, else none.
    func email(options: PlatformSkyPrepOptions) -> String? {
        email ?? options.syntheticEmailDomain.map { "\(learnerID)@\($0)" }
    }
}

/// The SkyPrep client for a registration's account: the gateway-wide one, or another account whose API
/// key is in the environment variable the registration names (never in the database).
struct SkyPrepAccountClients: Sendable {
    let defaultClient: SkyPrepClient
    let defaultAcctKey: String
    /// Reads a secret by variable name (the environment, or `NAME_FILE`).
    let secret: @Sendable (String) throws -> String?

    func client(for options: PlatformSkyPrepOptions) throws -> SkyPrepClient {
        guard options.account != nil || options.apiKeyVariable != nil else { return defaultClient }
        let variable = options.apiKeyVariable ?? "SKYPREP_API_KEY"
        // Checked again here: options stored before the rule existed must not send another secret to SkyPrep.
        guard PlatformSkyPrepOptions.isAPIKeyVariable(variable) else {
            throw SkyPrepProvisioningError.configuration("the API key variable \(variable) does not start with SKYPREP_API_KEY_")
        }
        guard let key = try secret(variable) else {
            throw SkyPrepProvisioningError.configuration("the environment variable \(variable) (SkyPrep API key) is not set")
        }
        return defaultClient.forAccount(acctKey: options.account ?? defaultAcctKey, apiKey: key)
    }
}

/// Why provisioning stopped.
enum SkyPrepProvisioningError: Error, CustomStringConvertible {
    /// SkyPrep has a user with this email that is not this learner's, and linking by email is off.
    case emailInUse
    /// SkyPrep's user with this email has a role above `learner`: never linked by email (an operator links it).
    case privilegedAccount(role: String)
    case configuration(String)
    case vendor(SkyPrepError)

    /// Retrying later may succeed: SkyPrep down or rate-limited, or refusing our keys (an operator fixes
    /// them and the queue resumes by itself). A refused request or a shared email needs an operator.
    var isTransient: Bool {
        if case .vendor(let error) = self { return ![.badParameters, .notFound].contains(error.code) }
        return false
    }

    /// The stable code a held or waiting job keeps (`jobs list`, and the sign-in's decision).
    var code: String {
        switch self {
        case .emailInUse: "email_in_use"
        case .privilegedAccount: "privileged_account"
        case .configuration: "configuration"
        case .vendor(let error): "skyprep_\(error.code.rawValue)"
        }
    }

    var description: String {
        switch self {
        case .emailInUse: "email_in_use: SkyPrep has another user with this email; enable linking by email for the platform to link them"
        case .privilegedAccount(let role):
            "privileged_account: SkyPrep's user with this email is \(role), not learner; linking by email never takes over such an account"
        case .configuration(let message): "configuration: \(message)"
        case .vendor(let error): "\(error)"
        }
    }
}

/// Finds, creates or updates one learner's SkyPrep user (SPEC "Launch" step 4) and remembers its id
/// against the learner's (issuer, sub) identity, so that later launches make no SkyPrep call.
///
/// Email is SkyPrep's key, so a user found by email is linked only when it is provably this learner's
/// (its `user_identifier` is our learner id) or the platform's operator enabled linking by email — and then only a
/// user whose SkyPrep role is `learner`, whose role linking never changes (an administrator's account is never
/// taken over by a learner who shares its email: the job is held for an operator).
struct SkyPrepProvisioner: Sendable {
    enum Outcome: String, Sendable {
        case created, updated, unchanged, linked
        case skippedNoEmail = "skipped_no_email"
    }

    let store: any SkyPrepAccountStore & JobQueueStore
    let clients: SkyPrepAccountClients
    let now: @Sendable () -> Date

    /// Whether `request` needs SkyPrep at all: no account yet, or names or role changed.
    static func needsWork(_ request: SkyPrepProvisioningRequest, account: SkyPrepAccount?, options: PlatformSkyPrepOptions) -> Bool {
        guard let account else { return request.email(options: options) != nil }
        return account.firstName != request.firstName || account.lastName != request.lastName
            || account.role != options.skyPrepRole(for: request.roles)
    }

    func provision(_ request: SkyPrepProvisioningRequest) async throws -> (Outcome, SkyPrepAccount?) {
        let options = try await store.skyPrepOptions(registrationID: request.registrationID)
        let role = options.skyPrepRole(for: request.roles)
        let client = try clients.client(for: options)
        do {
            if var account = try await store.skyPrepAccount(learnerID: request.learnerID) {
                guard Self.needsWork(request, account: account, options: options) else { return (.unchanged, account) }
                try await client.updateUser(id: account.userID, firstName: request.firstName, lastName: request.lastName, role: role)
                account.firstName = request.firstName
                account.lastName = request.lastName
                account.role = role
                account.updatedAt = now()
                try await store.saveSkyPrepAccount(account)
                return (.updated, account)
            }
            guard let email = request.email(options: options) else { return (.skippedNoEmail, nil) }
            let newUser = SkyPrepNewUser(
                email: email, firstName: request.firstName, lastName: request.lastName,
                userIdentifier: request.learnerID, role: role)
            var account = SkyPrepAccount(
                learnerID: request.learnerID, userID: 0, email: email, firstName: request.firstName,
                lastName: request.lastName, role: role, updatedAt: now())
            let outcome: Outcome
            do {
                account.userID = try await client.createUser(newUser)
                outcome = .created
            } catch let error as SkyPrepError where error.code == .badParameters {
                // Most likely the email is taken; anything else is a real refusal.
                guard let existing = try await client.user(email: email) else { throw error }
                if existing.userIdentifier == request.learnerID {
                    // Ours (created for this learner by an earlier run that did not finish): names and role as for any update.
                    try await client.updateUser(id: existing.id, firstName: request.firstName, lastName: request.lastName, role: role)
                } else {
                    guard options.linkByEmail else { throw SkyPrepProvisioningError.emailInUse }
                    // Someone else's user: only a learner is linked, and its role stays what it is.
                    let existingRole = try await client.userRole(id: existing.id)
                    guard existingRole == "learner" else { throw SkyPrepProvisioningError.privilegedAccount(role: existingRole ?? "unknown") }
                    try await client.updateUser(id: existing.id, firstName: request.firstName, lastName: request.lastName, role: nil)
                    account.role = "learner"
                }
                account.userID = existing.id
                outcome = .linked
            }
            try await store.saveSkyPrepAccount(account)
            return (outcome, account)
        } catch let error as SkyPrepError {
            throw SkyPrepProvisioningError.vendor(error)
        }
    }
}

/// The durable queue of SkyPrep provisioning: a launch enqueues (one row per learner, replaced by newer
/// input) and never waits; workers in any instance claim due jobs, so each runs once at a time, and a
/// failure is retried with backoff until it succeeds — or held for an operator when retrying cannot help
/// (`lti-gateway jobs list`, `jobs retry`).
final class SkyPrepProvisioningQueue: Sendable {
    static let kind = "skyprep.provision"

    let store: any SkyPrepAccountStore & JobQueueStore
    /// Registrations' SkyPrep options, cached (read on every launch).
    let registrations: RegistrationCache
    let provisioner: SkyPrepProvisioner
    let logger: Logger
    /// The durable jobs: retries double up to an hour, ±20 % so that held-up jobs do not retry in step.
    let jobs: DurableJobs

    init(
        store: any SkyPrepAccountStore & JobQueueStore, registrations: RegistrationCache, provisioner: SkyPrepProvisioner, logger: Logger,
        lease: TimeInterval = 30,
        retry: Backoff = Backoff(base: .seconds(30), cap: .seconds(3600), jitter: .proportional(0.2))
    ) {
        self.store = store
        self.registrations = registrations
        self.provisioner = provisioner
        self.logger = logger
        jobs = DurableJobs(
            kind: Self.kind, store: store, lease: lease, retry: retry, keyField: "gw.learner", name: "SkyPrep provisioning",
            metric: "skyprep_provisioning", logger: logger, now: provisioner.now)
    }

    /// Called on every resource-link launch: the provisioning job to queue when SkyPrep does not yet know this learner
    /// as they are now, for the caller to write with the launch's record (then ``queued(_:logger:)``); nil when there is
    /// nothing to do, or when it cannot be told (logged). Never throws and never calls SkyPrep: the lab must not wait.
    func job(for identity: LearnerIdentity, registrationID: String, roles: [String], logger: Logger, now: Date) async -> JobToQueue? {
        let request = SkyPrepProvisioningRequest(identity: identity, registrationID: registrationID, roles: roles)
        do {
            let options = try await registrations.skyPrepOptions(registrationID: registrationID)
            guard options.provisioning else { return nil }
            let account = try await store.skyPrepAccount(learnerID: identity.id)
            guard SkyPrepProvisioner.needsWork(request, account: account, options: options) else { return nil }
            return JobToQueue(kind: Self.kind, key: request.learnerID, payload: try StoredJSON.encode(request), runAt: now)
        } catch {
            logger.error("SkyPrep provisioning not queued", metadata: ["gw.learner": "\(identity.id)", "error": "\(error)"])
            return nil
        }
    }

    /// After `job` was written: this instance's worker starts on it at once.
    func queued(_ job: JobToQueue, logger: Logger) {
        jobs.wake()
        logger.info("SkyPrep provisioning queued", metadata: ["gw.learner": "\(job.key)"])
    }

    /// Queues `job` on its own (a launch refused before its record is written); logged, never thrown.
    func enqueue(_ job: JobToQueue, logger: Logger) async {
        do {
            try await store.enqueueJob(kind: job.kind, key: job.key, payload: job.payload, runAt: job.runAt)
            queued(job, logger: logger)
        } catch {
            logger.error("SkyPrep provisioning not queued", metadata: ["gw.learner": "\(job.key)", "error": "\(error)"])
        }
    }

    /// Queues `request`; `wake` starts this instance's worker on it at once.
    func enqueue(_ request: SkyPrepProvisioningRequest, wake: Bool = true) async throws {
        try await jobs.enqueue(key: request.learnerID, payload: try StoredJSON.encode(request), wake: wake)
    }

    /// Provisions `request` now (SSO, where the browser waits for the account): queued first, so a
    /// failure is retried later; when another worker holds the job, waits for its outcome for a while.
    func provisionNow(_ request: SkyPrepProvisioningRequest, wait: Duration = .seconds(5)) async throws -> SkyPrepAccount? {
        try await enqueue(request, wake: false)
        let deadline = ContinuousClock.now + wait
        while true {
            if let job = try await jobs.claim(key: request.learnerID).first {
                return try await run(job)
            }
            if let job = try await store.queuedJob(kind: Self.kind, key: request.learnerID) {
                // Held by another worker's run: the same cause holds here.
                if job.held {
                    let anotherAccount = [SkyPrepProvisioningError.emailInUse.code, "privileged_account"].contains(job.failureCode ?? "")
                    throw anotherAccount ? SkyPrepProvisioningError.emailInUse : SkyPrepProvisioningError.configuration(job.lastError ?? "held")
                }
            } else {
                return try await store.skyPrepAccount(learnerID: request.learnerID)
            }
            guard ContinuousClock.now < deadline else {
                throw SkyPrepProvisioningError.vendor(SkyPrepError(code: .timeout, method: "create_user", httpStatus: nil, responseBody: ""))
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Runs due jobs, up to `limit`; how many ran.
    @discardableResult
    func runDue(limit: Int = 20) async -> Int {
        await jobs.runDue(limit: limit) { job in _ = try await self.run(job) }
    }

    /// Runs due jobs whenever woken and at least every `poll`, until cancelled.
    func work(poll: Duration) async {
        await jobs.work(poll: poll) { job in _ = try await self.run(job) }
    }

    /// Runs one claimed job and settles it (complete, retry later, or hold: only when retrying cannot help).
    private func run(_ job: QueuedJob) async throws -> SkyPrepAccount? {
        try await jobs.run(
            job,
            classify: { error in
                let failure = error as? SkyPrepProvisioningError
                return DurableJobs.Failure(code: failure?.code ?? "error", transient: failure?.isTransient ?? true)
            }
        ) { job in
            let request = try StoredJSON.decode(SkyPrepProvisioningRequest.self, from: job.payload, what: "the payload of job \(job.kind) \(job.key)")
            let (outcome, account) = try await provisioner.provision(request)
            Counter(label: "skyprep_provisioning_total", dimensions: [("outcome", outcome.rawValue)]).increment()
            logger.info(
                "SkyPrep provisioning",
                metadata: [
                    "gw.learner": "\(request.learnerID)", "skyprep.outcome": "\(outcome.rawValue)", "gw.job.attempt": "\(job.attempts)",
                    "skyprep.user": "\(account.map { String($0.userID) } ?? "-")",
                ])
            return account
        }
    }
}
