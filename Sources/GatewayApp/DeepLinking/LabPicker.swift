import Foundation
import GatewayStorage
import LTICore
import Logging
import Metrics
import Skillable

/// What opening or submitting the lab picker came to. Controllers only map it to a page.
enum PickerOutcome: Sendable {
    /// Show the picker.
    case picker(PickerContent)
    /// Auto-post the signed `LtiDeepLinkingResponse` (`jwt`) to the platform's return URL.
    case returnToPlatform(url: String, jwt: String, summary: String)
}

/// The picker's content: the launchable labs, how many may be chosen, and the token its form carries.
struct PickerContent: Sendable {
    var sessionToken: String
    var labs: [SkillableLabProfile]
    var multiple: Bool
    var lineItems: Bool
    var scoreMaximum: Double
}

/// What the instructor submitted from the picker.
struct PickerSubmission: Sendable {
    var sessionToken: String?
    var cancelled: Bool
    /// The chosen lab ids, as posted.
    var chosen: [String]
    var createLineItem: Bool
    /// The maximum score, as posted (empty or nil: the default).
    var scoreMaximum: String?
}

/// Why the picker could not open or its submission was refused. Its identifier is a stable code.
struct DeepLinkFailure: Error, Sendable {
    enum Code: String, Sendable {
        case typeNotAccepted = "deep_link_type_not_accepted"
        case roleNotAllowed = "deep_link_role_not_allowed"
        case catalogUnavailable = "catalog_unavailable"
        case nothingChosen = "deep_link_nothing_chosen"
        case tooMany = "deep_link_too_many"
        case scoreInvalid = "deep_link_score_invalid"
        case labUnknown = "deep_link_lab_unknown"
        case singleOnly = "deep_link_single_only"
        case sessionUsed = "deep_link_session_used"
        case registrationGone = "deep_link_registration_gone"
        case sessionInvalid = "deep_link_session_invalid"
        case sessionExpired = "deep_link_session_expired"
    }

    var code: Code
    var underlying: (any Error)?

    init(_ code: Code, underlying: (any Error)? = nil) {
        self.code = code
        self.underlying = underlying
    }
}

/// Deep linking (Deep Linking 2.0; checklist "Deep linking response"): the lab picker for an
/// `LtiDeepLinkingRequest`, and its submission, answered with a signed `LtiDeepLinkingResponse`.
///
/// The picker is bound to its request by a server-side session (single use, consumed atomically) whose
/// id travels in a short-lived token signed with the tool's active key. The token is unguessable and
/// only ever in the picker form, which also makes it the protection against cross-site forgery.
struct LabPicker: Sendable {
    let sessions: any DeepLinkSessionStore
    let registrations: any RegistrationLookup
    /// The registration's launch options (who may open the picker).
    let launchOptions: @Sendable (String) async throws -> PlatformLaunchOptions
    let catalog: LabCatalog
    let toolKeys: ToolKeyService
    let baseURL: String
    let sessionLifetime: TimeInterval
    let defaultScoreMaximum: Double

    static let tokenAudience = "lti-gateway/deep-link-picker"
    static let maxLabsPerResponse = 50

    /// Opens the picker for a validated deep-linking request.
    func open(_ launch: ValidatedLaunch, trace: LaunchTrace, now: Date) async throws -> PickerOutcome {
        // Only people who may change the course add labs to it (per platform: `platforms set-options --picker-role`).
        let allowed = try await launchOptions(launch.registration.id).pickerRoles ?? PlatformLaunchOptions.defaultPickerRoles
        guard LTIRoles.any(of: launch.token.roles ?? [], namedBy: allowed) else {
            trace.logger.notice("lab picker refused: no role that may add labs", metadata: ["lti.roles": "\((launch.token.roles ?? []).count)"])
            throw DeepLinkFailure(.roleNotAllowed)
        }
        let settings = launch.token.deepLinkingSettings
        guard settings?.acceptTypes?.contains("ltiResourceLink") == true, let returnURL = settings?.deepLinkReturnURL else {
            throw DeepLinkFailure(.typeNotAccepted)
        }
        let profiles = try await launchableProfiles()
        let session = DeepLinkSession(
            id: SecureRandom.token(), registrationID: launch.registration.id, deploymentID: launch.deploymentID, returnURL: returnURL,
            data: settings?.data, acceptMultiple: settings?.acceptMultiple ?? false, acceptLineItem: settings?.acceptLineItem ?? false,
            createdAt: now, expiresAt: now.addingTimeInterval(sessionLifetime))
        try await sessions.saveDeepLinkSession(session)
        let token = try InternalTokens(ring: toolKeys.ring).sign(claims: [
            "aud": Self.tokenAudience, "sid": session.id, "iat": Int(now.timeIntervalSince1970),
            "exp": Int(session.expiresAt.timeIntervalSince1970),
        ])
        trace.logger.info(
            "lab picker opened",
            metadata: [
                "lti.registration": "\(launch.registration.id)", "lti.deployment": "\(launch.deploymentID)",
                "dl.multiple": "\(session.acceptMultiple)", "dl.line_items": "\(session.acceptLineItem)", "dl.labs": "\(profiles.count)",
            ])
        return .picker(
            PickerContent(
                sessionToken: token, labs: profiles, multiple: session.acceptMultiple,
                lineItems: session.acceptLineItem, scoreMaximum: defaultScoreMaximum))
    }

    /// The instructor's choice (or cancel) → a signed response for the platform.
    func submit(_ submission: PickerSubmission, trace: LaunchTrace, now: Date) async throws -> PickerOutcome {
        let sessionID = try verifiedSessionID(submission.sessionToken, now: now)
        var items: [DeepLinkResourceLink] = []
        var scoreMaximum = defaultScoreMaximum
        if !submission.cancelled {
            guard !submission.chosen.isEmpty else { throw DeepLinkFailure(.nothingChosen) }
            guard submission.chosen.count <= Self.maxLabsPerResponse else { throw DeepLinkFailure(.tooMany) }
            if let raw = submission.scoreMaximum, !raw.isEmpty {
                guard let value = Double(raw), value > 0, value <= 10_000 else { throw DeepLinkFailure(.scoreInvalid) }
                scoreMaximum = value
            }
            let profiles = try await launchableProfiles()
            for raw in submission.chosen.uniqued() {
                guard let id = Int(raw), let profile = profiles.first(where: { $0.id == id }) else { throw DeepLinkFailure(.labUnknown) }
                items.append(
                    DeepLinkResourceLink(
                        title: profile.name, text: profile.description, url: baseURL + "/lti/launch",
                        custom: ["labid": String(profile.id)]))
            }
        }

        // Single use: the session is consumed only once the submission is known to be well-formed.
        guard let session = try await sessions.consumeDeepLinkSession(id: sessionID, now: now) else {
            throw DeepLinkFailure(.sessionUsed)
        }
        guard session.acceptMultiple || items.count <= 1 else { throw DeepLinkFailure(.singleOnly) }
        if submission.createLineItem, session.acceptLineItem {
            items = items.map { item in
                var item = item
                item.lineItem = .init(
                    label: item.title, scoreMaximum: scoreMaximum,
                    resourceID: "skillable-lab-" + (item.custom["labid"] ?? ""), tag: "skillable-lab")
                return item
            }
        }
        guard let registration = try await registrations.registration(id: session.registrationID) else {
            throw DeepLinkFailure(.registrationGone)
        }
        let claims = DeepLinkingResponse.claims(
            clientID: registration.clientID, platformIssuer: registration.issuer, deploymentID: session.deploymentID,
            data: session.data, items: items, message: items.isEmpty ? nil : "Added \(items.count) lab\(items.count == 1 ? "" : "s").",
            now: now)
        let jwt = try toolKeys.signer.sign(claims: claims)
        Counter(label: "lti_deep_link_responses_total", dimensions: [("outcome", submission.cancelled ? "cancelled" : "selected")]).increment()
        trace.logger.info(
            "deep-linking response",
            metadata: [
                "lti.registration": "\(registration.id)", "dl.items": "\(items.count)", "dl.cancelled": "\(submission.cancelled)",
                "gw.keys.kid": "\(toolKeys.signer.key.kid)",
            ])
        let summary = submission.cancelled ? "No lab was added." : "Adding \(items.map(\.title).joined(separator: ", ")) to your course."
        return .returnToPlatform(url: session.returnURL, jwt: jwt, summary: summary)
    }

    private func launchableProfiles() async throws -> [SkillableLabProfile] {
        do {
            return try await catalog.launchableProfiles()
        } catch {
            throw DeepLinkFailure(.catalogUnavailable, underlying: error)
        }
    }

    /// The session id of an internal picker token under one of our published keys, unexpired, for the picker.
    private func verifiedSessionID(_ token: String?, now: Date) throws -> String {
        struct Claims: Decodable { var aud: String?; var sid: String?; var exp: Double? }
        guard let token, let payload = InternalTokens(ring: toolKeys.ring).payload(of: token, now: now, maxBytes: 8192),
            let claims = try? JSONDecoder().decode(Claims.self, from: payload),
            claims.aud == Self.tokenAudience, let sid = claims.sid, let exp = claims.exp
        else {
            throw DeepLinkFailure(.sessionInvalid)
        }
        guard now.timeIntervalSince1970 < exp else { throw DeepLinkFailure(.sessionExpired) }
        return sid
    }
}
