import Foundation
import GatewayStorage
import GatewaySupport
import Hummingbird
import LTICore
import PlatformServices

/// What an LMS administrator must enter to install the gateway as an LTI 1.3 tool.
///
/// Every URL derives from `GATEWAY_PUBLIC_URL`. Used by `GET /lti/config` and `lti-gateway tool-config`.
public struct ToolConfiguration: Sendable {
    public let baseURL: String
    public let activeKey: ToolKey
    public let registration: PlatformRegistration?

    public init(baseURL: String, activeKey: ToolKey, registration: PlatformRegistration? = nil) {
        self.baseURL = baseURL
        self.activeKey = activeKey
        self.registration = registration
    }

    public var loginURL: String { baseURL + "/lti/login" }
    public var launchURL: String { baseURL + "/lti/launch" }
    public var deepLinkingURL: String { baseURL + "/lti/deep-link" }
    public var jwksURL: String { baseURL + "/.well-known/jwks.json" }
    public var host: String { URLComponents(string: baseURL)?.host ?? baseURL }

    /// Skillable's webhooks to configure on the API consumer, one URL per event (the body names none), with the
    /// lab details as body: scores go to the LMS gradebook, the others record where each lab stands.
    public static let webhookEvents = [("Scored", "scored"), ("Torn Down", "torn-down"), ("Saved", "saved"), ("Resumed", "resumed")]
    public func webhookURL(_ event: String) -> String { baseURL + "/webhooks/skillable/" + event }

    /// The webhook set-up as text: Skillable Studio → API consumer → Webhooks.
    public var skillableWebhooksText: String {
        (Self.webhookEvents.map { name, path in "  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) POST \(webhookURL(path))" } + [
            "  Each: header Authorization=Bearer <GATEWAY_WEBHOOK_SECRET>; \"Send Lab Details as Content Body\" on; retries 5.",
            "  Without GATEWAY_WEBHOOK_SECRET set on the gateway, webhooks are refused (and no score reaches the gradebook).",
        ]).joined(separator: "\n")
    }

    /// The custom parameter each lab link carries: Skillable's lab profile id.
    public static let labParameterHelp = "labid=<Skillable lab profile id>, e.g. labid=1001"
    /// The tool's name and description in the LMSs' forms.
    static let toolName = "LTI Gateway (Skillable labs)"
    static let toolDescription = "Hands-on Skillable labs launched from the course."

    /// An LMS whose tool form `tool-config --lms` prints field for field.
    public enum LMS: String, CaseIterable, Sendable {
        case canvas, moodle
    }

    /// That LMS's form.
    public func form(_ lms: LMS) -> LMSToolForm {
        switch lms {
        case .canvas: canvasForm
        case .moodle: moodleForm
        }
    }

    /// One line for the administrator when the public URL cannot serve LMSs elsewhere: a loopback host (nothing else
    /// reaches it), or plain http (browsers keep the `SameSite=None; Secure` launch cookies only over https). Nil for
    /// an https URL on another host.
    public var reachabilityWarning: String? {
        let components = URLComponents(string: baseURL)
        let loopback = Loopback.isLoopback(components?.host ?? "")
        let http = components?.scheme?.lowercased() != "https"
        guard loopback || http else { return nil }
        let problems = [
            loopback ? "an LMS on another machine cannot reach a loopback address" : nil,
            http ? "browsers do not keep the gateway's cookies over http" : nil,
        ].compactMap { $0 }
        return "Warning: the public URL \(baseURL) (GATEWAY_PUBLIC_URL) will not work for an LMS: " + problems.joined(separator: ", and ")
            + ". Set it to the https address the LMS and learners use."
    }

    /// Moodle's block as text (the `moodle` key of ``json()``).
    public var moodleText: String { moodleForm.text() }

    /// The whole configuration as JSON (`GET /lti/config`), or, for `lms`, only what that LMS takes: Canvas's developer
    /// key JSON as pasted, or Moodle's form fields in the form's order.
    public func json(lms: LMS? = nil) throws -> Data {
        switch lms {
        case .canvas: return try canvasDeveloperKeyJSON()
        case .moodle: return moodleForm.json()
        case nil: break
        }
        var document: [String: Any] = [
            "title": Self.toolName,
            "lti_version": "1.3.0",
            "oidc_login_url": loginURL,
            "target_link_uri": launchURL,
            "redirect_uris": [launchURL, deepLinkingURL],
            "deep_linking_url": deepLinkingURL,
            "jwks_url": jwksURL,
            "public_key": ["kid": activeKey.kid, "pem": activeKey.publicKeyPEM],
            "custom_parameters": ["labid": "<Skillable lab profile id>"],
            "messages": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "scopes": AGSScope.requested,
            "claims": [
                "sub", "given_name", "family_name", "name", "email", "locale",
                LTIClaim.context, LTIClaim.roles, LTIClaim.custom, LTIClaim.agsEndpoint,
            ],
            "launch_container": Self.launchContainerAdvice,
            "canvas_developer_key": canvasDeveloperKey,
            "moodle": moodleText,
            "skillable_webhooks": [
                "events": Self.webhookEvents.map { name, path in ["event": name, "method": "POST", "url": webhookURL(path)] },
                "header": "Authorization=Bearer <GATEWAY_WEBHOOK_SECRET>", "send_lab_details_as_body": true,
            ],
        ]
        if let registration {
            document["platform"] = [
                "id": registration.id, "issuer": registration.issuer, "client_id": registration.clientID,
                "deployment_ids": registration.deploymentIDs,
            ]
        }
        return try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// Where the LMS should open the tool.
    static let launchContainerAdvice =
        "embedded where the LMS answers LTI Platform Storage (Canvas); else a new window (Moodle), which needs no third-party cookie"

    /// The configuration as text for a terminal (`lti-gateway tool-config`): the URLs, the public key, and each LMS's
    /// block; for `lms`, only that LMS's block.
    public func text(lms: LMS? = nil) -> String {
        if let lms { return form(lms).text() }
        var lines = [
            "LTI 1.3 tool configuration for \(baseURL)",
            "",
            "  OIDC login (initiation) URL:  \(loginURL)",
            "  Redirect / launch URL:        \(launchURL)",
            "  Deep-linking URL:             \(deepLinkingURL)",
            "  Public key set (JWKS) URL:    \(jwksURL)",
            "  Custom parameter per link:    \(Self.labParameterHelp) (deep linking sets it; never at tool level)",
            "  Claims to share:              name, given_name, family_name, email (optional)",
            "  Grade scopes (AGS):           \(AGSScope.requested.joined(separator: " "))",
            "  Launch container:             \(Self.launchContainerAdvice)",
        ]
        if let registration {
            lines += [
                "",
                "Registered platform \(registration.id): issuer \(registration.issuer), client id \(registration.clientID), "
                    + "deployments \(registration.deploymentIDs.joined(separator: ", "))",
            ]
        }
        lines += [
            "",
            "Active public key (kid \(activeKey.kid)), only for an LMS that cannot fetch the key set URL (it stops working at the next key rotation):",
            activeKey.publicKeyPEM.trimmingCharacters(in: .newlines),
        ]
        for lms in LMS.allCases { lines += ["", form(lms).text().trimmingCharacters(in: .newlines)] }
        lines += [
            "", "Skillable webhooks (Skillable Studio → your API consumer → Webhooks), for scores in the gradebook:", skillableWebhooksText,
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `GET /lti/config`.
struct ToolConfigurationController: Sendable {
    let settings: GatewaySettings
    let toolKeys: ToolKeyService

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/lti/config") { _, _ in
            guard let active = toolKeys.ring.active else { throw GatewayError.notFound() }
            let body = try ToolConfiguration(baseURL: settings.baseURL, activeKey: active).json()
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
