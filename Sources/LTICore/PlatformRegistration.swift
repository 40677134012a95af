import Foundation

/// An LMS platform registered with the gateway: one (issuer, client id) pair and its endpoints.
///
/// One issuer may hold many registrations (Canvas cloud uses one issuer for every customer), so a
/// registration is always found by issuer **and** client id (checklist "Login" rule 2).
public struct PlatformRegistration: Sendable, Equatable, Codable {
    public var id: String
    public var issuer: String
    public var clientID: String
    /// The platform's OIDC authorization endpoint (where the login redirects).
    public var authURL: String
    /// The platform's OAuth 2 token endpoint (services).
    public var tokenURL: String
    /// The platform's public key set.
    public var jwksURL: String
    /// Deployment ids registered for this (issuer, client id) (checklist "Launch" rule 11).
    public var deploymentIDs: [String]
    public var createdAt: Date
    /// How it was registered: `cli`, `api` or `dynamic` (nil: before this was recorded, by the command line).
    public var origin: String?
    /// Whether its launches are accepted (a dynamic registration may wait for an operator's approval).
    public var approved: Bool
    /// The service scopes the platform granted at a dynamic registration (it may grant fewer than asked); nil when
    /// registered by hand.
    public var grantedScopes: [String]?

    public init(
        id: String, issuer: String, clientID: String, authURL: String, tokenURL: String,
        jwksURL: String, deploymentIDs: [String], createdAt: Date, origin: String? = nil, approved: Bool = true,
        grantedScopes: [String]? = nil
    ) {
        self.id = id
        self.issuer = issuer
        self.clientID = clientID
        self.authURL = authURL
        self.tokenURL = tokenURL
        self.jwksURL = jwksURL
        self.deploymentIDs = deploymentIDs
        self.createdAt = createdAt
        self.origin = origin
        self.approved = approved
        self.grantedScopes = grantedScopes
    }
}

/// The one-time login state created by the OIDC login and consumed by the launch.
///
/// Besides the state and nonce it keeps what the login was started with, so that the same login can be
/// started again in a new window when the LMS frame cannot be tied to the browser (no cookie, no storage).
///
/// - Important: `state`, `nonce` and the storage secret behind `storageSecretDigest` are secrets: never log
///   them, and render them only into the storage login page that hands them to the browser that started the
///   login. `restartKey` is unguessable but binds nothing: it only starts a new login, which the platform
///   answers for whoever is signed in to it.
public struct LoginState: Sendable, Equatable {
    public var state: String
    public var nonce: String
    public var registrationID: String
    public var targetLinkURI: String
    public var createdAt: Date
    public var expiresAt: Date
    /// The login's `login_hint` (echoed to the platform when the login is started again).
    public var loginHint: String
    /// The login's `lti_message_hint`, if any.
    public var ltiMessageHint: String?
    /// The login's `lti_deployment_id`, if any.
    public var deploymentHint: String?
    /// The handle of this login on the "open in a new window" page; given only to logins that may need it
    /// (a storage login, or a launch that offers the new window), so that most logins index nothing more.
    public var restartKey: String?
    /// SHA-256 (hex) of the browser secret the login page keeps in the platform's storage (LTI Platform
    /// Storage); nil when the login did not offer storage.
    public var storageSecretDigest: String?
    /// The frame the login page sent storage messages to (`lti_storage_target` or the platform's configured
    /// frame); nil when the login did not offer storage.
    public var storageFrame: String?
    /// True for a login started again in a top-level window because the frame could not be bound.
    public var startedInNewWindow: Bool

    public init(
        state: String, nonce: String, registrationID: String, targetLinkURI: String,
        createdAt: Date, expiresAt: Date, loginHint: String = "", ltiMessageHint: String? = nil,
        deploymentHint: String? = nil, restartKey: String? = nil,
        storageSecretDigest: String? = nil, storageFrame: String? = nil, startedInNewWindow: Bool = false
    ) {
        self.state = state
        self.nonce = nonce
        self.registrationID = registrationID
        self.targetLinkURI = targetLinkURI
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.loginHint = loginHint
        self.ltiMessageHint = ltiMessageHint
        self.deploymentHint = deploymentHint
        self.restartKey = restartKey
        self.storageSecretDigest = storageSecretDigest
        self.storageFrame = storageFrame
        self.startedInNewWindow = startedInNewWindow
    }
}
