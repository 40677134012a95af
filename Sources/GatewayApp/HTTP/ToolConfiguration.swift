import Foundation
import GatewayStorage
import Hummingbird
import LTICore

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

    /// Canvas: Developer Keys → + LTI Key → Method "Paste JSON".
    var canvasDeveloperKey: [String: Any] {
        let placement: (String) -> [String: Any] = { name in
            ["placement": name, "message_type": "LtiDeepLinkingRequest", "target_link_uri": deepLinkingURL]
        }
        return [
            "title": "LTI Gateway (Skillable labs)",
            "description": "Hands-on Skillable labs launched from the course.",
            "oidc_initiation_url": loginURL,
            "target_link_uri": launchURL,
            "public_jwk_url": jwksURL,
            "scopes": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "extensions": [
                [
                    "platform": "canvas.instructure.com", "domain": host, "tool_id": "lti-gateway", "privacy_level": "public",
                    "settings": ["text": "Skillable Labs", "placements": [placement("link_selection"), placement("assignment_selection")]],
                ]
            ],
        ]
    }

    /// Moodle: Site administration → Plugins → External tool → Manage tools → configure a tool manually.
    public var moodleText: String {
        """
        Tool name: LTI Gateway (Skillable labs)
        Tool URL: \(launchURL)
        LTI version: LTI 1.3
        Public key type: Keyset URL
        Public keyset: \(jwksURL)
        Initiate login URL: \(loginURL)
        Redirection URI(s): \(launchURL)
                            \(deepLinkingURL)
        Custom parameters: set per activity: \(Self.labParameterHelp)
        Supports Deep Linking (Content-Item Message): yes
        Content Selection URL: \(deepLinkingURL)
        Privacy: share launcher's name and email with the tool: Always (optional; passed to Skillable)
        """
    }

    /// The whole configuration as JSON (`GET /lti/config`).
    public func json() throws -> Data {
        var document: [String: Any] = [
            "title": "LTI Gateway (Skillable labs)",
            "lti_version": "1.3.0",
            "oidc_login_url": loginURL,
            "target_link_uri": launchURL,
            "redirect_uris": [launchURL, deepLinkingURL],
            "deep_linking_url": deepLinkingURL,
            "jwks_url": jwksURL,
            "public_key": ["kid": activeKey.kid, "pem": activeKey.publicKeyPEM],
            "custom_parameters": ["labid": "<Skillable lab profile id>"],
            "messages": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "claims": [
                "sub", "given_name", "family_name", "name", "email", "locale",
                LTIClaim.context, LTIClaim.roles, LTIClaim.custom, LTIClaim.agsEndpoint,
            ],
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

    /// The configuration as text for a terminal (`lti-gateway tool-config`).
    public func text() -> String {
        var lines = [
            "LTI 1.3 tool configuration for \(baseURL)",
            "",
            "  OIDC login (initiation) URL:  \(loginURL)",
            "  Redirect / launch URL:        \(launchURL)",
            "  Deep-linking URL:             \(deepLinkingURL)",
            "  Public key set (JWKS) URL:    \(jwksURL)",
            "  Custom parameter per link:    \(Self.labParameterHelp)",
            "  Claims to share:              name, given_name, family_name, email (optional)",
        ]
        if let registration {
            lines += [
                "",
                "Registered platform \(registration.id): issuer \(registration.issuer), client id \(registration.clientID), "
                    + "deployments \(registration.deploymentIDs.joined(separator: ", "))",
            ]
        }
        lines += ["", "Active public key (kid \(activeKey.kid)):", activeKey.publicKeyPEM.trimmingCharacters(in: .newlines)]
        let canvas =
            (try? JSONSerialization.data(withJSONObject: canvasDeveloperKey, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
            .flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        lines += [
            "", "Canvas developer key (Developer Keys → + LTI Key → Paste JSON):", canvas, "", "Moodle (External tool → configure a tool manually):",
            moodleText, "", "Skillable webhooks (Skillable Studio → your API consumer → Webhooks), for scores in the gradebook:",
            skillableWebhooksText,
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
