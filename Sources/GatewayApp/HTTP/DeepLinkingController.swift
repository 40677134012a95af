import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import Logging
import Metrics
import Skillable

/// What the picker page shows.
struct PickerView {
    struct Lab {
        var profile: SkillableLabProfile
        var inputType: String
        var required: Bool
    }
    var action: String
    var sessionToken: String
    var labs: [Lab]
    var multiple: Bool
    var lineItems: Bool
    var scoreMaximum: Double

    var values: [String: Any] {
        [
            "title": "Add Skillable labs", "action": action, "session": sessionToken, "multiple": multiple,
            "lineItems": lineItems, "scoreMaximum": Self.format(scoreMaximum),
            "labs": labs.map { lab -> [String: Any] in
                let p = lab.profile
                return ["id": String(p.id), "name": p.name, "number": p.number ?? "", "description": p.description ?? "",
                        "duration": p.durationMinutes.map(String.init) ?? "?", "inputType": lab.inputType, "required": lab.required,
                        "search": ([p.name, p.number ?? ""] + (p.tags ?? [])).joined(separator: " ").lowercased()]
            },
        ]
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// Deep linking (Deep Linking 2.0; checklist "Deep linking response"): the lab picker for an
/// `LtiDeepLinkingRequest`, and its submission, answered with a signed `LtiDeepLinkingResponse`
/// auto-posted to the platform.
///
/// The picker is bound to its request by a server-side session (single use, consumed atomically) whose
/// id travels in a short-lived token signed with the tool's active key. The token is unguessable and
/// only ever in the picker form, which also makes it the protection against cross-site forgery.
struct DeepLinkingController: Sendable {
    let store: any GatewayStore
    let catalog: LabCatalog
    let toolKeys: ToolKeyService
    let pages: PageRenderer
    let baseURL: String
    let sessionLifetime: TimeInterval
    let defaultScoreMaximum: Double
    let now: @Sendable () -> Date

    static let tokenAudience = "lti-gateway/deep-link-picker"
    static let maxLabsPerResponse = 50

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/lti/deep-link/select") { request, context in try await self.select(request, context: context) }
    }

    /// Shows the picker for a validated deep-linking request.
    func startPicker(_ launch: ValidatedLaunch, context: GatewayRequestContext) async throws -> Response {
        let settings = launch.token.deepLinkingSettings
        guard settings?.acceptTypes?.contains("ltiResourceLink") == true, let returnURL = settings?.deepLinkReturnURL else {
            throw GatewayError(code: "deep_link_type_not_accepted", status: .badRequest, title: "Labs cannot be added here",
                               message: "This place in the LMS does not accept links to activities (ltiResourceLink). Add the lab from a module, assignment or link placement instead.")
        }
        let profiles = try await launchableProfiles()
        let time = now()
        let session = DeepLinkSession(
            id: SecureRandom.token(), registrationID: launch.registration.id, deploymentID: launch.deploymentID, returnURL: returnURL,
            data: settings?.data, acceptMultiple: settings?.acceptMultiple ?? false, acceptLineItem: settings?.acceptLineItem ?? false,
            createdAt: time, expiresAt: time.addingTimeInterval(sessionLifetime))
        try await store.saveDeepLinkSession(session)
        let token = try toolKeys.signer.sign(claims: [
            "aud": Self.tokenAudience, "sid": session.id, "iat": Int(time.timeIntervalSince1970),
            "exp": Int(session.expiresAt.timeIntervalSince1970),
        ])
        context.logger.info("lab picker opened", metadata: [
            "lti.registration": "\(launch.registration.id)", "lti.deployment": "\(launch.deploymentID)",
            "dl.multiple": "\(session.acceptMultiple)", "dl.line_items": "\(session.acceptLineItem)", "dl.labs": "\(profiles.count)",
        ])
        let labs = profiles.enumerated().map { index, profile in
            PickerView.Lab(profile: profile, inputType: session.acceptMultiple ? "checkbox" : "radio",
                           required: !session.acceptMultiple && index == 0)
        }
        return pages.pickerPage(PickerView(action: baseURL + "/lti/deep-link/select", sessionToken: token, labs: labs,
                                           multiple: session.acceptMultiple, lineItems: session.acceptLineItem,
                                           scoreMaximum: defaultScoreMaximum))
    }

    /// `POST /lti/deep-link/select`: the instructor's choice (or cancel) → signed response to the platform.
    func select(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let fields = FormParameters.pairs(Substring(try await FormParameters.body(of: request, context: context)))
        func first(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
        let time = now()
        let sessionID = try verifiedSessionID(first("session"), now: time)
        let cancelled = first("action") == "cancel"
        let chosen = fields.filter { $0.0 == "lab" }.map(\.1)

        var items: [DeepLinkResourceLink] = []
        var wantsLineItem = false
        var scoreMaximum = defaultScoreMaximum
        if !cancelled {
            guard !chosen.isEmpty else {
                throw GatewayError(code: "deep_link_nothing_chosen", status: .badRequest, title: "No lab was chosen",
                                   message: "Go back, choose at least one lab, and press Add to course — or press Cancel.")
            }
            guard chosen.count <= Self.maxLabsPerResponse else {
                throw GatewayError(code: "deep_link_too_many", status: .badRequest, title: "Too many labs",
                                   message: "Choose at most \(Self.maxLabsPerResponse) labs at a time.")
            }
            wantsLineItem = first("create_line_item") == "on"
            if let raw = first("score_maximum"), !raw.isEmpty {
                guard let value = Double(raw), value > 0, value <= 10_000 else {
                    throw GatewayError(code: "deep_link_score_invalid", status: .badRequest, title: "Invalid maximum score",
                                       message: "The maximum score must be a number between 1 and 10000. Go back and correct it.")
                }
                scoreMaximum = value
            }
            let profiles = try await launchableProfiles()
            for raw in chosen.uniqued() {
                guard let id = Int(raw), let profile = profiles.first(where: { $0.id == id }) else {
                    throw GatewayError(code: "deep_link_lab_unknown", status: .badRequest, title: "Lab not available",
                                       message: "A chosen lab is not (or no longer) available. Go back and choose again.")
                }
                items.append(DeepLinkResourceLink(title: profile.name, text: profile.description, url: baseURL + "/lti/launch",
                                                  custom: ["labid": String(profile.id)]))
            }
        }

        // Single use: the session is consumed only once the submission is known to be well-formed.
        guard let session = try await store.consumeDeepLinkSession(id: sessionID, now: time) else {
            throw Self.reopen("deep_link_session_used", "This lab picker has already been used or has expired.")
        }
        guard session.acceptMultiple || items.count <= 1 else {
            throw GatewayError(code: "deep_link_single_only", status: .badRequest, title: "Only one lab can be added here",
                               message: "This place in the LMS accepts one lab at a time. Open the picker again from the LMS and choose one lab.")
        }
        if wantsLineItem, session.acceptLineItem {
            items = items.map { item in
                var item = item
                item.lineItem = .init(label: item.title, scoreMaximum: scoreMaximum,
                                      resourceID: "skillable-lab-" + (item.custom["labid"] ?? ""), tag: "skillable-lab")
                return item
            }
        }
        guard let registration = try await store.registration(id: session.registrationID) else {
            throw Self.reopen("deep_link_registration_gone", "The LMS registration of this picker no longer exists.")
        }
        let claims = DeepLinkingResponse.claims(
            clientID: registration.clientID, platformIssuer: registration.issuer, deploymentID: session.deploymentID,
            data: session.data, items: items, message: items.isEmpty ? nil : "Added \(items.count) lab\(items.count == 1 ? "" : "s").",
            now: time)
        let jwt = try toolKeys.signer.sign(claims: claims)
        Counter(label: "lti_deep_link_responses_total", dimensions: [("outcome", cancelled ? "cancelled" : "selected")]).increment()
        context.logger.info("deep-linking response", metadata: [
            "lti.registration": "\(registration.id)", "dl.items": "\(items.count)", "dl.cancelled": "\(cancelled)",
            "gw.keys.kid": "\(toolKeys.signer.key.kid)",
        ])
        let summary = cancelled ? "No lab was added." : "Adding \(items.map(\.title).joined(separator: ", ")) to your course."
        return pages.autoPostPage(action: session.returnURL, jwt: jwt, summary: summary)
    }

    private func launchableProfiles() async throws -> [SkillableLabProfile] {
        do {
            return try await catalog.launchableProfiles()
        } catch {
            throw GatewayError(code: "catalog_unavailable", status: .badGateway, title: "The lab list is not available",
                               message: "Skillable, which runs the labs, did not answer. Please try again in a few minutes.", underlying: error)
        }
    }

    /// The session id of a picker token signed by one of our published keys, unexpired, for the picker.
    private func verifiedSessionID(_ token: String?, now: Date) throws -> String {
        struct Claims: Decodable { var aud: String?; var sid: String?; var exp: Double? }
        guard let token, let payload = ToolTokenVerifier(ring: toolKeys.ring, now: now).payload(of: token),
              let claims = try? JSONDecoder().decode(Claims.self, from: payload),
              claims.aud == Self.tokenAudience, let sid = claims.sid, let exp = claims.exp
        else {
            throw Self.reopen("deep_link_session_invalid", "This lab picker submission is not valid.")
        }
        guard now.timeIntervalSince1970 < exp else {
            throw Self.reopen("deep_link_session_expired", "This lab picker has expired.")
        }
        return sid
    }

    static func reopen(_ code: String, _ what: String) -> GatewayError {
        GatewayError(code: code, status: .badRequest, title: "Please reopen the lab picker",
                     message: what + " Close this window and open the lab picker again from your LMS course.")
    }
}
