/// The claims of an LTI 1.3 id_token that the gateway reads.
///
/// Modelled as a plain `Decodable` value: decoding never validates, the ``LaunchValidator`` does,
/// rule by rule, so that every refusal can name the rule that failed. Unknown claims are ignored
/// (checklist "Launch" rule 17). Claim URIs live in ``LTIClaim``.
public struct LTIIDToken: Sendable, Decodable {
    public var issuer: String?
    public var subject: String?
    public var audience: Audience?
    public var authorizedParty: String?
    public var expiresAt: Double?
    public var issuedAt: Double?
    public var notBefore: Double?
    public var nonce: String?
    public var name: String?
    public var givenName: String?
    public var familyName: String?
    public var email: String?
    public var locale: String?
    public var version: String?
    public var messageType: String?
    public var deploymentID: String?
    public var targetLinkURI: String?
    public var resourceLink: ResourceLink?
    public var roles: [String]?
    public var context: Context?
    /// Custom parameters; values are strings (rule 17), non-string JSON values are kept as their JSON text.
    public var custom: [String: String]?
    public var deepLinkingSettings: DeepLinkingSettings?
    public var agsEndpoint: AGSEndpoint?
    /// How the platform shows the launch and where the learner goes back to (`launch_presentation`).
    public var launchPresentation: LaunchPresentation?

    /// `aud` is a string or an array of strings (OpenID Connect Core §2).
    public struct Audience: Sendable, Decodable, Equatable {
        public var values: [String]
        public init(_ values: [String]) { self.values = values }
        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                values = [one]
            } else {
                values = try container.decode([String].self)
            }
        }
    }

    public struct ResourceLink: Sendable, Decodable {
        public var id: String?
        public var title: String?
        public var description: String?
    }

    public struct Context: Sendable, Decodable {
        public var id: String?
        public var label: String?
        public var title: String?
    }

    public struct DeepLinkingSettings: Sendable, Decodable {
        public var deepLinkReturnURL: String?
        public var acceptTypes: [String]?
        public var acceptPresentationDocumentTargets: [String]?
        public var acceptMultiple: Bool?
        public var acceptLineItem: Bool?
        public var data: String?
        enum CodingKeys: String, CodingKey {
            case deepLinkReturnURL = "deep_link_return_url"
            case acceptTypes = "accept_types"
            case acceptPresentationDocumentTargets = "accept_presentation_document_targets"
            case acceptMultiple = "accept_multiple"
            case acceptLineItem = "accept_lineitem"
            case data
        }
    }

    /// The `launch_presentation` claim: the frame the platform opened the launch in, and its return URL.
    public struct LaunchPresentation: Sendable, Decodable {
        public var documentTarget: String?
        public var returnURL: String?
        public var locale: String?
        enum CodingKeys: String, CodingKey {
            case documentTarget = "document_target"
            case returnURL = "return_url"
            case locale
        }
    }

    public struct AGSEndpoint: Sendable, Decodable {
        public var scope: [String]?
        public var lineItems: String?
        public var lineItem: String?
        enum CodingKeys: String, CodingKey {
            case scope
            case lineItems = "lineitems"
            case lineItem = "lineitem"
        }
    }

    enum CodingKeys: String, CodingKey {
        case issuer = "iss"
        case subject = "sub"
        case audience = "aud"
        case authorizedParty = "azp"
        case expiresAt = "exp"
        case issuedAt = "iat"
        case notBefore = "nbf"
        case nonce, name, email, locale
        case givenName = "given_name"
        case familyName = "family_name"
        case version = "https://purl.imsglobal.org/spec/lti/claim/version"
        case messageType = "https://purl.imsglobal.org/spec/lti/claim/message_type"
        case deploymentID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
        case targetLinkURI = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
        case resourceLink = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
        case roles = "https://purl.imsglobal.org/spec/lti/claim/roles"
        case context = "https://purl.imsglobal.org/spec/lti/claim/context"
        case custom = "https://purl.imsglobal.org/spec/lti/claim/custom"
        case deepLinkingSettings = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
        case agsEndpoint = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
        case launchPresentation = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        issuer = try? c.decodeIfPresent(String.self, forKey: .issuer)
        subject = try? c.decodeIfPresent(String.self, forKey: .subject)
        audience = try? c.decodeIfPresent(Audience.self, forKey: .audience)
        authorizedParty = try? c.decodeIfPresent(String.self, forKey: .authorizedParty)
        expiresAt = try? c.decodeIfPresent(Double.self, forKey: .expiresAt)
        issuedAt = try? c.decodeIfPresent(Double.self, forKey: .issuedAt)
        notBefore = try? c.decodeIfPresent(Double.self, forKey: .notBefore)
        nonce = try? c.decodeIfPresent(String.self, forKey: .nonce)
        name = try? c.decodeIfPresent(String.self, forKey: .name)
        givenName = try? c.decodeIfPresent(String.self, forKey: .givenName)
        familyName = try? c.decodeIfPresent(String.self, forKey: .familyName)
        email = try? c.decodeIfPresent(String.self, forKey: .email)
        locale = try? c.decodeIfPresent(String.self, forKey: .locale)
        version = try? c.decodeIfPresent(String.self, forKey: .version)
        messageType = try? c.decodeIfPresent(String.self, forKey: .messageType)
        deploymentID = try? c.decodeIfPresent(String.self, forKey: .deploymentID)
        targetLinkURI = try? c.decodeIfPresent(String.self, forKey: .targetLinkURI)
        resourceLink = try? c.decodeIfPresent(ResourceLink.self, forKey: .resourceLink)
        roles = try? c.decodeIfPresent([String].self, forKey: .roles)
        context = try? c.decodeIfPresent(Context.self, forKey: .context)
        if let raw = try? c.decodeIfPresent([String: CustomValue].self, forKey: .custom) {
            custom = raw.mapValues(\.text)
        }
        deepLinkingSettings = try? c.decodeIfPresent(DeepLinkingSettings.self, forKey: .deepLinkingSettings)
        agsEndpoint = try? c.decodeIfPresent(AGSEndpoint.self, forKey: .agsEndpoint)
        launchPresentation = try? c.decodeIfPresent(LaunchPresentation.self, forKey: .launchPresentation)
    }

    /// A custom parameter value: a string by the spec, tolerated as a number or boolean.
    struct CustomValue: Decodable {
        var text: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                text = s
            } else if let b = try? c.decode(Bool.self) {
                text = b ? "true" : "false"
            } else if let i = try? c.decode(Int64.self) {
                text = String(i)
            } else if let d = try? c.decode(Double.self) {
                text = String(d)
            } else {
                text = ""
            }
        }
    }
}
