import Foundation
import GatewayStorage
import Logging
import Skillable

/// The too-many-labs page (Result 2: too many active labs) and its actions: list the learner's running
/// and saved labs, resume one, end one (after a confirmation). Each action is checked against Skillable's
/// own list of that learner's labs, so nobody can see or act on another learner's labs.
struct LabChoices: Sendable {
    let skillable: any SkillableLabService
    let sessions: LabSessions
    let redirectPolicy: LabRedirectPolicy

    /// The session a page's form carries; throws ``LaunchFailure`` when its handle is not valid.
    func session(token: String?, now: Date) async throws -> LabSession {
        try await sessions.session(token, now: now)
    }

    /// The session a page's form carries, for its one launch; throws ``LaunchFailure`` when its handle is not valid or
    /// its launch was used.
    func sessionForLaunch(token: String?, now: Date) async throws -> LabSession {
        try await sessions.useLaunch(token, now: now)
    }

    /// Gives a page's launch back after a use that started no lab.
    func releaseLaunch(token: String?) async { await sessions.releaseLaunch(token) }

    /// The learner's labs to choose from, with a token for the page's actions (`token`, or a new one).
    func choices(_ session: LabSession, token: String?, ended: String? = nil, now: Date) async -> LaunchOutcome {
        guard let labs = try? await skillable.userRunningAndSavedLabs(userID: session.learnerID) else {
            return .refused(LaunchFailure(.skillableResult(.userTooManyActiveLabs)))
        }
        do {
            let handle: String
            if let token { handle = token } else { handle = try await sessions.open(session, now: now) }
            return .labChoice(
                LabChoice(
                    token: handle, running: labs.runningLabs, saved: labs.savedLabs, ended: ended, labName: session.labName,
                    listedAt: now))
        } catch {
            let unavailable = (error as? StorageError)?.code == .unavailable
            return .refused(LaunchFailure(unavailable ? .storageUnavailable : .gatewayFault, underlying: error))
        }
    }

    /// Resume: a fresh single-use access URL for a running lab, `Resume` for a saved one.
    func resume(_ session: LabSession, instance: String?, trace: LaunchTrace) async -> LaunchOutcome {
        let owned: (lab: SkillableUserLab, saved: Bool)
        switch await ownedLab(instance, session: session) {
        case .success(let found): owned = found
        case .failure(let failure): return .refused(failure)
        }
        let url: String?
        do {
            url =
                owned.saved
                ? try await skillable.resume(labInstanceID: owned.lab.labInstanceID).url
                : try await skillable.labAccessURL(labInstanceID: owned.lab.labInstanceID).url
        } catch {
            return .refused(LaunchFailure(.skillableUnavailable, underlying: error))
        }
        guard let url, redirectPolicy.allows(url) else { return .refused(LaunchFailure(.labURLRefused)) }
        trace.logger.info(
            "lab resumed from the too-many-labs page",
            metadata: ["lab.instance": "\(owned.lab.labInstanceID)", "lab.saved": "\(owned.saved)"])
        return .redirect(url)
    }

    /// End: asks for confirmation (unless `confirmed`), then cancels the lab and lists the labs again.
    func end(_ session: LabSession, token: String, instance: String?, confirmed: Bool, trace: LaunchTrace, now: Date) async -> LaunchOutcome {
        let lab: SkillableUserLab
        switch await ownedLab(instance, session: session) {
        case .success(let found): lab = found.lab
        case .failure(let failure): return .refused(failure)
        }
        guard confirmed else { return .confirmEnd(LabEndConfirmation(token: token, lab: lab)) }
        do {
            try await skillable.cancel(labInstanceID: lab.labInstanceID, note: "Ended by the learner from the LTI gateway")
        } catch {
            return .refused(LaunchFailure(.skillableUnavailable, underlying: error))
        }
        trace.logger.info("lab ended from the too-many-labs page", metadata: ["lab.instance": "\(lab.labInstanceID)"])
        return await choices(session, token: token, ended: lab.labProfileName ?? "Your lab", now: now)
    }

    /// The instance `instance` names, if it is one of this learner's labs (never another learner's).
    private func ownedLab(_ instance: String?, session: LabSession) async -> Result<(lab: SkillableUserLab, saved: Bool), LaunchFailure> {
        guard let id = instance.flatMap(Int64.init) else { return .failure(LaunchFailure(.labInstanceMissing)) }
        let labs: SkillableUserLabs
        do {
            labs = try await skillable.userRunningAndSavedLabs(userID: session.learnerID)
        } catch {
            return .failure(LaunchFailure(.skillableUnavailable, underlying: error))
        }
        if let lab = labs.runningLabs.first(where: { $0.labInstanceID == id }) { return .success((lab, false)) }
        if let lab = labs.savedLabs.first(where: { $0.labInstanceID == id }) { return .success((lab, true)) }
        return .failure(LaunchFailure(.labInstanceNotYours))
    }
}
