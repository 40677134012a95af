import Crypto
import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore
import Logging
import Metrics
import Skillable

/// Turns a validated resource-link launch into a Skillable lab launch and a redirect into the lab.
///
/// The learner's Skillable `userid` is an opaque id derived from (issuer, sub), never the email
/// (SPEC "Launch" step 3). Every launch is recorded with its outcome, whatever the outcome.
struct LabLauncher: Sendable {
    let store: any GatewayStore
    let skillable: SkillableClient
    let redirectPolicy: LabRedirectPolicy

    func launch(_ launch: ValidatedLaunch, context: GatewayRequestContext, now: Date) async throws -> Response {
        let token = launch.token
        let subject = token.subject ?? ""
        let identity = try await store.upsertIdentity(LearnerIdentity(
            id: Self.learnerID(issuer: launch.registration.issuer, subject: subject), issuer: launch.registration.issuer,
            subject: subject, givenName: token.givenName, familyName: token.familyName, email: token.email,
            firstSeen: now, lastSeen: now))
        var record = LaunchRecord(
            id: context.referenceID, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
            learnerID: identity.id, subject: subject, messageType: launch.messageType.rawValue,
            resourceLinkID: token.resourceLink?.id, contextID: token.context?.id, labID: token.custom?["labid"],
            outcome: "pending", vendorResultCode: nil, labInstanceID: nil, agsLineItem: token.agsEndpoint?.lineItem, createdAt: now)

        // The lab comes from the custom claim `labid` (Skillable's own LTI convention).
        guard let rawLabID = token.custom?["labid"]?.trimmingCharacters(in: .whitespaces), !rawLabID.isEmpty else {
            try await finish(&record, outcome: "labid_missing", context: context)
            throw GatewayError(code: "labid_missing", status: .badRequest, title: "This link does not name a lab",
                               message: "The LMS link has no custom parameter labid. Ask your instructor or LMS administrator to set labid=<Skillable lab id> on this link.")
        }
        guard let labID = Int(rawLabID), labID > 0, rawLabID.count <= 10 else {
            try await finish(&record, outcome: "labid_invalid", context: context)
            throw GatewayError(code: "labid_invalid", status: .badRequest, title: "This link names an invalid lab",
                               message: "The LMS link's labid is not a Skillable lab number. Ask your instructor to correct the link.")
        }

        let response: SkillableLaunchResponse
        do {
            response = try await skillable.launch(SkillableLaunchRequest(
                labID: labID, userID: identity.id, firstName: token.givenName, lastName: token.familyName, email: token.email))
        } catch {
            try await finish(&record, outcome: "skillable_unavailable", context: context)
            throw GatewayError(code: "skillable_unavailable", status: .badGateway, title: "The lab service is not answering",
                               message: "Skillable, which runs the labs, did not answer. No lab was started. Please try again in a few minutes.",
                               underlying: error)
        }
        record.vendorResultCode = response.result.code
        record.labInstanceID = response.labInstanceID.map(String.init)

        guard response.result == .success else {
            try await finish(&record, outcome: "skillable_result_\(response.result.code)", context: context)
            context.logger.notice("skillable refused the launch", metadata: [
                "skillable.result": "\(response.result.code)", "skillable.error": "\(response.error ?? "-")", "lab.id": "\(labID)",
            ])
            throw Self.pageError(for: response.result)
        }
        guard let url = response.url, redirectPolicy.allows(url) else {
            try await finish(&record, outcome: "lab_url_refused", context: context)
            throw GatewayError(code: "lab_url_refused", status: .badGateway, title: "The lab could not be opened",
                               message: "The lab service answered with an address this gateway does not send learners to. An administrator has been told.")
        }
        try await finish(&record, outcome: "launched", context: context)
        return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }

    private func finish(_ record: inout LaunchRecord, outcome: String, context: GatewayRequestContext) async throws {
        record.outcome = outcome
        Counter(label: "lti_launches_total", dimensions: [("outcome", outcome.hasPrefix("skillable_result_") ? "skillable_refused" : outcome)]).increment()
        do {
            try await store.recordLaunch(record)
        } catch {
            // The lab may already run; the learner still goes in, and the operator sees why the record is missing.
            context.logger.error("launch record not stored", metadata: ["gw.launch.outcome": "\(outcome)", "error": "\(error)"])
        }
        context.logger.info("launch", metadata: [
            "gw.launch.outcome": "\(outcome)", "lti.registration": "\(record.registrationID)", "lti.deployment": "\(record.deploymentID)",
            "lab.id": "\(record.labID ?? "-")", "lab.instance": "\(record.labInstanceID ?? "-")",
        ])
    }

    /// A stable, opaque learner id: `lti-` and 32 hex digits of SHA-256(issuer NUL sub).
    static func learnerID(issuer: String, subject: String) -> String {
        let digest = SHA256.hash(data: Data((issuer + "\u{0}" + subject).utf8))
        return "lti-" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// The learner's page for a Skillable result other than success, by class of cause.
    static func pageError(for result: SkillableLaunchResult) -> GatewayError {
        let code = "skillable_result_\(result.code)"
        switch result.cause {
        case .capacity:
            return GatewayError(code: code, status: .serviceUnavailable, title: "No lab capacity right now",
                                message: "The lab service has no room to start this lab at the moment. Please try again in a few minutes.")
        case .limits:
            return GatewayError(code: code, status: .conflict, title: "Too many labs running",
                                message: "A limit on running labs has been reached. Close a lab you no longer need, or try again later.")
        case .savedLab:
            return GatewayError(code: code, status: .conflict, title: "You have a saved copy of this lab",
                                message: "You saved this lab earlier. Resume it from the lab service, or ask your instructor for help.")
        case .notAvailable:
            return GatewayError(code: code, status: .serviceUnavailable, title: "This lab is not available",
                                message: "This lab cannot be started through the LMS right now. Please tell your instructor.")
        case .invalidRequest:
            return GatewayError(code: code, status: .badGateway, title: "The lab could not be started",
                                message: "The lab service refused the request for this lab. Please tell your instructor; the lab link may be wrong.")
        case .needsInformation:
            return GatewayError(code: code, status: .conflict, title: "More information needed",
                                message: "The lab service needs more information about you before this lab can start. Please contact your instructor.")
        case .failed, .launched:
            return GatewayError(code: code, status: .badGateway, title: "The lab could not be started",
                                message: "The lab service could not start this lab. Please try again; if it keeps happening, tell your instructor.")
        }
    }
}

/// Where the gateway will send a learner's browser after a lab launch (checklist "Launch" rule 12: no open redirect).
struct LabRedirectPolicy: Sendable {
    /// Exact `host[:port]` authorities: the gateway's own and the Skillable API's.
    let exactAuthorities: Set<String>
    /// Host suffixes such as `.labondemand.com` (https only).
    let hostSuffixes: [String]
    /// The built-in sandbox's loopback authority, known once the server listens.
    let sandboxAuthority: (@Sendable () -> String?)?

    func allows(_ url: String) -> Bool {
        guard let authority = URLAuthority(url) else { return false }
        if exactAuthorities.contains(authority) || authority == sandboxAuthority?() { return true }
        guard url.lowercased().hasPrefix("https://"), let host = URLComponents(string: url)?.host?.lowercased() else { return false }
        return hostSuffixes.contains { suffix in
            suffix.hasPrefix(".") ? (host.hasSuffix(suffix) || host == String(suffix.dropFirst())) : host == suffix
        }
    }
}
