import Foundation
import GatewayStorage
import GatewaySupport
import LTICore
import Logging
import Skillable

/// What starting a lab for one click came to.
enum LabStart: Sendable {
    /// Skillable started the lab (Result 1).
    case started(url: String, instanceID: Int64?)
    /// The API consumer answered with a deferred-launch URL.
    case deferred(url: String)
    /// After an ambiguous failure, the learner's running instance of this lab was found.
    case existing(instanceID: Int64)
    /// Skillable answered with another result.
    case refused(SkillableLaunchResponse)
    /// Skillable could not be reached in time.
    case unavailable(SkillableError)
}

/// Retries and deadline of a lab launch.
struct LaunchRetryPolicy: Sendable {
    var maxAttempts = 3
    /// Waits between attempts: full jitter up to the exponential bound.
    var backoff = Backoff(base: .milliseconds(250), cap: .seconds(2), jitter: .full)
    /// How long a learner is kept waiting in all.
    var deadline: Duration = .seconds(20)

    func delay(afterAttempt attempt: Int) -> Duration { backoff.delay(afterAttempt: attempt) }
}

/// Starts labs: at most one Skillable `Launch` in flight per learner and lab (double clicks join it),
/// bounded retries with backoff and jitter on outages, and — after a failure that may have reached
/// Skillable — a look at the learner's running labs before launching again, so one click never starts two labs.
actor LaunchCoordinator {
    /// A start under way (its task), or a finished one (only its result: a finished task is not kept,
    /// so its memory goes at once).
    private enum Flight {
        /// `elsewhere`: the start was another instance's, shared through the database.
        case running(id: UUID, task: Task<(start: LabStart, elsewhere: Bool), Never>)
        case finished(LabStart, at: ContinuousClock.Instant)

        var finishedAt: ContinuousClock.Instant? {
            if case .finished(_, let at) = self { return at }
            return nil
        }
    }

    private let skillable: any SkillableLabService
    private let policy: LaunchRetryPolicy
    private let deferredRule: DeferredLaunchRule
    /// How long a finished start is shared with later clicks of the same learner and lab.
    private let joinWindow: Duration
    private let logger: Logger
    private var flights: [String: Flight] = [:]
    /// The gateway's monotonic clock (tests move it).
    private let now: @Sendable () -> ContinuousClock.Instant
    private var lastSweep: ContinuousClock.Instant
    /// The claims that make a start single across instances (nil: this process alone).
    private let claims: LabStartClaims?

    init(
        skillable: any SkillableLabService, policy: LaunchRetryPolicy, deferredRule: DeferredLaunchRule, joinWindow: Duration, logger: Logger,
        claims: LabStartClaims? = nil, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.claims = claims
        self.skillable = skillable
        self.policy = policy
        self.deferredRule = deferredRule
        self.joinWindow = joinWindow
        self.logger = logger
        self.now = now
        lastSweep = now()
    }

    /// Starts the lab of `request`, or joins the start already under way (or just finished) for the same
    /// learner and lab. `joined` tells whether this click joined another one's start.
    func start(_ request: SkillableLaunchRequest) async -> (start: LabStart, joined: Bool) {
        let key = "\(request.userID)\u{0}\(request.labID)"
        let arrived = now()
        // Finished starts are forgotten after the join window: this key at once, the others at most once a second.
        if arrived - lastSweep > .seconds(1) {
            flights = flights.filter { $0.value.finishedAt.map { arrived - $0 < joinWindow } ?? true }
            lastSweep = arrived
        }
        switch flights[key] {
        case .running(_, let task)?:
            return (await task.value.start, true)
        case .finished(let start, let at)? where arrived - at < joinWindow:
            return (start, true)
        case .finished?, nil:
            break
        }
        let id = UUID()
        let task = Task { [claims, policy] in
            guard let claims else { return (start: await self.attemptsWithinDeadline(request), elsewhere: false) }
            return await claims.start(request, within: policy.deadline) { await self.attemptsWithinDeadline(request) }
        }
        flights[key] = .running(id: id, task: task)
        let (start, elsewhere) = await task.value
        if case .running(let current, _)? = flights[key], current == id {
            // Only successful starts are shared after they finish.
            if case .started = start { flights[key] = .finished(start, at: now()) } else { flights[key] = nil }
        }
        return (start, elsewhere)
    }

    /// Stops sharing a finished start of this learner and lab (its lab no longer runs), here and across instances.
    func forget(_ request: SkillableLaunchRequest) async {
        let key = "\(request.userID)\u{0}\(request.labID)"
        if flights[key]?.finishedAt != nil { flights[key] = nil }
        await claims?.forget(request)
    }

    /// Every attempt, the waits between them and the running-labs checks together within the policy's deadline: a
    /// hung Skillable keeps the learner waiting `SKILLABLE_LAUNCH_DEADLINE_SECONDS`, not that times the attempts.
    private func attemptsWithinDeadline(_ request: SkillableLaunchRequest) async -> LabStart {
        do {
            return try await withDeadline(policy.deadline) { await self.attempts(request) }
        } catch {
            logger.notice("skillable launch gave no result within the deadline", metadata: ["lab.id": "\(request.labID)"])
            return .unavailable(.launchTimedOut("no result within \(policy.deadline)"))
        }
    }

    private func attempts(_ request: SkillableLaunchRequest) async -> LabStart {
        let deadline = now() + policy.deadline
        var mayHaveStarted = false
        var lastError: SkillableError?
        for attempt in 1...policy.maxAttempts {
            if mayHaveStarted, let running = await runningInstance(request) { return .existing(instanceID: running) }
            do {
                let response = try await skillable.launch(request)
                if let url = deferredRule.deferredURL(in: response) { return .deferred(url: url) }
                if response.result == .success, let url = response.url { return .started(url: url, instanceID: response.labInstanceID) }
                return .refused(response)
            } catch let error as SkillableError {
                lastError = error
                guard error.isTransient else { return .unavailable(error) }
                mayHaveStarted = mayHaveStarted || error.requestMayHaveArrived
                let delay = policy.delay(afterAttempt: attempt)
                guard attempt < policy.maxAttempts, now() + delay < deadline else { break }
                logger.notice(
                    "skillable launch failed; retrying",
                    metadata: [
                        "skillable.error": "\(error.code.rawValue)", "skillable.attempt": "\(attempt)", "lab.id": "\(request.labID)",
                    ])
                try? await Task.sleep(for: delay)
            } catch {
                return .unavailable(
                    SkillableError(
                        code: .transport, command: "Launch", message: "\(type(of: error))",
                        httpStatus: nil, requestMayHaveArrived: true))
            }
        }
        if mayHaveStarted, let running = await runningInstance(request) { return .existing(instanceID: running) }
        return .unavailable(
            lastError
                ?? SkillableError(
                    code: .transport, command: "Launch", message: "no attempt",
                    httpStatus: nil, requestMayHaveArrived: false))
    }

    /// The learner's running instance of the requested lab, if Skillable answers.
    private func runningInstance(_ request: SkillableLaunchRequest) async -> Int64? {
        guard let labs = try? await skillable.userRunningAndSavedLabs(userID: request.userID) else { return nil }
        return labs.runningLabs.last { $0.labProfileID == request.labID }?.labInstanceID
    }
}

/// One learner's start of one lab, single across every instance on the database: the instance that claims it starts
/// the lab; a click that reaches another instance meanwhile waits for that outcome (within the launch deadline) and,
/// when the lab started, joins it; a successful start is shared for the join window, as within one process.
struct LabStartClaims: Sendable {
    let store: any LabStartStore
    /// This instance, as the holder of its claims.
    let holder: String
    let joinWindow: Duration
    let logger: Logger
    /// The time of day, shared by all instances (claims expire by it).
    let now: @Sendable () -> Date
    /// How often a click waiting for another instance's start looks again.
    var poll: Duration = .milliseconds(100)

    init(store: any LabStartStore, joinWindow: Duration, logger: Logger, now: @escaping @Sendable () -> Date) {
        self.store = store
        self.holder = "instance-" + SecureRandom.token(byteCount: 12)
        self.joinWindow = joinWindow
        self.logger = logger
        self.now = now
    }

    /// The start of `request`: `startHere` when this instance claims it, another instance's outcome when it had one
    /// (`elsewhere`), or — when the database cannot be asked — `startHere` without a claim (the lab matters more).
    func start(
        _ request: SkillableLaunchRequest, within deadline: Duration, _ startHere: @Sendable () async -> LabStart
    ) async -> (start: LabStart, elsewhere: Bool) {
        let (learner, lab) = (request.userID, String(request.labID))
        let giveUp = ContinuousClock.now + deadline
        while true {
            let claim: LabStartClaim
            do {
                // The claim outlives the launch deadline a little: a holder that died frees it by itself.
                claim = try await store.claimLabStart(
                    learnerID: learner, labID: lab, holder: holder, now: now(), until: now().addingTimeInterval(deadline.totalSeconds + 5))
            } catch {
                logger.warning("lab start not claimed across instances; starting it here", metadata: ["error": "\(error)"])
                return (await startHere(), false)
            }
            switch claim {
            case .claimed:
                let start = await startHere()
                let shared = SharedLabStart(start)
                do {
                    try await store.finishLabStart(
                        learnerID: learner, labID: lab, holder: holder, outcome: try shared.map { try StoredJSON.encode($0) },
                        sharedUntil: now().addingTimeInterval(joinWindow.totalSeconds))
                } catch {
                    logger.warning("lab start not shared across instances", metadata: ["error": "\(error)"])
                }
                return (start, false)
            case .finished(let outcome):
                if let shared = try? StoredJSON.decode(SharedLabStart.self, from: outcome, what: "a shared lab start") {
                    return (.started(url: shared.url, instanceID: shared.instanceID), true)
                }
                return (await startHere(), false)
            case .running:
                guard ContinuousClock.now < giveUp else {
                    return (.unavailable(.launchTimedOut("another instance's start of this lab did not finish in time")), false)
                }
                try? await Task.sleep(for: poll)
            }
        }
    }
}

extension LabStartClaims {
    /// Stops sharing the finished start of `request` (its lab no longer runs).
    func forget(_ request: SkillableLaunchRequest) async {
        do {
            try await store.forgetLabStart(learnerID: request.userID, labID: String(request.labID))
        } catch {
            logger.warning("shared lab start not forgotten", metadata: ["error": "\(error)"])
        }
    }
}

/// A successful start as other instances read it.
struct SharedLabStart: Codable, Sendable {
    var url: String
    var instanceID: Int64?

    /// Only a started lab is shared (as within one process).
    init?(_ start: LabStart) {
        guard case .started(let url, let instanceID) = start else { return nil }
        self.url = url
        self.instanceID = instanceID
    }
}

extension SkillableError {
    /// A launch that ran out of its deadline; it may have reached Skillable.
    static func launchTimedOut(_ message: String) -> SkillableError {
        SkillableError(code: .timeout, command: "Launch", message: message, httpStatus: nil, requestMayHaveArrived: true)
    }
}
