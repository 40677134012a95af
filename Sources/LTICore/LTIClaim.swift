/// The claim names of LTI 1.3 and its services. Each URI is written once: where the id_token decodes it
/// (``LTIIDToken``'s coding keys), or here for a claim the gateway only writes or reads raw.
///
/// LTI Core 1.3 §5.3 and §5.4; Deep Linking 2.0 §4.4; Assignment and Grade Services 2.0 §3.
public enum LTIClaim {
    public static let version = LTIIDToken.CodingKeys.version.rawValue
    public static let messageType = LTIIDToken.CodingKeys.messageType.rawValue
    public static let deploymentID = LTIIDToken.CodingKeys.deploymentID.rawValue
    public static let targetLinkURI = LTIIDToken.CodingKeys.targetLinkURI.rawValue
    public static let resourceLink = LTIIDToken.CodingKeys.resourceLink.rawValue
    public static let roles = LTIIDToken.CodingKeys.roles.rawValue
    public static let context = LTIIDToken.CodingKeys.context.rawValue
    public static let custom = LTIIDToken.CodingKeys.custom.rawValue
    public static let launchPresentation = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
    public static let deepLinkingSettings = LTIIDToken.CodingKeys.deepLinkingSettings.rawValue
    public static let agsEndpoint = LTIIDToken.CodingKeys.agsEndpoint.rawValue
    /// Deep Linking 2.0 §4.5: the response's `data` (the request's, byte for byte), items and message.
    public static let deepLinkingData = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
    public static let contentItems = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
    public static let deepLinkingMessage = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
}

/// The LTI message types the gateway knows (checklist "Launch" rule 10).
public enum LTIMessageType: String, Sendable, Codable {
    case resourceLinkRequest = "LtiResourceLinkRequest"
    case deepLinkingRequest = "LtiDeepLinkingRequest"
}
