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

    public init(id: String, issuer: String, clientID: String, authURL: String, tokenURL: String,
                jwksURL: String, deploymentIDs: [String], createdAt: Date) {
        self.id = id
        self.issuer = issuer
        self.clientID = clientID
        self.authURL = authURL
        self.tokenURL = tokenURL
        self.jwksURL = jwksURL
        self.deploymentIDs = deploymentIDs
        self.createdAt = createdAt
    }
}

/// The one-time login state created by the OIDC login and consumed by the launch.
///
/// - Important: `state` and `nonce` are secrets: never log them or render them.
public struct LoginState: Sendable, Equatable {
    public var state: String
    public var nonce: String
    public var registrationID: String
    public var targetLinkURI: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(state: String, nonce: String, registrationID: String, targetLinkURI: String,
                createdAt: Date, expiresAt: Date) {
        self.state = state
        self.nonce = nonce
        self.registrationID = registrationID
        self.targetLinkURI = targetLinkURI
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
