import Foundation

extension ToolConfiguration {
    /// Moodle 4.x: Site administration → Plugins → Activity modules → External tool → Manage tools → configure a tool
    /// manually, field for field in the form's order; then the tool's configuration details mapped to `platforms add`.
    ///
    /// No public key is given here: with "Keyset URL" Moodle fetches the gateway's key set, so key rotation goes
    /// unnoticed; a pasted "RSA key" stops working at the first rotation.
    var moodleForm: LMSToolForm {
        LMSToolForm(
            location:
                "Moodle (4.x): Site administration → Plugins → Activity modules → External tool → Manage tools → configure a tool manually",
            sections: [
                .init(
                    "Tool settings",
                    [
                        .init("Tool name", Self.toolName),
                        .init("Tool URL", launchURL),
                        .init("Tool description", Self.toolDescription),
                        .init("LTI version", "LTI 1.3"),
                        .init(
                            "Public key type", "Keyset URL", note: "not \"RSA key\": a pasted key stops working at the gateway's next key rotation"),
                        .init("Public keyset", jwksURL),
                        .init("Initiate login URL", loginURL),
                        .init("Redirection URI(s)", [launchURL, deepLinkingURL]),
                        .init(
                            "Custom parameters", [],
                            note: "leave empty: each activity's labid comes from deep linking, or is set on that activity"),
                        .init("Tool configuration usage", "Show in activity chooser and as a preconfigured tool"),
                        .init(
                            "Default launch container", "New window",
                            note: "Moodle has no LTI Platform Storage: embedded, browsers blocking third-party cookies need one more click"),
                        .init("Supports Deep Linking (Content-Item Message)", "ticked"),
                        .init("Content Selection URL", deepLinkingURL),
                    ]),
                .init(
                    "Services",
                    [
                        .init(
                            "IMS LTI Assignment and Grade Services", "Use this service for grade sync and column management",
                            note: "scores of labs reach the gradebook"),
                        .init("IMS LTI Names and Role Provisioning", "Do not use this service", note: "the gateway reads no rosters"),
                    ]),
                .init(
                    "Privacy",
                    [
                        .init("Share launcher's name with tool", "Always", note: "optional; passed to Skillable"),
                        .init("Share launcher's email with tool", "Always", note: "optional; passed to Skillable and SkyPrep"),
                        .init(
                            "Accept grades from the tool", "As specified in Deep Linking definition or Delegate to teacher",
                            note: "labs added by deep linking bring their gradebook column"),
                    ]),
            ],
            afterSaving: [
                "Save changes. Manage tools → the tool's \"View configuration details\" then shows what the gateway needs:",
                LMSToolForm.platformsAdd(
                    issuer: "<Platform ID>", clientID: "<Client ID>", deployment: "<Deployment ID>", jwksURL: "<Public keyset URL>",
                    tokenURL: "<Access token URL>", authURL: "<Authentication request URL>"),
            ])
    }
}
