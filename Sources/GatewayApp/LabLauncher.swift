import Crypto
import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore
import Logging
import Metrics
import Skillable

/// Turns a validated resource-link launch into a Skillable lab launch and a redirect into the lab, and
/// handles every other outcome: the deferred-launch page (Result 2), resuming a saved lab (Result 6),
/// a deferred-launch URL, a page per class of cause, outages (via ``LaunchCoordinator``).
///
/// The learner's Skillable `userid` is an opaque id derived from (issuer, sub), never the email
/// (SPEC "Launch" step 3). Every launch is recorded with its outcome, whatever the outcome.
struct LabLauncher: Sendable {
    let store: any GatewayStore
    let skillable: SkillableClient
    let coordinator: LaunchCoordinator
    let redirectPolicy: LabRedirectPolicy
    let sessionTokens: LabSessionTokens
    let pages: PageRenderer
    let baseURL: String
    /// Queues the learner's SkyPrep provisioning; the lab never waits for SkyPrep.
    let provisioning: SkyPrepProvisioningQueue?
    /// Registrations' launch options, cached.
    let registrations: RegistrationCache

    func launch(_ launch: ValidatedLaunch, context: GatewayRequestContext, now: Date) async throws -> Response {
        let token = launch.token
        let identity = try await Self.upsertLearner(launch, store: store, now: now)
        let subject = identity.subject
        await provisioning?.launched(identity, registrationID: launch.registration.id, roles: token.roles ?? [], logger: context.logger)

        // The lab comes from the custom claim `labid` (Skillable's own LTI convention).
        let rawLabID = token.custom?["labid"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let labID = Int(rawLabID), labID > 0, rawLabID.count <= 10 else {
            let missing = rawLabID.isEmpty
            var record = Self.record(context: context, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
                                     learnerID: identity.id, subject: subject, resourceLinkID: token.resourceLink?.id,
                                     contextID: token.context?.id, labID: token.custom?["labid"], agsLineItem: token.agsEndpoint?.lineItem, now: now)
            await finish(&record, outcome: missing ? "labid_missing" : "labid_invalid", context: context)
            if missing {
                throw GatewayError(code: "labid_missing", status: .badRequest, title: "This link does not name a lab",
                                   message: "The LMS link has no custom parameter labid. Ask your instructor or LMS administrator to set labid=<Skillable lab id> on this link.")
            }
            throw GatewayError(code: "labid_invalid", status: .badRequest, title: "This link names an invalid lab",
                               message: "The LMS link's labid is not a Skillable lab number. Ask your instructor to correct the link.")
        }
        let options = try await registrations.launchOptions(registrationID: launch.registration.id)
        let session = LabSession(
            learnerID: identity.id, subject: subject, registrationID: launch.registration.id, deploymentID: launch.deploymentID,
            resourceLinkID: token.resourceLink?.id, contextID: token.context?.id, agsLineItem: token.agsEndpoint?.lineItem,
            request: Self.request(labID: labID, learnerID: identity.id, token: token, registrationID: launch.registration.id, options: options))
        return try await start(session, context: context, now: now)
    }

    /// Starts (or joins) the lab of `session` and answers the learner; used by launches and by
    /// "Launch the new lab" on the deferred-launch page.
    func start(_ session: LabSession, context: GatewayRequestContext, now: Date) async throws -> Response {
        var record = Self.record(context: context, registrationID: session.registrationID, deploymentID: session.deploymentID,
                                 learnerID: session.learnerID, subject: session.subject, resourceLinkID: session.resourceLinkID,
                                 contextID: session.contextID, labID: String(session.request.labID), agsLineItem: session.agsLineItem, now: now)
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
            return try await redirect(to: joined ? (target ?? url) : url, outcome: joined ? "joined_launch" : "launched",
                                      record: &record, context: context)
        case .existing(let instanceID):
            record.labInstanceID = String(instanceID)
            guard let url = try? await skillable.labAccessURL(labInstanceID: instanceID).url else {
                await finish(&record, outcome: "skillable_unavailable", context: context)
                throw Self.unavailable(nil)
            }
            return try await redirect(to: url, outcome: "recovered_running", record: &record, context: context)
        case .deferred(let url):
            return try await redirect(to: url, outcome: "deferred_redirect", record: &record, context: context)
        case .refused(let response):
            record.vendorResultCode = response.result.code
            record.labInstanceID = response.labInstanceID.map(String.init)
            context.logger.notice("skillable refused the launch", metadata: [
                "skillable.result": "\(response.result.code)", "skillable.error": "\(response.error ?? "-")", "lab.id": "\(session.request.labID)",
            ])
            switch response.result {
            case .userTooManyActiveLabs:
                await finish(&record, outcome: "skillable_result_2", context: context)
                return try await LabSessionPage(skillable: skillable, tokens: sessionTokens, pages: pages, baseURL: baseURL)
                    .render(session, token: nil, message: nil, context: context, now: now)
            case .userHasSavedInstance:
                if let saved = try? await skillable.userRunningAndSavedLabs(userID: session.learnerID).savedLabs
                    .last(where: { $0.labProfileID == session.request.labID }),
                   let url = try? await skillable.resume(labInstanceID: saved.labInstanceID).url {
                    record.labInstanceID = String(saved.labInstanceID)
                    return try await redirect(to: url, outcome: "resumed_saved", record: &record, context: context)
                }
                await finish(&record, outcome: "skillable_result_6", context: context)
                throw Self.pageError(for: response.result)
            default:
                await finish(&record, outcome: "skillable_result_\(response.result.code)", context: context)
                throw Self.pageError(for: response.result)
            }
        case .unavailable(let error):
            await finish(&record, outcome: "skillable_unavailable", context: context)
            throw Self.unavailable(error)
        }
    }

    private func redirect(to url: String, outcome: String, record: inout LaunchRecord, context: GatewayRequestContext) async throws -> Response {
        guard redirectPolicy.allows(url) else {
            await finish(&record, outcome: "lab_url_refused", context: context)
            throw Self.labURLRefused()
        }
        await finish(&record, outcome: outcome, context: context)
        return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }

    private func finish(_ record: inout LaunchRecord, outcome: String, context: GatewayRequestContext) async {
        await Self.finish(&record, outcome: outcome, store: store, context: context)
    }

    /// Sets the launch's outcome, counts it, records it and logs it — for every launch, whatever its destination.
    static func finish(_ record: inout LaunchRecord, outcome: String, store: any GatewayStore, context: GatewayRequestContext) async {
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
            "skillable.result": "\(record.vendorResultCode.map(String.init) ?? "-")",
        ])
    }

    static func record(context: GatewayRequestContext, registrationID: String, deploymentID: String, learnerID: String, subject: String,
                       resourceLinkID: String?, contextID: String?, labID: String?, agsLineItem: String?, now: Date) -> LaunchRecord {
        LaunchRecord(id: context.referenceID, registrationID: registrationID, deploymentID: deploymentID, learnerID: learnerID,
                     subject: subject, messageType: LTIMessageType.resourceLinkRequest.rawValue, resourceLinkID: resourceLinkID,
                     contextID: contextID, labID: labID, outcome: "pending", vendorResultCode: nil, labInstanceID: nil,
                     agsLineItem: agsLineItem, createdAt: now)
    }

    /// The Skillable `Launch` for this learner, lab and registration's options.
    static func request(labID: Int, learnerID: String, token: LTIIDToken, registrationID: String,
                        options: PlatformLaunchOptions) -> SkillableLaunchRequest {
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

    static func unavailable(_ error: (any Error)?) -> GatewayError {
        GatewayError(code: "skillable_unavailable", status: .badGateway, title: "The lab service is not answering",
                     message: "Skillable, which runs the labs, did not answer. No lab was started. Please try again in a few minutes.",
                     underlying: error)
    }

    static func labURLRefused() -> GatewayError {
        GatewayError(code: "lab_url_refused", status: .badGateway, title: "The lab could not be opened",
                     message: "The lab service answered with an address this gateway does not send learners to. An administrator has been told.")
    }

    /// The learner of `launch`, stored or updated (names and email as the LMS sends them now).
    static func upsertLearner(_ launch: ValidatedLaunch, store: any GatewayStore, now: Date) async throws -> LearnerIdentity {
        let token = launch.token
        let subject = token.subject ?? ""
        return try await store.upsertIdentity(LearnerIdentity(
            id: learnerID(issuer: launch.registration.issuer, subject: subject), issuer: launch.registration.issuer,
            subject: subject, givenName: token.givenName, familyName: token.familyName, email: token.email,
            firstSeen: now, lastSeen: now))
    }

    /// A stable, opaque learner id: `lti-` and 32 hex digits of SHA-256(issuer NUL sub).
    static func learnerID(issuer: String, subject: String) -> String {
        let digest = SHA256.hash(data: Data((issuer + "\u{0}" + subject).utf8))
        return "lti-" + Hex.encode(digest.prefix(16))
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
