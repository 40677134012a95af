import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import Metrics
import SkyPrep

/// Signs a learner straight into SkyPrep (SPEC "SSO into SkyPrep"): `get_login_key` with `autocreate`
/// (just-in-time account), a one-time link, and — with SKYPREP_GROUP_SYNC — the LMS course as a group;
/// then `303` to the URL SkyPrep returns.
struct SkyPrepSSO: Sendable {
    let store: any GatewayStore
    let client: SkyPrepClient
    let redirectPolicy: LabRedirectPolicy
    let groupSync: Bool

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
        // SkyPrep keys accounts by email: without one there is no account to sign into.
        guard let email = token.email, email.contains("@") else {
            await finish(&record, outcome: "skyprep_email_missing", context: context)
            throw GatewayError(code: "skyprep_email_missing", status: .badRequest, title: "Your LMS does not share your email",
                               message: "SkyPrep accounts are identified by email address. Ask your LMS administrator to share learners' email with this tool.")
        }
        var parameters = ["user_email": email, "first_name": token.givenName ?? "", "last_name": token.familyName ?? "",
                          "autocreate": "1", "key_type": "otl"]
        if groupSync, let title = token.context?.title, !title.isEmpty {
            parameters["user_groups"] = title.replacingOccurrences(of: ";", with: ",") // `;` separates groups
            parameters["autocreate_user_groups"] = "1"
        }
        let answer: [String: any Sendable]
        do {
            answer = try await client.call("get_login_key", parameters)
        } catch {
            await finish(&record, outcome: "skyprep_unavailable", context: context)
            throw GatewayError(code: "skyprep_unavailable", status: .badGateway, title: "SkyPrep is not available",
                               message: "SkyPrep, the training platform, did not answer. Please try again in a few minutes.", underlying: error)
        }
        guard let url = answer["url"] as? String, redirectPolicy.allows(url) else {
            await finish(&record, outcome: "skyprep_url_refused", context: context)
            throw GatewayError(code: "skyprep_url_refused", status: .badGateway, title: "SkyPrep could not be opened",
                               message: "SkyPrep answered with an address this gateway does not send learners to. An administrator has been told.")
        }
        await finish(&record, outcome: "skyprep_sso", context: context)
        return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }

    private func finish(_ record: inout LaunchRecord, outcome: String, context: GatewayRequestContext) async {
        record.outcome = outcome
        Counter(label: "lti_launches_total", dimensions: [("outcome", outcome)]).increment()
        do {
            try await store.recordLaunch(record)
        } catch {
            context.logger.error("launch record not stored", metadata: ["gw.launch.outcome": "\(outcome)", "error": "\(error)"])
        }
        context.logger.info("launch", metadata: ["gw.launch.outcome": "\(outcome)", "lti.registration": "\(record.registrationID)"])
    }
}
