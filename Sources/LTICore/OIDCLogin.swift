import Foundation
import GatewaySupport
import Logging

/// A third-party-initiated login request (1EdTech Security Framework §5.1.1.1; checklist "Login" rule 1).
public struct OIDCLoginRequest: Sendable {
    public var issuer: String
    public var loginHint: String
    public var targetLinkURI: String
    public var ltiMessageHint: String?
    public var clientID: String?
    public var deploymentID: String?
    public var ltiStorageTarget: String?

    /// The parameters of a third-party-initiated login (LTI 1.3 §4.1, and Platform Storage's `lti_storage_target`).
    static let knownParameters: Set<String> = [
        "iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id", "lti_storage_target",
    ]

    /// `name` when it is a known parameter; otherwise words that say so without repeating it.
    static func describe(_ name: String) -> String {
        knownParameters.contains(name) ? name : "(one the gateway does not use)"
    }

    /// Longest accepted value of any login parameter.
    public static let maxParameterLength = 4096

    /// Reads the parameters of a GET query or form POST. Throws ``LaunchRefusal`` when one is missing.
    public init(parameters: [String: String]) throws {
        func required(_ name: String) throws -> String {
            guard let value = parameters[name], !value.isEmpty else {
                throw LaunchRefusal(.loginParameterMissing, "The login request has no \(name) parameter.", rule: "Login 1")
            }
            return value
        }
        // The refusal names a parameter only when it is one of LTI's: a name the request made up is never echoed
        // (into the page, the log, or the error pages' cache).
        for (name, value) in parameters where value.utf8.count > Self.maxParameterLength {
            throw LaunchRefusal(.loginParameterTooLong, "The login parameter \(Self.describe(name)) is too long.", rule: "Login 1")
        }
        // Kept with the login state and echoed to the platform: no control characters (a NUL cannot even be stored).
        for (name, value) in parameters where value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw LaunchRefusal(
                .loginParameterInvalid, "The login parameter \(Self.describe(name)) contains control characters.", rule: "Login 1")
        }
        issuer = try required("iss")
        loginHint = try required("login_hint")
        targetLinkURI = try required("target_link_uri")
        ltiMessageHint = parameters["lti_message_hint"]
        clientID = parameters["client_id"].flatMap { $0.isEmpty ? nil : $0 }
        deploymentID = parameters["lti_deployment_id"]
        ltiStorageTarget = parameters["lti_storage_target"]
    }
}

/// What a successful login hands back: where to send the browser and the state to bind to it.
public struct OIDCLoginRedirect: Sendable {
    public var authorizationURL: String
    /// - Important: Secret; goes only into the authorization URL, the browser-binding cookies and the storage
    ///   login page.
    public var state: String
    public var registration: PlatformRegistration
    public var stateExpiresAt: Date
    /// The per-login secret for the platform's storage, when the login offers LTI Platform Storage.
    ///
    /// - Important: Secret; goes only into the login page that hands it to the platform's storage.
    public var storageSecret: String?
    /// The login's handle on the "open in a new window" page, when the login offers platform storage (whose page
    /// links to it); nil otherwise.
    public var restartKey: String?
}

/// Handles the OIDC third-party-initiated login (checklist "Login" rules 1–4).
public struct OIDCLoginHandler: Sendable {
    let registrations: any RegistrationLookup
    let states: any LoginStateStore
    let policy: LaunchPolicy

    public init(registrations: any RegistrationLookup, states: any LoginStateStore, policy: LaunchPolicy) {
        self.registrations = registrations
        self.states = states
        self.policy = policy
    }

    /// Finds the registration, stores a fresh state bound to a fresh nonce, and builds the redirect.
    public func login(_ request: OIDCLoginRequest, now: Date) async throws -> OIDCLoginRedirect {
        try await login(request, registration: registration(for: request), platformStorageFrame: nil, now: now)
    }

    /// Stores a fresh state bound to a fresh nonce for `registration` (found with ``registration(for:)``)
    /// and builds the redirect; with a `platformStorageFrame` (the frame the login page will send storage
    /// messages to), also a per-login secret for the platform's storage.
    public func login(
        _ request: OIDCLoginRequest, registration: PlatformRegistration, platformStorageFrame: String?,
        now: Date
    ) async throws -> OIDCLoginRedirect {
        // Checklist "Launch" rule 12: the launch may only target the gateway itself.
        guard policy.isToolURL(request.targetLinkURI) else {
            throw LaunchRefusal(.targetLinkURIForeign, "The login names a target_link_uri outside this gateway.", rule: "Login 1 / Launch 12")
        }
        return try await begin(
            registration: registration, targetLinkURI: request.targetLinkURI, loginHint: request.loginHint,
            ltiMessageHint: request.ltiMessageHint, deploymentHint: request.deploymentID,
            storageFrame: platformStorageFrame, startedInNewWindow: false, now: now)
    }

    /// Starts the login with `restartKey` again, for a new top-level window: same platform, hints and
    /// target, a fresh state and nonce. The earlier state stays until it is used or expires.
    public func restart(restartKey: String, now: Date) async throws -> OIDCLoginRedirect {
        guard restartKey.utf8.count <= OIDCLoginRequest.maxParameterLength,
            let earlier = try await states.loginState(restartKey: restartKey, now: now)
        else {
            throw LaunchRefusal(.loginRestartUnknown, "This link to open the activity has expired.", rule: "Login 3")
        }
        guard let registration = try await registrations.registration(id: earlier.registrationID) else {
            throw LaunchRefusal(.registrationUnknown, "The platform registration for this launch no longer exists.", rule: "Login 2")
        }
        return try await begin(
            registration: registration, targetLinkURI: earlier.targetLinkURI, loginHint: earlier.loginHint,
            ltiMessageHint: earlier.ltiMessageHint, deploymentHint: earlier.deploymentHint,
            storageFrame: nil, startedInNewWindow: true, now: now)
    }

    private func begin(
        registration: PlatformRegistration, targetLinkURI: String, loginHint: String, ltiMessageHint: String?,
        deploymentHint: String?, storageFrame: String?, startedInNewWindow: Bool,
        now: Date
    ) async throws -> OIDCLoginRedirect {
        let storageSecret = storageFrame.map { _ in PlatformStorageSecret.make() }
        // Checklist "Login" rule 3: ≥128 bits from a CSPRNG each, one-time, short-lived, nonce bound to state.
        let loginState = LoginState(
            state: SecureRandom.token(), nonce: SecureRandom.token(), registrationID: registration.id,
            targetLinkURI: targetLinkURI, createdAt: now, expiresAt: now.addingTimeInterval(policy.stateLifetime),
            loginHint: loginHint, ltiMessageHint: ltiMessageHint, deploymentHint: deploymentHint,
            restartKey: storageFrame.map { _ in SecureRandom.token(byteCount: 16) },
            storageSecretDigest: storageSecret.map(PlatformStorageSecret.digest), storageFrame: storageFrame,
            startedInNewWindow: startedInNewWindow)
        try await states.saveLoginState(loginState)

        // Checklist "Login" rule 4.
        var query: [(String, String)] = [
            ("scope", "openid"),
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("prompt", "none"),
            ("client_id", registration.clientID),
            ("redirect_uri", policy.redirectURI),
            ("login_hint", loginHint),
            ("state", loginState.state),
            ("nonce", loginState.nonce),
        ]
        if let hint = ltiMessageHint { query.append(("lti_message_hint", hint)) }
        let separator = registration.authURL.contains("?") ? "&" : "?"
        let url = registration.authURL + separator + FormEncoding.encode(query)
        return OIDCLoginRedirect(
            authorizationURL: url, state: loginState.state, registration: registration,
            stateExpiresAt: loginState.expiresAt, storageSecret: storageSecret, restartKey: loginState.restartKey)
    }

    /// Checklist "Login" rule 2: by issuer and client id; an issuer alone only when it is unambiguous.
    public func registration(for request: OIDCLoginRequest) async throws -> PlatformRegistration {
        let candidates = try await registrations.registrations(issuer: request.issuer)
        if let clientID = request.clientID {
            guard let match = candidates.first(where: { $0.clientID == clientID }) else {
                throw LaunchRefusal(.registrationUnknown, "No platform is registered for this issuer and client id.", rule: "Login 2")
            }
            return match
        }
        switch candidates.count {
        case 0:
            throw LaunchRefusal(.registrationUnknown, "No platform is registered for this issuer.", rule: "Login 2")
        case 1:
            return candidates[0]
        default:
            throw LaunchRefusal(
                .registrationAmbiguous,
                "Several registrations share this issuer and the login carries no client_id; the LMS must send client_id.",
                rule: "Login 2")
        }
    }
}
