import HTTPTypes
import LTICore

/// An error the gateway shows to a person: a stable code, an HTTP status, and plain words.
///
/// Thrown by controllers; ``GatewayErrorMiddleware`` renders it (HTML page or JSON) with the request's
/// reference id and logs it. `underlying` goes to the log only, never to the page.
public struct GatewayError: Error, Sendable {
    /// A refusal's stable identifier, safe as a log field and metric label (e.g. `state_unknown`, `labid_missing`):
    /// an LTI rule's code, a launch's or a picker's failure code, or one of the HTTP-level codes here — never free text.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// An LTI login or launch rule (LTICore's refusal codes).
        public init(_ refusal: LaunchRefusal.Code) { self.init(refusal.rawValue) }
        /// A resource-link launch that opened nothing.
        init(_ failure: LaunchFailure.Code) { self.init(failure.identifier) }
        /// A lab picker that could not open, or a refused submission.
        init(_ failure: DeepLinkFailure.Code) { self.init(failure.rawValue) }

        public static let notFound = Code("not_found")
        public static let requestTooLarge = Code("request_too_large")
        /// A request whose body did not arrive within `GATEWAY_REQUEST_READ_SECONDS`.
        public static let requestTimeout = Code("request_timeout")
        /// A request the HTTP parser could not read (broken chunked encoding, a bad header).
        public static let malformedRequest = Code("malformed_request")
        /// The database cannot be reached, or is too far behind to take another write: try again shortly.
        public static let storageUnavailable = Code("storage_unavailable")
        public static let methodNotAllowed = Code("method_not_allowed")
        /// An operators' route asked without (or with a wrong) bearer token.
        public static let unauthorized = Code("unauthorized")
        public static let badRequest = Code("bad_request")
        /// Admin API: a missing, unknown, expired or deleted API key.
        public static let authenticationError = Code("authentication_error")
        /// Admin API: a key without the scope the route needs.
        public static let forbidden = Code("forbidden")
        /// Admin API: a parameter missing or wrong (named in `param`).
        public static let invalidRequest = Code("invalid_request")
        /// Admin API: a change that contradicts what is stored.
        public static let conflict = Code("conflict")
        /// Admin API: too many failed authentications from one address; try again later.
        public static let rateLimited = Code("rate_limited")
        /// A dynamic registration refused: no valid invitation, or the platform's configuration or answer.
        public static let registrationRefused = Code("registration_refused")
        public static let internalError = Code("internal_error")

        public var description: String { rawValue }
    }

    public var code: Code
    public var status: HTTPResponse.Status
    /// Short headline for the page.
    public var title: String
    /// What happened and what to do, in plain words. Never contains a secret or a raw error.
    public var message: String
    /// The checklist rule, when the error is an LTI refusal.
    public var rule: String?
    public var underlying: (any Error)?
    /// Set when the page should offer to start the learner's login again in a new window.
    var newWindow: NewWindowRestart?
    /// Where the page's "Back to your course" goes: the validated launch's `launch_presentation.return_url`
    /// (see ``CourseReturn``); nil before a launch is validated.
    var returnURL: String?
    /// The `WWW-Authenticate` challenge of a 401 that asks for credentials (e.g. `Bearer`).
    var challenge: String?
    /// Admin API: the request parameter at fault.
    var param: String?
    /// Seconds after which the same request may succeed, when not the outage default.
    var retryAfterSeconds: Int?

    /// Whether the connection closes after this answer: the rest of an oversized, late or unreadable request is
    /// never read, and its socket is released at once.
    var closesConnection: Bool { [.requestTooLarge, .requestTimeout, .malformedRequest].contains(code) }

    /// Seconds after which the same request may succeed (`Retry-After`), for a refusal caused by load or an outage.
    var retryAfter: Int? { retryAfterSeconds ?? (code == .storageUnavailable ? 5 : nil) }

    public init(
        code: Code, status: HTTPResponse.Status, title: String, message: String, rule: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.status = status
        self.title = title
        self.message = message
        self.rule = rule
        self.underlying = underlying
    }

    /// An LTI login or launch refusal: 400 (401 for forgery-class failures) with the rule named.
    init(_ refusal: LaunchRefusal) {
        let forged: Set<LaunchRefusal.Code> = [
            .signatureInvalid, .algorithmNotAllowed, .criticalHeaderUnsupported, .keyIDUnknown, .issuerMismatch,
            .audienceMismatch, .authorizedPartyMismatch, .authorizedPartyMissing,
            .nonceMismatch, .nonceReplayed, .stateNotThisBrowser, .stateUnknown,
            .storageSecretMismatch, .storageNotOffered, .storageSecretForeign,
        ]
        let unavailable = refusal.code == .platformKeysUnavailable
        let advice =
            unavailable
            ? " Please try again in a minute."
            : Self.passing.contains(refusal.code)
                ? " Please go back to your course and open the activity again."
                : " Opening it again will not help: please tell your instructor or LMS administrator, with the reference below."
        self.init(
            code: Code(refusal.code),
            status: unavailable ? .badGateway : forged.contains(refusal.code) ? .unauthorized : .badRequest,
            title: unavailable ? "The LMS could not be reached" : "This launch was refused",
            message: refusal.message + advice, rule: refusal.rule)
    }

    /// Refusals that a fresh launch from the course can get past (an expired or used login, a stale page); every other
    /// refusal (an unknown deployment, a signature, a registration) needs the instructor or the LMS administrator.
    static let passing: Set<LaunchRefusal.Code> = [
        .stateMissing, .stateUnknown, .stateNotThisBrowser, .storageSecretMismatch, .storageNotOffered, .tokenMissing, .expired,
        .issuedTooLongAgo, .issuedInFuture, .notYetValid, .nonceReplayed, .loginRestartUnknown,
    ]

    /// A launch that nothing ties to this browser (checklist "Launch" rule 1) although its login is known:
    /// refused, with a way on in a new window.
    static func notThisBrowser(restart: NewWindowRestart) -> GatewayError {
        var error = GatewayError(
            code: Code(LaunchRefusal.Code.stateNotThisBrowser), status: .unauthorized, title: "Open this activity in a new window",
            message:
                "This launch could not be tied to your browser inside the course page (its cookies are blocked there and the LMS keeps nothing for the activity).",
            rule: "Launch 1")
        error.newWindow = restart
        return error
    }

    /// Admin API: no key, or one that is unknown, expired or deleted. The message is the contract's, word for word.
    static let authentication: GatewayError = {
        var error = GatewayError(
            code: .authenticationError, status: .unauthorized, title: "Not allowed", message: "Invalid or missing API key.")
        error.challenge = "Bearer"
        return error
    }()

    /// Admin API: a key without the route's scope. The message is the contract's, word for word.
    static let missingScope = GatewayError(
        code: .forbidden, status: .forbidden, title: "Not allowed", message: "This API key does not have the required scope.")

    /// Admin API: a wrong or missing parameter.
    static func invalidRequest(_ message: String, param: String?) -> GatewayError {
        var error = GatewayError(code: .invalidRequest, status: .badRequest, title: "Request refused", message: message)
        error.param = param
        return error
    }

    static func notFound() -> GatewayError {
        GatewayError(code: .notFound, status: .notFound, title: "Page not found", message: "There is nothing at this address.")
    }
}

/// Where the "open in a new window" form goes, and the login it starts again.
struct NewWindowRestart: Sendable {
    /// `…/lti/login/restart`.
    var url: String
    /// The login's ``LoginState/restartKey``.
    var restartKey: String
    /// The origin of the platform's authorization endpoint, where the restarted login goes (the page's form may post there).
    var platformOrigin: String?
}
