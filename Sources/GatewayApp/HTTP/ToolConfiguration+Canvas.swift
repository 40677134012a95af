import Foundation
import PlatformServices

extension ToolConfiguration {
    /// Canvas's issuer and LTI endpoints (Instructure-hosted production; test and beta are named in the text).
    enum CanvasCloud {
        static let issuer = "https://canvas.instructure.com"
        static let authURL = "https://sso.canvaslms.com/api/lti/authorize_redirect"
        static let tokenURL = "https://sso.canvaslms.com/login/oauth2/token"
        static let jwksURL = "https://sso.canvaslms.com/api/lti/security/jwks"
    }

    /// Canvas's "LTI 1.3 Configuration" (Developer Keys → + LTI Key → Method "Paste JSON"): the grade scopes are
    /// exactly those the gateway's grade passback asks for.
    var canvasDeveloperKey: [String: Any] {
        let placement: (String) -> [String: Any] = { name in
            ["placement": name, "message_type": "LtiDeepLinkingRequest", "target_link_uri": deepLinkingURL]
        }
        return [
            "title": Self.toolName,
            "description": Self.toolDescription,
            "oidc_initiation_url": loginURL,
            "target_link_uri": launchURL,
            "public_jwk_url": jwksURL,
            "scopes": AGSScope.requested,
            "extensions": [
                [
                    "platform": "canvas.instructure.com", "domain": host, "tool_id": "lti-gateway", "privacy_level": "public",
                    "settings": ["text": "Skillable Labs", "placements": [placement("link_selection"), placement("assignment_selection")]],
                ]
            ],
        ]
    }

    /// The developer key's JSON, pretty-printed: what is pasted.
    func canvasDeveloperKeyJSON() throws -> Data {
        try JSONSerialization.data(withJSONObject: canvasDeveloperKey, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// Canvas: Admin → Developer Keys → + Developer Key → + LTI Key, then install by client id, then `platforms add`.
    var canvasForm: LMSToolForm {
        let json = (try? canvasDeveloperKeyJSON()).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        return LMSToolForm(
            location: "Canvas: Admin → (account) → Developer Keys → + Developer Key → + LTI Key",
            sections: [
                .init(
                    "Key Settings",
                    [
                        .init("Key Name", Self.toolName),
                        .init("Owner Email", [], note: "optional: whom to ask about the tool"),
                        .init(
                            "Redirect URIs", [launchURL, deepLinkingURL],
                            note: "required, one per line: the JSON below does not fill this field"),
                        .init("Notes", [], note: "optional"),
                    ]),
                .init(
                    "Configure",
                    [
                        .init("Method", "Paste JSON"),
                        .init(
                            "LTI 1.3 Configuration", json.components(separatedBy: "\n"),
                            note: "this JSON; tool-config --lms canvas --json prints it alone", isDocument: true),
                    ]),
            ],
            afterSaving: [
                "Save, then turn the key ON; its Client ID is the number in the Details column.",
                "Install it: Settings → Apps → + App → Configuration Type \"By Client ID\"; the app's gear menu → Deployment Id.",
                "Launch container: nothing to set. Canvas shows the lab in its frame and answers LTI Platform Storage, so",
                "launches work in browsers that block third-party cookies.",
                "Then register Canvas with the gateway (Canvas test or beta: issuer https://canvas.test.instructure.com or",
                "https://canvas.beta.instructure.com, and sso.test.canvaslms.com or sso.beta.canvaslms.com in the URLs):",
                LMSToolForm.platformsAdd(
                    issuer: CanvasCloud.issuer, clientID: "<Client ID>", deployment: "<Deployment Id>", jwksURL: CanvasCloud.jwksURL,
                    tokenURL: CanvasCloud.tokenURL, authURL: CanvasCloud.authURL),
            ])
    }
}
