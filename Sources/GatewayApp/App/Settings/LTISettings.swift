/// How LTI messages are checked and answered: launches, logins and deep linking.
public struct LTISettings: SettingsArea {
    /// Leeway for `exp` / `iat` / `nbf`.
    public var clockSkew = Duration.seconds(30)
    /// How long a login waits for its launch.
    public var stateLifetime = Duration.seconds(600)
    /// Largest accepted id_token.
    public var maxTokenBytes = 64 * 1024
    /// An unknown kid re-fetches a platform's JWKS at most once per this time.
    public var jwksRefetchInterval = Duration.seconds(10)
    /// How long an instructor may take in the lab picker.
    public var pickerLifetime = Duration.seconds(3600)
    /// Default maximum score of gradebook columns created by deep linking.
    public var defaultScoreMaximum = 100.0
    /// Attempts of one score delivery before it is held as failed for an operator.
    public var scoreAttempts = 12
    /// Wait before a failed score delivery is tried again; doubles up to an hour, ±20 %.
    public var scoreRetry = Duration.seconds(30)
    /// Whether platforms registered dynamically wait for `platforms approve` before their launches are accepted.
    public var registrationApproval = false

    public init() {}

    public static let settings: [Setting<Self>] = [
        .duration("GATEWAY_CLOCK_SKEW_SECONDS", \.clockSkew, "leeway for `exp` / `iat` / `nbf`", range: 0...300),
        .duration("GATEWAY_STATE_TTL_SECONDS", \.stateLifetime, "how long a login waits for its launch", range: 30...86_400),
        .integer(
            "GATEWAY_MAX_TOKEN_BYTES", \.maxTokenBytes, "largest id_token accepted", isAllowed: { $0 >= 4096 && $0 <= 1 << 20 },
            rule: "4096…1048576"),
        .duration(
            "GATEWAY_JWKS_REFETCH_SECONDS", \.jwksRefetchInterval, "an unknown kid re-fetches a platform's JWKS at most this often",
            range: 0.1...3600),
        .duration("GATEWAY_PICKER_TTL_SECONDS", \.pickerLifetime, "how long an instructor may take in the lab picker", range: 60...86_400),
        .number(
            "GATEWAY_SCORE_MAXIMUM", \.defaultScoreMaximum, "default maximum score of gradebook columns created with links", range: 1...10_000),
        .integer(
            "GATEWAY_SCORE_ATTEMPTS", \.scoreAttempts,
            "attempts of one score delivery to the LMS before it is held as failed (`outbox list`, `outbox retry`)", allowed: 1...100),
        .duration(
            "GATEWAY_SCORE_RETRY_SECONDS", \.scoreRetry,
            "wait before a failed score delivery is tried again; doubles after each failure up to an hour, ±20 %", range: 0.05...3600),
        .flag(
            "GATEWAY_REGISTRATION_APPROVAL", \.registrationApproval,
            "platforms registered dynamically (through an invitation) wait for `platforms approve ID` before their launches are accepted"),
    ]
}
