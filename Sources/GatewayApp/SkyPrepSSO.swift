import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import SkyPrep

/// Signs a learner straight into SkyPrep (SPEC "SSO into SkyPrep"): the learner's SkyPrep user is
/// provisioned first (so that it carries our learner id and role, and an email that belongs to another
/// identity is never signed into), optionally enrolled in the launch's course, then `get_login_key` with
/// `autocreate`, a one-time link and — with group sync — the LMS course as a group; `303` to SkyPrep's URL.
struct SkyPrepSSO: Sendable {
    let store: any GatewayStore
    let registrations: RegistrationCache
    let clients: SkyPrepAccountClients
    let provisioning: SkyPrepProvisioningQueue
    let redirectPolicy: LabRedirectPolicy
    /// SKYPREP_GROUP_SYNC, for registrations that do not set their own.
    let defaultGroupSync: Bool

    /// Whether the launch asks for SkyPrep instead of a lab (`destination=skyprep` or `skyprep_course_id`).
    static func isWanted(by token: LTIIDToken) -> Bool {
        token.custom?["destination"]?.lowercased() == "skyprep" || !(token.custom?["skyprep_course_id"] ?? "").isEmpty
    }

    func launch(_ launch: ValidatedLaunch, context: GatewayRequestContext, now: Date) async throws -> Response {
        let token = launch.token
        let identity = try await LabLauncher.upsertLearner(launch, store: store, now: now)
        var record = LabLauncher.record(context: context, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
                                        learnerID: identity.id, subject: identity.subject, resourceLinkID: token.resourceLink?.id,
                                        contextID: token.context?.id, labID: nil, agsLineItem: token.agsEndpoint?.lineItem, now: now)
        let options = try await registrations.skyPrepOptions(registrationID: launch.registration.id)
        let request = SkyPrepProvisioningRequest(identity: identity, registrationID: launch.registration.id, roles: token.roles ?? [])
        // SkyPrep keys accounts by email: without one (and no synthetic rule) there is no account to sign into.
        guard let email = request.email(options: options) else {
            await LabLauncher.finish(&record, outcome: "skyprep_email_missing", store: store, context: context)
            throw GatewayError(code: "skyprep_email_missing", status: .badRequest, title: "Your LMS does not share your email",
                               message: "SkyPrep accounts are identified by email address. Ask your LMS administrator to share learners' email with this tool.")
        }
        let client: SkyPrepClient
        let url: String
        do {
            client = try clients.client(for: options)
            var signInEmail = email
            if options.provisioning, let account = try await provisioning.provisionNow(request) {
                signInEmail = account.email
            }
            if let course = token.custom?["skyprep_course_id"], !course.isEmpty, options.enrolOnSSO {
                do {
                    try await client.enrolUser(email: signInEmail, courseIDs: [course])
                } catch {
                    // The learner may be enrolled already or the course id may be wrong: SkyPrep still opens.
                    context.logger.warning("SkyPrep enrolment failed", metadata: ["skyprep.course": "\(course)", "error": "\(error)"])
                }
            }
            let groups = (options.groupSync ?? defaultGroupSync) ? [token.context?.title].compactMap { $0 }.filter { !$0.isEmpty } : []
            url = try await client.loginURL(email: signInEmail, firstName: request.firstName, lastName: request.lastName, groups: groups)
        } catch SkyPrepProvisioningError.emailInUse {
            await LabLauncher.finish(&record, outcome: "skyprep_email_in_use", store: store, context: context)
            throw GatewayError(code: "skyprep_email_in_use", status: .conflict, title: "Your email belongs to another SkyPrep account",
                               message: "SkyPrep already has an account with your email address that is not linked to your LMS account. An administrator can link them.")
        } catch {
            await LabLauncher.finish(&record, outcome: "skyprep_unavailable", store: store, context: context)
            throw GatewayError(code: "skyprep_unavailable", status: .badGateway, title: "SkyPrep is not available",
                               message: "SkyPrep, the training platform, did not answer. Please try again in a few minutes.", underlying: error)
        }
        let accountHost = url.lowercased().hasPrefix("https://") && URLComponents(string: url)?.host?.lowercased() == options.account?.lowercased()
        guard redirectPolicy.allows(url) || accountHost else {
            await LabLauncher.finish(&record, outcome: "skyprep_url_refused", store: store, context: context)
            throw GatewayError(code: "skyprep_url_refused", status: .badGateway, title: "SkyPrep could not be opened",
                               message: "SkyPrep answered with an address this gateway does not send learners to. An administrator has been told.")
        }
        await LabLauncher.finish(&record, outcome: "skyprep_sso", store: store, context: context)
        return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }
}
