import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LTICore
import Logging

/// `GET|POST /lti/login`, `POST /lti/launch`, `POST /lti/deep-link`.
struct LTIController: Sendable {
    let loginHandler: OIDCLoginHandler
    let validator: LaunchValidator
    let launcher: LabLauncher
    let deepLinking: DeepLinkingController
    let skyPrep: SkyPrepSSO
    let stateLifetime: TimeInterval
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/lti/login") { request, context in try await self.login(request, context: context) }
        router.post("/lti/login") { request, context in try await self.login(request, context: context) }
        router.post("/lti/launch") { request, context in try await self.launch(request, context: context) }
        router.post("/lti/deep-link") { request, context in try await self.launch(request, context: context) }
    }

    /// OIDC third-party-initiated login: a fresh state bound to this browser by a cookie, then the platform.
    func login(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request, context: context)
        let loginRequest = try OIDCLoginRequest(parameters: parameters)
        let redirect = try await loginHandler.login(loginRequest, now: now())
        context.logger.info("login", metadata: [
            "lti.iss": "\(loginRequest.issuer)", "lti.client_id": "\(redirect.registration.clientID)",
            "lti.registration": "\(redirect.registration.id)",
        ])
        // Cookie-less launches (LTI Platform Storage, `lti_storage_target`) will add a second channel here;
        // the cookie is always set because some platforms announce storage they cannot serve.
        return Response(status: .found, headers: [
            .location: redirect.authorizationURL,
            .setCookie: Self.stateCookie(for: redirect.state, maxAge: Int(stateLifetime)),
            .cacheControl: "no-store",
        ])
    }

    /// The id_token launch: every checklist rule, then dispatch by message type.
    func launch(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request, context: context)
        let state = parameters["state"]
        let browserState = state.flatMap { request.cookies[Self.stateCookieName(for: $0)]?.value }
        let launch = try await validator.validate(idToken: parameters["id_token"], state: state, browserState: browserState, now: now())
        var context = context
        context.logger[metadataKey: "lti.registration"] = .string(launch.registration.id)
        switch launch.messageType {
        case .resourceLinkRequest:
            var response = SkyPrepSSO.isWanted(by: launch.token)
                ? try await skyPrep.launch(launch, context: context, now: now())
                : try await launcher.launch(launch, context: context, now: now())
            response.headers[values: .setCookie].append(Self.expiredStateCookie(for: state ?? ""))
            return response
        case .deepLinkingRequest:
            var response = try await deepLinking.startPicker(launch, context: context)
            response.headers[values: .setCookie].append(Self.expiredStateCookie(for: state ?? ""))
            return response
        }
    }

    static func stateCookieName(for state: String) -> String { GatewayCookieNames.stateCookieName(for: state) }

    static func stateCookie(for state: String, maxAge: Int) -> String {
        "\(stateCookieName(for: state))=\(state); Path=/lti; Max-Age=\(maxAge); HttpOnly; Secure; SameSite=None"
    }

    static func expiredStateCookie(for state: String) -> String {
        "\(stateCookieName(for: state))=; Path=/lti; Max-Age=0; HttpOnly; Secure; SameSite=None"
    }
}

/// Names of the cookies the gateway sets.
public enum GatewayCookieNames {
    /// One cookie per login, named after a digest of its state, so several launches in one browser
    /// (several LMS frames) do not overwrite each other: `lti_gw_state_` and 12 hex digits of SHA-256(state).
    public static func stateCookieName(for state: String) -> String {
        "lti_gw_state_" + Hex.encode(SHA256.hash(data: Data(state.utf8)).prefix(6))
    }
}
