/// Why the gateway refused an OIDC login or an id_token launch.
///
/// Each ``Code`` names one rule of `reference/lti-checklist.md`; its raw value is stable and safe as a
/// log field and metric label. The ``message`` is plain words for the learner or LMS admin and never
/// contains a token, state, nonce or key.
public struct LaunchRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        // Login (checklist "Login")
        case loginParameterMissing = "login_parameter_missing"
        case loginParameterTooLong = "login_parameter_too_long"
        case loginParameterInvalid = "login_parameter_invalid"
        case registrationUnknown = "registration_unknown"
        case registrationAmbiguous = "registration_ambiguous"
        case targetLinkURIForeign = "target_link_uri_foreign"
        case loginRestartUnknown = "login_restart_unknown"
        // Launch rule 1
        case stateMissing = "state_missing"
        case stateUnknown = "state_unknown"
        case stateNotThisBrowser = "state_not_this_browser"
        case storageSecretMismatch = "storage_secret_mismatch"
        case storageNotOffered = "storage_not_offered"
        case storageSecretForeign = "storage_secret_foreign"
        // Launch rule 2
        case tokenMissing = "token_missing"
        case tokenTooLarge = "token_too_large"
        case tokenMalformed = "token_malformed"
        case algorithmNotAllowed = "algorithm_not_allowed"
        case criticalHeaderUnsupported = "crit_unsupported"
        case keyIDMissing = "kid_missing"
        // Launch rule 3
        case keyIDUnknown = "kid_unknown"
        case platformKeysUnavailable = "platform_keys_unavailable"
        // Launch rule 4
        case signatureInvalid = "signature_invalid"
        // Launch rule 5
        case issuerMismatch = "issuer_mismatch"
        // Launch rule 6
        case audienceMismatch = "audience_mismatch"
        case authorizedPartyMissing = "azp_missing"
        case authorizedPartyMismatch = "azp_mismatch"
        // Launch rule 7
        case expired = "token_expired"
        case expiryMissing = "exp_missing"
        case issuedInFuture = "iat_in_future"
        case issuedTooLongAgo = "iat_too_old"
        case issuedAtMissing = "iat_missing"
        case notYetValid = "nbf_in_future"
        // Launch rule 8
        case nonceMissing = "nonce_missing"
        case nonceMismatch = "nonce_mismatch"
        case nonceReplayed = "nonce_replayed"
        // Launch rules 9–16
        case versionInvalid = "version_invalid"
        case messageTypeMissing = "message_type_missing"
        case messageTypeUnsupported = "message_type_unsupported"
        case deploymentMissing = "deployment_id_missing"
        case deploymentTooLong = "deployment_id_too_long"
        case deploymentUnknown = "deployment_id_unknown"
        case targetLinkURIMissing = "target_link_uri_missing"
        case resourceLinkMissing = "resource_link_id_missing"
        case resourceLinkTooLong = "resource_link_id_too_long"
        case rolesMissing = "roles_missing"
        case subjectMissing = "sub_missing"
        case subjectTooLong = "sub_too_long"
        case deepLinkingSettingsInvalid = "deep_linking_settings_invalid"
    }

    public var code: Code
    /// Plain words for the person who sees the page; never contains a secret or an echoed token.
    public var message: String
    /// The checklist rule, e.g. "Launch 7".
    public var rule: String

    public init(_ code: Code, _ message: String, rule: String) {
        self.code = code
        self.message = message
        self.rule = rule
    }

    public var description: String { "\(code.rawValue) (\(rule)): \(message)" }
}
