import Foundation
import GatewayStorage
import LTICore
import Logging
import Skillable

/// Turns a validated resource-link launch into a Skillable lab launch and a ``LaunchOutcome``: a redirect
/// into the lab, the learner's labs to choose from (Result 2), a resumed saved lab (Result 6), a
/// deferred-launch URL, or a refusal by cause; outages are retried by ``LaunchCoordinator``.
///
/// The learner's Skillable `userid` is an opaque id derived from (issuer, sub), never the email
/// (SPEC "Launch" step 3). Every launch is recorded with its outcome, whatever the outcome.
struct LabLauncher: Sendable {
    let identities: any IdentityStore
    let skillable: any SkillableLabService
    let coordinator: LaunchCoordinator
    let redirectPolicy: LabRedirectPolicy
    let choices: LabChoices
    let recorder: LaunchRecorder
    /// Queues the learner's SkyPrep provisioning; the lab never waits for SkyPrep.
    let provisioning: SkyPrepProvisioningQueue?
    /// A registration's launch options (cached in production).
    let launchOptions: @Sendable (_ registrationID: String) async throws -> PlatformLaunchOptions
    /// Skillable's launchable lab profiles (cached): tells a lab that does not exist or cannot be launched from
    /// another failure when Skillable answers `Result` 0.
    var catalog: LabCatalog? = nil
    /// Learners this launcher stored lately (a repeated launch writes nothing).
    var recentLearners = RecentLearners()

    func launch(_ launch: ValidatedLaunch, trace: LaunchTrace, now: Date) async throws -> LaunchOutcome {
        let token = launch.token
        // The learner and their SkyPrep provisioning job are stored with the launch's pending record, in one write (or on
        // their own, when the launch is refused before it has a record).
        let learner = try await Learners.resolve(launch, store: identities, recent: recentLearners, now: now)
        let identity = learner.identity
        let job = await provisioning?.job(
            for: identity, registrationID: launch.registration.id, roles: token.roles ?? [], logger: trace.logger, now: now)

        // The lab comes from the custom claim `labid` (Skillable's own LTI convention).
        let rawLabID = token.custom?["labid"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let labID = Int(rawLabID), labID > 0, rawLabID.count <= 10 else {
            try await storeAlone(learner, job: job, trace: trace)
            var record = recorder.begin(
                trace, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
                learnerID: identity.id, subject: identity.subject, resourceLinkID: token.resourceLink?.id,
                contextID: token.context?.id, labID: token.custom?["labid"], gradebook: LaunchGradebook(token.agsEndpoint),
                now: now)
            return await recorder.refuse(&record, LaunchFailure(rawLabID.isEmpty ? .labIDMissing : .labIDInvalid), trace: trace)
        }
        let options: PlatformLaunchOptions
        do {
            options = try await launchOptions(launch.registration.id)
        } catch {
            try? await storeAlone(learner, job: job, trace: trace)
            throw error
        }
        let session = LabSession(
            learnerID: identity.id, subject: identity.subject, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
            resourceLinkID: token.resourceLink?.id, contextID: token.context?.id, agsLineItem: token.agsEndpoint?.lineItem,
            agsLineItems: token.agsEndpoint?.lineItems, agsScopes: token.agsEndpoint?.scope,
            request: Self.request(labID: labID, learnerID: identity.id, token: token, registrationID: launch.registration.id, options: options),
            linkTitle: token.resourceLink?.title, returnURL: token.launchPresentation?.returnURL)
        let record = pendingRecord(session, trace: trace, now: now)
        if learner.needsStoring {
            // A learner who cannot be stored stops the launch, as before any lab is asked for.
            try await recorder.markPending(record, learner: identity, job: job)
            learner.stored(in: recentLearners)
            if let job { provisioning?.queued(job, logger: trace.logger) }
        } else if await recorder.markPending(record, job: job, trace: trace), let job {
            // Neither the pending record nor the job may stop the lab: a failure is logged.
            provisioning?.queued(job, logger: trace.logger)
        }
        return await start(session, record: record, trace: trace, now: now)
    }

    /// Stores the launch's learner and queues their SkyPrep job each on its own, for a launch that ends before it has a
    /// record of its own to write them with.
    private func storeAlone(_ learner: LearnerResolution, job: JobToQueue?, trace: LaunchTrace) async throws {
        if learner.needsStoring {
            _ = try await identities.upsertIdentity(learner.identity)
            learner.stored(in: recentLearners)
        }
        if let job { await provisioning?.enqueue(job, logger: trace.logger) }
    }

    /// Starts (or joins) the lab of `session`; used by "Launch the new lab" on the too-many-labs page.
    func start(_ session: LabSession, trace: LaunchTrace, now: Date) async -> LaunchOutcome {
        let record = pendingRecord(session, trace: trace, now: now)
        await recorder.markPending(record, trace: trace)
        return await start(session, record: record, trace: trace, now: now)
    }

    /// The launch record of `session`, pending.
    private func pendingRecord(_ session: LabSession, trace: LaunchTrace, now: Date) -> LaunchRecord {
        recorder.begin(
            trace, registrationID: session.registrationID, deploymentID: session.deploymentID,
            learnerID: session.learnerID, subject: session.subject, resourceLinkID: session.resourceLinkID,
            contextID: session.contextID, labID: String(session.request.labID), gradebook: session.gradebook, now: now)
    }

    /// Starts (or joins) the lab of `session`, whose launch is recorded as pending in `record`.
    private func start(_ session: LabSession, record: LaunchRecord, trace: LaunchTrace, now: Date) async -> LaunchOutcome {
        var record = record
        var (start, joined) = await coordinator.start(session.request)
        var target: String?
        if case .started(_, let instanceID?) = start, joined {
            // A click that joined another's start gets its own fresh access URL (lab URLs may be single-use);
            // when that lab no longer runs (ended or saved meanwhile), this click launches anew.
            target = try? await skillable.labAccessURL(labInstanceID: instanceID).url
            if target == nil {
                await coordinator.forget(session.request)
                (start, joined) = await coordinator.start(session.request)
            }
        }
        switch start {
        case .started(let url, let instanceID):
            record.vendorResultCode = 1
            record.labInstanceID = instanceID.map(String.init)
            return await redirect(to: joined ? (target ?? url) : url, outcome: joined ? .joinedLaunch : .launched, record: &record, trace: trace)
        case .existing(let instanceID):
            record.labInstanceID = String(instanceID)
            guard let url = try? await skillable.labAccessURL(labInstanceID: instanceID).url else {
                return await recorder.refuse(&record, LaunchFailure(.skillableUnavailable), trace: trace)
            }
            return await redirect(to: url, outcome: .recoveredRunning, record: &record, trace: trace)
        case .deferred(let url):
            return await redirect(to: url, outcome: .deferredRedirect, record: &record, trace: trace)
        case .refused(let response):
            record.vendorResultCode = response.result.code
            record.labInstanceID = response.labInstanceID.map(String.init)
            trace.logger.notice(
                "skillable refused the launch",
                metadata: [
                    "skillable.result": "\(response.result.code)", "skillable.error": "\(response.error ?? "-")",
                    "lab.id": "\(session.request.labID)",
                ])
            switch response.result {
            case .userTooManyActiveLabs:
                await recorder.finish(&record, outcome: .refused(.skillableResult(response.result)), trace: trace)
                return await choices.choices(session, token: nil, now: now)
            case .userHasSavedInstance:
                if let saved = try? await skillable.userRunningAndSavedLabs(userID: session.learnerID).savedLabs
                    .last(where: { $0.labProfileID == session.request.labID }),
                    let url = try? await skillable.resume(labInstanceID: saved.labInstanceID).url
                {
                    record.labInstanceID = String(saved.labInstanceID)
                    return await redirect(to: url, outcome: .resumedSaved, record: &record, trace: trace)
                }
                return await recorder.refuse(&record, LaunchFailure(.skillableResult(response.result)), trace: trace)
            default:
                let failure: LaunchFailure.Code =
                    await isNotLaunchable(labID: session.request.labID, result: response.result) ? .labUnavailable : .skillableResult(response.result)
                return await recorder.refuse(&record, LaunchFailure(failure), trace: trace)
            }
        case .unavailable(let error):
            return await recorder.refuse(&record, LaunchFailure(.skillableUnavailable, underlying: error), trace: trace)
        }
    }

    /// Whether a `Result` 0 (Skillable's general error) means the lab itself: its profile is not among the launchable
    /// ones (it does not exist, is disabled, or is not Complete). The API documents `Result` 0 only as "error", so the
    /// catalog decides, not the error's words; when the catalog cannot be read, the failure stays a general one.
    private func isNotLaunchable(labID: Int, result: SkillableLaunchResult) async -> Bool {
        guard result == .error, let catalog, let profiles = try? await catalog.launchableProfiles() else { return false }
        return !profiles.contains { $0.id == labID }
    }

    /// The redirect to `url` when the policy allows it (checklist "Launch" rule 12), recorded with `outcome`.
    private func redirect(to url: String, outcome: RecordedOutcome, record: inout LaunchRecord, trace: LaunchTrace) async -> LaunchOutcome {
        guard redirectPolicy.allows(url) else {
            return await recorder.refuse(
                &record, LaunchFailure(.labURLRefused, underlying: redirectPolicy.refusal(url, setting: "SKILLABLE_LAB_HOSTS")), trace: trace)
        }
        await recorder.finish(&record, outcome: outcome, trace: trace)
        return .redirect(url)
    }

    /// The Skillable `Launch` for this learner, lab and registration's options.
    static func request(
        labID: Int, learnerID: String, token: LTIIDToken, registrationID: String,
        options: PlatformLaunchOptions
    ) -> SkillableLaunchRequest {
        var variables: [String: String] = [:]
        if options.sendContextVariables {
            if let id = token.context?.id { variables["LtiContextId"] = id }
            if let title = token.context?.title { variables["LtiContextTitle"] = title }
            if let roles = token.roles, !roles.isEmpty { variables["LtiRoles"] = roles.joined(separator: ",") }
        }
        // `lang` from the registration, else the primary subtag of the launch's locale (Skillable's format is unconfirmed).
        let lang = options.lang ?? token.locale.flatMap { $0.split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map { $0.lowercased() } }
        return SkillableLaunchRequest(
            labID: labID, userID: learnerID, firstName: token.givenName, lastName: token.familyName, email: token.email,
            tag: options.sendTag ? "lti:\(registrationID):\(token.context?.id ?? "-")" : nil, regionID: options.regionID, lang: lang,
            maxActiveLabs: options.maxActiveLabs, maxSavedLabs: options.maxSavedLabs, durationMinutes: options.durationMinutes,
            variables: variables)
    }
}
