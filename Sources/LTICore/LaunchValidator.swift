import Foundation
import Logging

/// A launch that passed every rule of checklist "Launch".
public struct ValidatedLaunch: Sendable {
    public var registration: PlatformRegistration
    public var token: LTIIDToken
    public var messageType: LTIMessageType
    public var deploymentID: String
    /// How the launch was tied to the browser that started its login.
    public var channel: BrowserBindingChannel

    /// A launch as ``LaunchValidator`` hands it on (also for tests of what follows validation).
    public init(
        registration: PlatformRegistration, token: LTIIDToken, messageType: LTIMessageType, deploymentID: String,
        channel: BrowserBindingChannel
    ) {
        self.registration = registration
        self.token = token
        self.messageType = messageType
        self.deploymentID = deploymentID
        self.channel = channel
    }
}

/// Validates an id_token launch, every rule of checklist "Launch", in the checklist's order.
///
/// - Important: Nothing here trusts the token before its signature is verified with a key from the
///   registration's own JWKS, and no refusal message echoes the token, state or nonce.
public struct LaunchValidator: Sendable {
    let registrations: any RegistrationLookup
    let states: any LoginStateStore
    let keys: any PlatformKeyProvider
    let policy: LaunchPolicy
    let decoder = JSONDecoder()

    public init(
        registrations: any RegistrationLookup, states: any LoginStateStore, keys: any PlatformKeyProvider, policy: LaunchPolicy
    ) {
        self.registrations = registrations
        self.states = states
        self.keys = keys
        self.policy = policy
    }

    /// Validates the posted `id_token` and `state`, with the state cookie's value as the browser's binding.
    public func validate(idToken: String?, state: String?, browserState: String?, now: Date) async throws -> ValidatedLaunch {
        try await validate(idToken: idToken, state: state, binding: browserState.map { .cookie($0, partitioned: false) } ?? .none, now: now)
    }

    /// Validates the posted `id_token` and `state`.
    ///
    /// - Parameters:
    ///   - binding: what ties this request to the browser that started the login (its state cookie, or the
    ///     secret platform storage gave back).
    ///   - now: the time to validate at (never read inside).
    public func validate(idToken: String?, state: String?, binding: BrowserBinding, now: Date) async throws -> ValidatedLaunch {
        // Rule 1: a state we issued, unused, unexpired, belonging to this browser; consumed once all rules hold.
        guard let state, !state.isEmpty else {
            throw LaunchRefusal(.stateMissing, "The launch carries no state.", rule: "Launch 1")
        }
        var channel = BrowserBindingChannel.cookie
        switch binding {
        case .cookie(let value, let partitioned):
            guard constantTimeEquals(value, state) else { throw Self.notThisBrowser }
            channel = partitioned ? .partitionedCookie : .cookie
        case .platformStorage(let secret):
            guard !secret.isEmpty, secret.utf8.count <= PlatformStorageSecret.maxLength else {
                throw LaunchRefusal(.storageSecretMismatch, "This launch's browser secret is not the one kept at login.", rule: "Launch 1")
            }
            channel = .platformStorage
        case .none:
            throw Self.notThisBrowser
        }
        // Rule 2 (size) before any store work, so that oversized posts change nothing.
        guard let idToken, !idToken.isEmpty else {
            throw LaunchRefusal(.tokenMissing, "The launch carries no id_token.", rule: "Launch 2")
        }
        guard idToken.utf8.count <= policy.maxTokenBytes else {
            throw LaunchRefusal(.tokenTooLarge, "The launch token is larger than \(policy.maxTokenBytes) bytes.", rule: "Launch 2")
        }
        // The state is read here and consumed only once every rule has passed (at the end, with its nonce: rule 8), so a
        // refused launch changes nothing and a forged or replayed one never reaches the store's write path.
        guard let loginState = try await states.loginState(state, now: now) else {
            throw LaunchRefusal(.stateUnknown, "The launch state is unknown, already used or expired.", rule: "Launch 1")
        }
        if case .platformStorage(let secret) = binding {
            guard let digest = loginState.storageSecretDigest else {
                throw LaunchRefusal(
                    .storageNotOffered, "This launch answers through platform storage, but its login did not use it.", rule: "Launch 1")
            }
            guard constantTimeEquals(PlatformStorageSecret.digest(secret), digest) else {
                throw LaunchRefusal(.storageSecretMismatch, "This launch's browser secret is not the one kept at login.", rule: "Launch 1")
            }
        }
        if loginState.startedInNewWindow { channel = .newWindow }
        guard let registration = try await registrations.registration(id: loginState.registrationID) else {
            throw LaunchRefusal(.registrationUnknown, "The platform registration for this launch no longer exists.", rule: "Launch 1")
        }

        // Rule 2: compact JWS, RS256 only, no critical extensions, kid present; jku / x5u / jwk ignored.
        let jws = try CompactJWS(idToken)
        guard jws.header.alg == "RS256" else {
            throw LaunchRefusal(.algorithmNotAllowed, "The launch token is not signed with RS256.", rule: "Launch 2")
        }
        guard jws.header.crit == nil else {
            // RFC 7515 §4.1.11: a recipient that does not understand a listed extension must reject the JWS.
            throw LaunchRefusal(
                .criticalHeaderUnsupported, "The launch token requires header extensions (crit) the gateway does not support.", rule: "Launch 2")
        }
        guard let kid = jws.header.kid, !kid.isEmpty else {
            throw LaunchRefusal(.keyIDMissing, "The launch token's header has no kid.", rule: "Launch 2")
        }

        // Rule 3: the key from this registration's JWKS only; unknown kid → one rate-limited re-fetch.
        let key: PlatformPublicKey?
        do {
            key = try await keys.key(kid: kid, jwksURL: registration.jwksURL)
        } catch {
            throw LaunchRefusal(.platformKeysUnavailable, "The platform's public keys could not be fetched.", rule: "Launch 3")
        }
        guard let key else {
            throw LaunchRefusal(.keyIDUnknown, "The launch token names a key the platform does not publish.", rule: "Launch 3")
        }

        // Rule 4.
        guard key.verifiesRS256(signature: jws.signature, signingInput: jws.signingInput) else {
            throw LaunchRefusal(.signatureInvalid, "The launch token's signature does not verify.", rule: "Launch 4")
        }
        guard let token = try? decoder.decode(LTIIDToken.self, from: jws.payload) else {
            throw LaunchRefusal(.tokenMalformed, "The launch token's payload is not a JSON object.", rule: "Launch 2")
        }

        // Rule 5.
        guard token.issuer == registration.issuer else {
            throw LaunchRefusal(.issuerMismatch, "The launch token's issuer is not the registered platform.", rule: "Launch 5")
        }
        try checkAudience(token, clientID: registration.clientID)
        try checkTimes(token, now: now)

        // Rule 8: the nonce bound to the state (consumed with it, below).
        guard let nonce = token.nonce, !nonce.isEmpty else {
            throw LaunchRefusal(.nonceMissing, "The launch token has no nonce.", rule: "Launch 8")
        }
        guard constantTimeEquals(nonce, loginState.nonce) else {
            throw LaunchRefusal(.nonceMismatch, "The launch token's nonce is not the one issued at login.", rule: "Launch 8")
        }

        // Rule 9.
        guard token.version == "1.3.0" else {
            throw LaunchRefusal(.versionInvalid, "The launch is not LTI version 1.3.0.", rule: "Launch 9")
        }
        // Rule 10.
        guard let rawType = token.messageType, !rawType.isEmpty else {
            throw LaunchRefusal(.messageTypeMissing, "The launch has no LTI message type.", rule: "Launch 10")
        }
        guard let messageType = LTIMessageType(rawValue: rawType) else {
            throw LaunchRefusal(.messageTypeUnsupported, "This gateway does not support LTI messages of this type.", rule: "Launch 10")
        }
        // Rule 11.
        guard let deploymentID = token.deploymentID, !deploymentID.isEmpty else {
            throw LaunchRefusal(.deploymentMissing, "The launch has no deployment id.", rule: "Launch 11")
        }
        guard deploymentID.utf8.count <= 255 else {
            throw LaunchRefusal(.deploymentTooLong, "The launch's deployment id is longer than 255 characters.", rule: "Launch 11")
        }
        guard registration.deploymentIDs.contains(deploymentID) else {
            throw LaunchRefusal(.deploymentUnknown, "This deployment of the tool is not registered with the gateway.", rule: "Launch 11")
        }
        // Rule 12.
        guard let target = token.targetLinkURI, !target.isEmpty else {
            throw LaunchRefusal(.targetLinkURIMissing, "The launch has no target_link_uri.", rule: "Launch 12")
        }
        guard policy.isToolURL(target) else {
            throw LaunchRefusal(.targetLinkURIForeign, "The launch's target_link_uri points outside this gateway.", rule: "Launch 12")
        }
        // Rule 13.
        if messageType == .resourceLinkRequest {
            guard let linkID = token.resourceLink?.id, !linkID.isEmpty else {
                throw LaunchRefusal(.resourceLinkMissing, "The launch has no resource link id.", rule: "Launch 13")
            }
            guard linkID.utf8.count <= 255 else {
                throw LaunchRefusal(.resourceLinkTooLong, "The launch's resource link id is longer than 255 characters.", rule: "Launch 13")
            }
        }
        // Rule 14: present, may be empty, any role names.
        guard token.roles != nil else {
            throw LaunchRefusal(.rolesMissing, "The launch has no roles claim.", rule: "Launch 14")
        }
        // Rule 15.
        if let subject = token.subject, !subject.isEmpty {
            guard subject.utf8.count <= 255 else {
                throw LaunchRefusal(.subjectTooLong, "The launch's user id (sub) is longer than 255 characters.", rule: "Launch 15")
            }
        } else if policy.requireSubject {
            throw LaunchRefusal(.subjectMissing, "The launch has no user id (sub).", rule: "Launch 15")
        }
        // Rule 16.
        if messageType == .deepLinkingRequest {
            let settings = token.deepLinkingSettings
            guard let returnURL = settings?.deepLinkReturnURL, URLAuthority(returnURL) != nil,
                settings?.acceptTypes != nil, settings?.acceptPresentationDocumentTargets != nil
            else {
                throw LaunchRefusal(
                    .deepLinkingSettingsInvalid,
                    "The deep-linking request lacks a return URL, accept_types or accept_presentation_document_targets.",
                    rule: "Launch 16")
            }
        }
        // Rules 1 ("consume it") and 8 ("consumed atomically"): one atomic statement removes the state, and with it the
        // only way to present its nonce, since a token is accepted only with the nonce bound to its state. Of two
        // racing posts of one launch, one gets the state; the other — and any later replay — is refused here or, once
        // the state is gone, at rule 1's read. No record of used nonces is kept: it could refuse nothing more.
        guard try await states.consumeLoginState(state, now: now) != nil else {
            throw LaunchRefusal(.nonceReplayed, "The launch token has already been used.", rule: "Launch 8")
        }
        return ValidatedLaunch(
            registration: registration, token: token, messageType: messageType,
            deploymentID: deploymentID, channel: channel)
    }

    static let notThisBrowser = LaunchRefusal(
        .stateNotThisBrowser, "This launch was not started in this browser (its login cookie is missing or different).", rule: "Launch 1")

    /// Rule 6: `aud` contains our client id; several audiences need `azp`; `azp` equals our client id;
    /// no audience we do not trust.
    private func checkAudience(_ token: LTIIDToken, clientID: String) throws {
        let audiences = token.audience?.values ?? []
        guard audiences.contains(clientID) else {
            throw LaunchRefusal(.audienceMismatch, "The launch token is not addressed to this tool's client id.", rule: "Launch 6")
        }
        if audiences.count > 1, token.authorizedParty == nil {
            throw LaunchRefusal(.authorizedPartyMissing, "The launch token has several audiences but no azp.", rule: "Launch 6")
        }
        if let azp = token.authorizedParty, azp != clientID {
            throw LaunchRefusal(.authorizedPartyMismatch, "The launch token's azp is not this tool's client id.", rule: "Launch 6")
        }
        for audience in audiences where audience != clientID && !policy.trustedExtraAudiences.contains(audience) {
            throw LaunchRefusal(.audienceMismatch, "The launch token is also addressed to an audience this tool does not trust.", rule: "Launch 6")
        }
    }

    /// Rule 7, with the configured leeway.
    private func checkTimes(_ token: LTIIDToken, now: Date) throws {
        let t = now.timeIntervalSince1970
        let leeway = policy.clockLeeway
        guard let exp = token.expiresAt else {
            throw LaunchRefusal(.expiryMissing, "The launch token has no expiry (exp).", rule: "Launch 7")
        }
        guard t < exp + leeway else {
            throw LaunchRefusal(.expired, "The launch token has expired; start the activity again from the LMS.", rule: "Launch 7")
        }
        guard let iat = token.issuedAt else {
            throw LaunchRefusal(.issuedAtMissing, "The launch token has no issue time (iat).", rule: "Launch 7")
        }
        guard iat <= t + leeway else {
            throw LaunchRefusal(.issuedInFuture, "The launch token claims to be issued in the future; check the LMS clock.", rule: "Launch 7")
        }
        guard t - iat <= policy.maxTokenAge + leeway else {
            throw LaunchRefusal(.issuedTooLongAgo, "The launch token was issued too long ago.", rule: "Launch 7")
        }
        if let nbf = token.notBefore, t + leeway < nbf {
            throw LaunchRefusal(.notYetValid, "The launch token is not valid yet (nbf); check the LMS clock.", rule: "Launch 7")
        }
    }
}
