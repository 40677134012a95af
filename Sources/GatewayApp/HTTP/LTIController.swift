import Crypto
import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore
import Logging
import Metrics
import NIOCore

/// `GET|POST /lti/login`, `POST /lti/login/check`, `POST /lti/login/restart`, `POST /lti/launch`, `POST /lti/deep-link`.
struct LTIController: Sendable {
    let loginHandler: OIDCLoginHandler
    let validator: LaunchValidator
    let bindings: LaunchBindingResolver
    let registrations: RegistrationCache
    let launcher: LabLauncher
    let deepLinking: DeepLinkingController
    let skyPrep: SkyPrepSSO
    let responder: LaunchResponder
    /// Where a launch's answer may send the browser (a lab, SkyPrep): the storage launch page's form leads there.
    let launchForms: FormTargets
    let pages: PageRenderer
    let baseURL: String
    let stateLifetime: TimeInterval
    /// The largest launch form (``FormLimit/launch(maxTokenBytes:)``).
    let launchBodyLimit: Int
    /// The gateway's own origin (`scheme://host[:port]` of `baseURL`), worked out once at start.
    let ownOrigin: String?
    let now: @Sendable () -> Date

    /// `lti_launch_binding_total` by channel, made once rather than looked up in the registry on every launch.
    static let bindingCounters = Dictionary(
        uniqueKeysWithValues: BrowserBindingChannel.allCases.map {
            ($0, Counter(label: "lti_launch_binding_total", dimensions: [("channel", $0.rawValue)]))
        })

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/lti/login") { request, context in try await self.login(request, context: context) }
        router.post("/lti/login") { request, context in try await self.login(request, context: context) }
        router.post("/lti/login/check") { request, context in try await self.checkCookie(request, context: context) }
        router.post("/lti/login/restart") { request, context in try await self.restart(request, context: context) }
        router.post("/lti/launch") { request, context in try await self.launch(request, context: context) }
        router.post("/lti/deep-link") { request, context in try await self.launch(request, context: context) }
        // A reloaded or bookmarked launch address: launches start from the LMS (its form post), not from here.
        for path in ["/lti/launch", "/lti/deep-link"] {
            router.get(RouterPath(path)) { _, _ in
                pages.messagePage(
                    title: "Open this activity from your course",
                    message:
                        "Launches start in your LMS: go back to your course and open the activity there. This address only takes the launch your LMS sends, so it cannot be reloaded or bookmarked.",
                    status: .methodNotAllowed)
            }
        }
    }

    /// OIDC third-party-initiated login: a fresh state bound to this browser by its cookies, then the platform.
    ///
    /// When the platform offers LTI Platform Storage (`lti_storage_target`, or its options) and the login is
    /// not in a top-level window, the answer is a page that also keeps a per-login secret in the platform's
    /// storage before going on; the cookies are set either way, because some platforms announce storage
    /// they cannot serve (`reference/lti-advantage.md` §1).
    func login(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request)
        let loginRequest = try OIDCLoginRequest(parameters: parameters)
        let registration = try await loginHandler.registration(for: loginRequest)
        let options = try await registrations.launchOptions(registrationID: registration.id)
        let frame = PlatformStorageDecision.frame(
            storageTarget: loginRequest.ltiStorageTarget, options: options,
            fetchDestination: request.headers[.secFetchDest])
        context.framedBy(registration, options: options)
        let redirect = try await loginHandler.login(loginRequest, registration: registration, platformStorageFrame: frame, now: now())
        context.logger.info(
            "login",
            metadata: [
                "lti.iss": "\(loginRequest.issuer)", "lti.client_id": "\(registration.clientID)",
                "lti.registration": "\(registration.id)", "lti.platform_storage": "\(frame == nil ? "no" : "offered")",
            ])
        var response: Response
        if let frame, let secret = redirect.storageSecret, let restartKey = redirect.restartKey,
            let origin = PlatformStorageTarget.origin(of: registration, options: options)
        {
            let target = PlatformStorageTarget(key: PlatformStorageSecret.key(forState: redirect.state), origin: origin, frame: frame)
            response = pages.storageLoginPage(
                authorizationURL: redirect.authorizationURL, state: redirect.state, secret: secret,
                target: target, base: baseURL, restartKey: restartKey)
        } else {
            response = Response(status: .found, headers: [.location: redirect.authorizationURL, .cacheControl: "no-store"])
        }
        response.headers[values: .setCookie].append(contentsOf: StateCookies.expireOldest(in: request.headers[.cookie]))
        response.headers[values: .setCookie].append(contentsOf: StateCookies.set(for: redirect.state, maxAge: Int(stateLifetime)))
        return response
    }

    /// `POST /lti/login/check` (form `state`): whether this request carries the state cookie of `state`, so that
    /// the login page in an LMS frame knows whether it needs the platform's storage. Reads nothing else.
    func checkCookie(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request)
        let state = parameters["state"] ?? ""
        let cookie =
            !state.isEmpty
            && StateCookies.value(GatewayCookieNames.stateCookieNames(for: state), in: request.cookies).map { constantTimeEquals($0.value, state) }
                == true
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: cookie ? #"{"cookie":true}"# : #"{"cookie":false}"#)))
    }

    /// `POST /lti/login/restart` (form `login`): starts a login that could not be tied to its LMS frame again,
    /// for a new top-level window (first-party cookies), with the parameters kept for it server-side.
    func restart(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request)
        let redirect = try await loginHandler.restart(restartKey: parameters["login"] ?? "", now: now())
        context.logger.info(
            "login started again in a new window",
            metadata: [
                "lti.client_id": "\(redirect.registration.clientID)", "lti.registration": "\(redirect.registration.id)",
            ])
        var response = Response(status: .seeOther, headers: [.location: redirect.authorizationURL, .cacheControl: "no-store"])
        response.headers[values: .setCookie].append(contentsOf: StateCookies.expireOldest(in: request.headers[.cookie]))
        response.headers[values: .setCookie].append(contentsOf: StateCookies.set(for: redirect.state, maxAge: Int(stateLifetime)))
        return response
    }

    /// Whether this POST comes from one of the gateway's own pages (the storage launch page): the browser
    /// says `Sec-Fetch-Site: same-origin`, or — in a browser without Fetch Metadata — sends the gateway's own
    /// `Origin`. A storage secret posted from any other site is refused: otherwise a page elsewhere could post
    /// someone else's token, state and secret from a victim's browser (login forgery).
    func postedByGatewayPage(_ request: Request) -> Bool {
        if let site = request.headers[.secFetchSite] { return site == "same-origin" }
        guard let origin = request.headers[.origin], let own = ownOrigin else { return false }
        return origin.lowercased() == own
    }

    /// The id_token launch: tie it to the browser (cookie, or platform storage), every checklist rule, then
    /// dispatch by message type.
    func launch(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await FormParameters.of(request, limit: launchBodyLimit)
        let state = parameters["state"]
        let cookieNames = GatewayCookieNames.stateCookieNames(for: state ?? "")  // once: a digest of the state
        let evidence = LaunchBindingEvidence(
            cookie: state == nil ? nil : StateCookies.value(cookieNames, in: request.cookies),
            storageSecret: parameters["lti_storage_secret"], storageFailed: parameters["lti_storage_error"] != nil,
            postedByGatewayPage: postedByGatewayPage(request))
        let binding: BrowserBinding
        switch try await bindings.step(state: state, evidence: evidence, now: now()) {
        case .validate(let found):
            binding = found
        case .readPlatformStorage(let key, let frame, let registrationID):
            guard let registration = try await registrations.registration(id: registrationID) else {
                throw LaunchRefusal(.registrationUnknown, "The platform registration for this launch no longer exists.", rule: "Launch 1")
            }
            let options = try await registrations.launchOptions(registrationID: registration.id)
            context.framedBy(registration, options: options)
            context.logger.info("launch without its state cookie; reading the platform's storage")
            return pages.storageLaunchPage(
                action: baseURL + request.uri.path, idToken: parameters["id_token"] ?? "", state: state ?? "", formAction: launchForms.formAction,
                target: PlatformStorageTarget(key: key, origin: PlatformStorageTarget.origin(of: registration, options: options) ?? "", frame: frame))
        case .offerNewWindow(let restartKey, let registrationID):
            if let reason = parameters["lti_storage_error"] {
                context.logger.notice("platform storage gave no secret", metadata: ["lti.storage_error": "\(StorageFailure(reason))"])
            }
            let registration = try await registrations.registration(id: registrationID)
            if let registration { context.framedBy(registration, options: try await registrations.launchOptions(registrationID: registrationID)) }
            let authOrigin = registration.flatMap { PlatformStorageTarget.origin(of: $0.authURL) }
            throw GatewayError.notThisBrowser(
                restart: NewWindowRestart(url: baseURL + "/lti/login/restart", restartKey: restartKey, platformOrigin: authOrigin))
        }
        let launch = try await validator.validate(idToken: parameters["id_token"], state: state, binding: binding, now: now())
        Self.bindingCounters[launch.channel]?.increment()
        var context = context
        context.logger[metadataKey: "lti.registration"] = .string(launch.registration.id)
        context.logger[metadataKey: "lti.binding"] = .string(launch.channel.rawValue)
        var response: Response
        switch launch.messageType {
        case .resourceLinkRequest:
            let trace = LaunchTrace(referenceID: context.referenceID, logger: context.logger)
            let outcome =
                SkyPrepSSO.isWanted(by: launch.token)
                ? try await skyPrep.launch(launch, trace: trace, now: now())
                : try await launcher.launch(launch, trace: trace, now: now())
            response = try responder.response(outcome, reference: context.referenceID, returnURL: launch.token.launchPresentation?.returnURL)
        case .deepLinkingRequest:
            response = try await deepLinking.startPicker(launch, context: context)
        }
        if response.headers[.contentSecurityPolicy] != nil {  // a page (not the redirect into a lab): its platform may frame it
            context.framedBy(launch.registration, options: try await registrations.launchOptions(registrationID: launch.registration.id))
        }
        response.headers[values: .setCookie].append(contentsOf: StateCookies.expire(cookieNames))
        return response
    }

}
