import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import Skillable

/// A learner's launch, carried by the deferred-launch page so that its actions (resume, end, launch the
/// new lab) act for that learner only.
struct LabSession: Sendable, Codable {
    var learnerID: String
    var subject: String
    var registrationID: String
    var deploymentID: String
    var resourceLinkID: String?
    var contextID: String?
    var agsLineItem: String?
    var request: SkillableLaunchRequest
}

/// Issues and checks lab-session tokens: signed with the tool's active key, short-lived, sent only in
/// form bodies (never URLs) — unguessable to another site, so they also protect the actions against
/// cross-site forgery. The learner id inside is what every action is checked against.
struct LabSessionTokens: Sendable {
    let toolKeys: ToolKeyService
    let lifetime: TimeInterval
    static let audience = "lti-gateway/lab-session"

    func issue(_ session: LabSession, now: Date) throws -> String {
        let data = try JSONEncoder().encode(session)
        let object = try JSONSerialization.jsonObject(with: data)
        guard let sessionClaims = object as? [String: any Sendable] else { throw SettingsError(message: "session not encodable") }
        return try toolKeys.signer.sign(claims: [
            "aud": Self.audience, "exp": Int(now.addingTimeInterval(lifetime).timeIntervalSince1970), "session": sessionClaims,
        ])
    }

    func verify(_ token: String?, now: Date) throws -> LabSession {
        struct Claims: Decodable { var aud: String; var exp: Double; var session: LabSession }
        guard let token, let payload = ToolTokenVerifier(ring: toolKeys.ring, now: now).payload(of: token, maxBytes: 16_384),
              let claims = try? JSONDecoder().decode(Claims.self, from: payload), claims.aud == Self.audience
        else {
            throw GatewayError(code: "lab_session_invalid", status: .badRequest, title: "Please open the lab again",
                               message: "This page is not valid. Go back to your course and open the lab again.")
        }
        guard now.timeIntervalSince1970 < claims.exp else {
            throw GatewayError(code: "lab_session_expired", status: .badRequest, title: "Please open the lab again",
                               message: "This page has expired. Go back to your course and open the lab again.")
        }
        return claims.session
    }
}

/// The deferred-launch page (Result 2: too many active labs) and its actions:
/// `POST /lti/labs` (list), `/lti/labs/resume`, `/lti/labs/end` (with confirmation), `/lti/labs/launch`.
struct LabSessionController: Sendable {
    let skillable: SkillableClient
    let tokens: LabSessionTokens
    let launcher: LabLauncher
    let pages: PageRenderer
    let redirectPolicy: LabRedirectPolicy
    let baseURL: String
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/lti/labs") { request, context in
            let (session, token, _) = try await self.read(request, context: context)
            return try await self.labsPage(session, token: token, message: nil, context: context)
        }
        router.post("/lti/labs/resume") { request, context in try await self.resume(request, context: context) }
        router.post("/lti/labs/end") { request, context in try await self.end(request, context: context) }
        router.post("/lti/labs/launch") { request, context in
            let (session, _, _) = try await self.read(request, context: context)
            return try await self.launcher.start(session, context: context, now: self.now())
        }
    }

    func labsPage(_ session: LabSession, token: String?, message: String?, context: GatewayRequestContext) async throws -> Response {
        try await LabSessionPage(skillable: skillable, tokens: tokens, pages: pages, baseURL: baseURL)
            .render(session, token: token, message: message, context: context, now: now())
    }

    private func read(_ request: Request, context: GatewayRequestContext) async throws -> (LabSession, String, [String: String]) {
        let form = FormParameters.parse(Substring(try await FormParameters.body(of: request, context: context)))
        let session = try tokens.verify(form["session"], now: now())
        return (session, form["session"] ?? "", form)
    }

    /// The instance named in the form, if it is one of this learner's labs (never another learner's).
    private func ownedLab(_ form: [String: String], session: LabSession) async throws -> (SkillableUserLab, saved: Bool) {
        guard let id = form["instance"].flatMap(Int64.init) else {
            throw GatewayError(code: "lab_instance_missing", status: .badRequest, title: "No lab was chosen", message: "Go back and choose a lab.")
        }
        let labs: SkillableUserLabs
        do {
            labs = try await skillable.userRunningAndSavedLabs(userID: session.learnerID)
        } catch {
            throw LabLauncher.unavailable(error)
        }
        if let lab = labs.runningLabs.first(where: { $0.labInstanceID == id }) { return (lab, false) }
        if let lab = labs.savedLabs.first(where: { $0.labInstanceID == id }) { return (lab, true) }
        throw GatewayError(code: "lab_instance_not_yours", status: .forbidden, title: "This lab is not available",
                           message: "This lab is not one of your running or saved labs (it may have ended). Go back to your course and open the lab again.")
    }

    /// Resume: a fresh single-use access URL for a running lab, `Resume` for a saved one.
    func resume(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let (session, _, form) = try await read(request, context: context)
        let (lab, saved) = try await ownedLab(form, session: session)
        let url: String?
        do {
            url = saved ? try await skillable.resume(labInstanceID: lab.labInstanceID).url
                        : try await skillable.labAccessURL(labInstanceID: lab.labInstanceID).url
        } catch {
            throw LabLauncher.unavailable(error)
        }
        guard let url, redirectPolicy.allows(url) else { throw LabLauncher.labURLRefused() }
        context.logger.info("lab resumed from the deferred-launch page", metadata: ["lab.instance": "\(lab.labInstanceID)", "lab.saved": "\(saved)"])
        return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }

    /// End: asks for confirmation, then cancels the lab and shows the list again.
    func end(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let (session, token, form) = try await read(request, context: context)
        let (lab, _) = try await ownedLab(form, session: session)
        let name = lab.labProfileName ?? "this lab"
        guard form["confirm"] == "yes" else {
            return pages.confirmEndPage(["title": "End \(name)?", "name": name, "base": baseURL, "session": token,
                                         "id": String(lab.labInstanceID)])
        }
        do {
            try await skillable.cancel(labInstanceID: lab.labInstanceID, note: "Ended by the learner from the LTI gateway")
        } catch {
            throw LabLauncher.unavailable(error)
        }
        context.logger.info("lab ended from the deferred-launch page", metadata: ["lab.instance": "\(lab.labInstanceID)"])
        return try await labsPage(session, token: token, message: "\(name) has ended.", context: context)
    }

    static func format(_ unixSeconds: Int64?) -> String {
        guard let unixSeconds else { return "—" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "d MMM yyyy, HH:mm 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixSeconds)))
    }
}

/// Renders the deferred-launch page: the learner's running and saved labs with Resume, End and
/// Launch the new lab.
struct LabSessionPage: Sendable {
    let skillable: SkillableClient
    let tokens: LabSessionTokens
    let pages: PageRenderer
    let baseURL: String

    func render(_ session: LabSession, token: String?, message: String?, context: GatewayRequestContext, now: Date) async throws -> Response {
        let labs: SkillableUserLabs
        do {
            labs = try await skillable.userRunningAndSavedLabs(userID: session.learnerID)
        } catch {
            throw LabLauncher.pageError(for: .userTooManyActiveLabs)
        }
        let token = try token ?? tokens.issue(session, now: now)
        func rows(_ list: [SkillableUserLab]) -> [[String: Any]] {
            list.map { lab in
                ["id": String(lab.labInstanceID), "name": lab.labProfileName ?? "Lab \(lab.labProfileID.map(String.init) ?? "")",
                 "start": LabSessionController.format(lab.start), "expires": LabSessionController.format(lab.expires),
                 "base": baseURL, "session": token]
            }
        }
        return pages.labsPage([
            "title": "You have too many labs running", "base": baseURL, "session": token, "message": message ?? "",
            "running": rows(labs.runningLabs), "saved": rows(labs.savedLabs),
            "hasRunning": !labs.runningLabs.isEmpty, "hasSaved": !labs.savedLabs.isEmpty, "reference": context.referenceID,
        ])
    }
}
