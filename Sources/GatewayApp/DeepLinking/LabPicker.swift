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

/// The picker's content: the launchable labs, how many may be chosen, and the token its form carries; when it comes
/// back to the instructor with a problem, the problem and what they had chosen.
struct PickerContent: Sendable {
    var sessionToken: String
    var labs: [SkillableLabProfile]
    var multiple: Bool
    var lineItems: Bool
    /// The maximum score field's value (the default, or what the instructor typed).
    var scoreMaximum: String
    /// What to correct before the choice can be added (nil on a fresh picker).
    var problem: String? = nil
    /// The lab ids chosen in the submission that came back.
    var chosen: Set<String> = []
    var createLineItem: Bool = false
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

    /// What the instructor must correct, for a submission refused for its content (the picker comes back with it);
    /// nil for the others, which end the picker.
    var correction: String? {
        switch code {
        case .nothingChosen: "Choose at least one lab, then press Add to course — or press Cancel to add none."
        case .tooMany: "Choose at most \(LabPicker.maxLabsPerResponse) labs at a time."
        case .scoreInvalid: "The maximum score must be a number from 1 to 10000."
        case .labUnknown: "A lab you chose is not (or no longer) available. The list below is up to date: choose again."
        case .singleOnly: "This place in the LMS takes one lab at a time: choose one."
        default: nil
        }
    }

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
        // The token also says how the picker looks, so that a submission to correct shows it again without a lookup.
        let token = try InternalTokens(ring: toolKeys.ring).sign(claims: [
            "aud": Self.tokenAudience, "sid": session.id, "iat": Int(now.timeIntervalSince1970),
            "exp": Int(session.expiresAt.timeIntervalSince1970), "multiple": session.acceptMultiple, "line_items": session.acceptLineItem,
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
                lineItems: session.acceptLineItem, scoreMaximum: Self.format(defaultScoreMaximum)))
    }

    /// The instructor's choice (or cancel) → a signed response for the platform; a choice to correct (none, too many,
    /// a lab no longer offered, a bad maximum score) → the picker again with the problem, its session untouched.
    func submit(_ submission: PickerSubmission, trace: LaunchTrace, now: Date) async throws -> PickerOutcome {
        let picker = try verifiedPicker(submission.sessionToken, now: now)
        var items: [DeepLinkResourceLink] = []
        var scoreMaximum = defaultScoreMaximum
        if !submission.cancelled {
            do {
                (items, scoreMaximum) = try await chosenItems(submission, multiple: picker.multiple)
            } catch let failure as DeepLinkFailure {
                guard let correction = failure.correction else { throw failure }
                trace.logger.notice("lab picker submission to correct", metadata: ["gw.error": "\(failure.code.rawValue)"])
                return .picker(
                    PickerContent(
                        sessionToken: submission.sessionToken ?? "", labs: try await launchableProfiles(), multiple: picker.multiple ?? true,
                        lineItems: picker.lineItems, scoreMaximum: submission.scoreMaximum ?? Self.format(defaultScoreMaximum),
                        problem: correction, chosen: Set(submission.chosen), createLineItem: submission.createLineItem))
            }
        }
        let sessionID = picker.sessionID

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

    /// The links for the chosen labs and the maximum score; throws the ``DeepLinkFailure`` to correct.
    private func chosenItems(_ submission: PickerSubmission, multiple: Bool?) async throws -> ([DeepLinkResourceLink], Double) {
        guard !submission.chosen.isEmpty else { throw DeepLinkFailure(.nothingChosen) }
        guard submission.chosen.count <= Self.maxLabsPerResponse else { throw DeepLinkFailure(.tooMany) }
        let chosen = submission.chosen.uniqued()
        guard multiple != false || chosen.count == 1 else { throw DeepLinkFailure(.singleOnly) }
        var scoreMaximum = defaultScoreMaximum
        if let raw = submission.scoreMaximum, !raw.isEmpty {
            guard let value = Double(raw), value > 0, value <= 10_000 else { throw DeepLinkFailure(.scoreInvalid) }
            scoreMaximum = value
        }
        let profiles = try await launchableProfiles()
        let items = try chosen.map { raw in
            guard let id = Int(raw), let profile = profiles.first(where: { $0.id == id }) else { throw DeepLinkFailure(.labUnknown) }
            return DeepLinkResourceLink(
                title: profile.name, text: profile.description, url: baseURL + "/lti/launch", custom: ["labid": String(profile.id)])
        }
        return (items, scoreMaximum)
    }

    /// A picker token's claims: its session and how its picker looks.
    private struct VerifiedPicker {
        var sessionID: String
        /// Nil for a token signed before pickers carried it: the session decides after its consumption.
        var multiple: Bool?
        var lineItems: Bool
    }

    /// The claims of an internal picker token under one of our published keys, unexpired, for the picker.
    private func verifiedPicker(_ token: String?, now: Date) throws -> VerifiedPicker {
        struct Claims: Decodable {
            var aud: String?
            var sid: String?
            var exp: Double?
            var multiple: Bool?
            var line_items: Bool?
        }
        guard let token, let payload = InternalTokens(ring: toolKeys.ring).payload(of: token, now: now, maxBytes: 8192),
            let claims = try? JSONDecoder().decode(Claims.self, from: payload),
            claims.aud == Self.tokenAudience, let sid = claims.sid, let exp = claims.exp
        else {
            throw DeepLinkFailure(.sessionInvalid)
        }
        guard now.timeIntervalSince1970 < exp else { throw DeepLinkFailure(.sessionExpired) }
        return VerifiedPicker(sessionID: sid, multiple: claims.multiple, lineItems: claims.line_items ?? false)
    }

    /// A score for the form field: `100`, `7.5`.
    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
