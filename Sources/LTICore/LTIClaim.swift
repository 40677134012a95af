/// The claim names of LTI 1.3 and its services, in one place.
///
/// LTI Core 1.3 §5.3 and §5.4; Deep Linking 2.0 §4.4; Assignment and Grade Services 2.0 §3.
public enum LTIClaim {
    public static let version = "https://purl.imsglobal.org/spec/lti/claim/version"
    public static let messageType = "https://purl.imsglobal.org/spec/lti/claim/message_type"
    public static let deploymentID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
    public static let targetLinkURI = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
    public static let resourceLink = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
    public static let roles = "https://purl.imsglobal.org/spec/lti/claim/roles"
    public static let context = "https://purl.imsglobal.org/spec/lti/claim/context"
    public static let custom = "https://purl.imsglobal.org/spec/lti/claim/custom"
    public static let launchPresentation = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
    public static let deepLinkingSettings = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
    public static let agsEndpoint = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
}

/// The LTI message types the gateway knows (checklist "Launch" rule 10).
public enum LTIMessageType: String, Sendable, Codable {
    case resourceLinkRequest = "LtiResourceLinkRequest"
    case deepLinkingRequest = "LtiDeepLinkingRequest"
}
