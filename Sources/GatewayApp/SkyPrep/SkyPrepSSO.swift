import Foundation
import GatewayStorage
import LTICore
import Logging
import SkyPrep

/// Signs a learner straight into SkyPrep (SPEC "SSO into SkyPrep"): the learner's SkyPrep user is
/// provisioned first (so that it carries our learner id and role, and an email that belongs to another
/// identity is never signed into), optionally enrolled in the launch's course, then `get_login_key` with
/// `autocreate`, a one-time link and — with group sync — the LMS course as a group; then SkyPrep's URL.
///
/// Only into an account this gateway created or linked for this identity: the email signed into is that
/// account's, never merely the one the LMS sends (which may be a SkyPrep administrator's). With provisioning off
/// for the platform, a learner without such an account gets a page that says so.
struct SkyPrepSSO: Sendable {
    let identities: any IdentityStore
    let accounts: any SkyPrepAccountStore
    let recorder: LaunchRecorder
    let registrations: RegistrationCache
    let clients: SkyPrepAccountClients
    let provisioning: SkyPrepProvisioningQueue
    let redirectPolicy: LabRedirectPolicy
    /// SKYPREP_GROUP_SYNC, for registrations that do not set their own.
    let defaultGroupSync: Bool
    /// Learners this sign-in stored lately (a repeated sign-in writes no learner).
    var recentLearners = RecentLearners()

    /// The longest a sign-in call waits for a free slot of the SkyPrep rate limit.
    static let maxRateLimitWait = Duration.seconds(5)

    /// Whether the launch asks for SkyPrep instead of a lab (`destination=skyprep` or `skyprep_course_id`).
    static func isWanted(by token: LTIIDToken) -> Bool {
        token.custom?["destination"]?.lowercased() == "skyprep" || !(token.custom?["skyprep_course_id"] ?? "").isEmpty
    }

    func launch(_ launch: ValidatedLaunch, trace: LaunchTrace, now: Date) async throws -> LaunchOutcome {
        let token = launch.token
        let identity = try await Learners.upsert(launch, store: identities, recent: recentLearners, now: now)
        var record = recorder.begin(
            trace, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
            learnerID: identity.id, subject: identity.subject, resourceLinkID: token.resourceLink?.id,
            contextID: token.context?.id, labID: nil, gradebook: LaunchGradebook(token.agsEndpoint), now: now)
        let options = try await registrations.skyPrepOptions(registrationID: launch.registration.id)
        let request = SkyPrepProvisioningRequest(identity: identity, registrationID: launch.registration.id, roles: token.roles ?? [])
        // SkyPrep keys accounts by email: without one (and no synthetic rule) there is no account to sign into.
        guard request.email(options: options) != nil else {
            return await recorder.refuse(&record, LaunchFailure(.skyPrepEmailMissing), trace: trace)
        }
        // Whoever edits the LMS link sets skyprep_course_id: only the platform's allowed courses (`;` lists several).
        let courses = (token.custom?["skyprep_course_id"] ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let allowed = Set(options.allowedCourseIDs ?? [])
        if options.enrolOnSSO, let refused = courses.first(where: { !allowed.contains($0) }) {
            trace.logger.notice("SkyPrep sign-in refused: course not allowed for this platform", metadata: ["skyprep.course": "\(refused)"])
            return await recorder.refuse(&record, LaunchFailure(.skyPrepCourseNotAllowed), trace: trace)
        }
        let client: SkyPrepClient
        let url: String
        do {
            // The learner's browser waits: sign-in calls wait at most a few seconds for SkyPrep's rate limit.
            client = try clients.client(for: options).waitingAtMost(Self.maxRateLimitWait)
            let account =
                options.provisioning
                ? try await provisioning.provisionNow(request) : try await accounts.skyPrepAccount(learnerID: identity.id)
            guard let account else {
                trace.logger.notice("SkyPrep sign-in refused: no SkyPrep account linked to this learner", metadata: ["gw.learner": "\(identity.id)"])
                return await recorder.refuse(&record, LaunchFailure(.skyPrepAccountNotLinked), trace: trace)
            }
            let signInEmail = account.email
            if !courses.isEmpty, options.enrolOnSSO {
                do {
                    try await client.enrolUser(email: signInEmail, courseIDs: courses)
                } catch {
                    // The learner may be enrolled already or the course id may be wrong: SkyPrep still opens.
                    trace.logger.warning(
                        "SkyPrep enrolment failed", metadata: ["skyprep.course": "\(courses.joined(separator: ";"))", "error": "\(error)"])
                }
            }
            // Groups made from course titles carry the platform's prefix, so no title joins a group someone else made.
            let prefix = options.groupPrefix ?? PlatformSkyPrepOptions.defaultGroupPrefix
            let groups =
                (options.groupSync ?? defaultGroupSync) ? [token.context?.title].compactMap { $0 }.filter { !$0.isEmpty }.map { prefix + $0 } : []
            url = try await client.loginURL(email: signInEmail, firstName: request.firstName, lastName: request.lastName, groups: groups)
        } catch SkyPrepProvisioningError.emailInUse, SkyPrepProvisioningError.privilegedAccount {
            return await recorder.refuse(&record, LaunchFailure(.skyPrepEmailInUse), trace: trace)
        } catch {
            return await recorder.refuse(&record, LaunchFailure(.skyPrepUnavailable, underlying: error), trace: trace)
        }
        let accountHost = url.lowercased().hasPrefix("https://") && URLComponents(string: url)?.host?.lowercased() == options.account?.lowercased()
        guard redirectPolicy.allows(url) || accountHost else {
            return await recorder.refuse(
                &record, LaunchFailure(.skyPrepURLRefused, underlying: redirectPolicy.refusal(url, setting: "SKYPREP_LOGIN_HOSTS")), trace: trace)
        }
        await recorder.finish(&record, outcome: .skyPrepSignIn, trace: trace)
        return .redirect(url)
    }
}
