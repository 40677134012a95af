import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore
import Logging

/// The admin API under `/api/v1`: bearer API keys with scopes, JSON in and out. Every route is declared once in
/// ``routes`` with the scope it needs; the OpenAPI description (``AdminAPIDescription``) is held to that table by a test.
struct AdminAPIController: Sendable {
    /// One route: method, path (OpenAPI style, `{id}`), the scope it needs (nil: public), and its handler.
    struct Route: Sendable {
        let method: HTTPRequest.Method
        let path: String
        let scope: APIScope?
        let handle: @Sendable (Call) async throws -> Response
    }

    /// An authorised request being handled.
    struct Call: Sendable {
        let request: Request
        let context: GatewayRequestContext
        let actor: AdministrationActor

        /// A path parameter (percent-decoded).
        func parameter(_ name: String) throws -> String {
            let raw = try context.parameters.require(name)
            return raw.removingPercentEncoding ?? raw
        }

        /// A query parameter.
        func query(_ name: String) -> String? { request.uri.queryParameters[Substring(name)].map(String.init) }
    }

    let administration: Administration
    let throttle: AuthFailureThrottle
    /// The gateway's public base URL (invitation links).
    let baseURL: String

    static let prefix = "/api/v1"

    func addRoutes(to router: Router<GatewayRequestContext>) {
        for route in routes {
            let path = route.path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
            router.on(RouterPath(path), method: route.method) { request, context in
                let actor = try await authorize(request, context, scope: route.scope)
                do {
                    return try await route.handle(Call(request: request, context: context, actor: actor))
                } catch let error as AdministrationError {
                    throw Self.gatewayError(error)
                }
            }
        }
    }

    /// The caller, once its key is valid and holds `scope`.
    ///
    /// - Important: 401 and 403 bodies are the contract's, word for word; failures are counted per address and
    ///   an address with too many is refused before any key is looked up.
    func authorize(_ request: Request, _ context: GatewayRequestContext, scope: APIScope?) async throws -> AdministrationActor {
        guard let scope else { return .anonymous }
        let address = AuthFailureThrottle.client(context.channel.remoteAddress)
        // A valid key always gets through (a shared address, such as a load balancer's, cannot lock operators out);
        // an address past its failures gets no answer on whether its guess was right.
        var key: StoredAPIKey?
        if let secret = OperationsController.bearerToken(request) { key = try await administration.apiKeys.authenticate(secret) }
        guard let key else {
            if let wait = throttle.waitBeforeNextAttempt(address) {
                var error = GatewayError(
                    code: .rateLimited, status: .tooManyRequests, title: "Too many attempts",
                    message: "Too many failed authentications from this address. Try again in \(wait) seconds.")
                error.retryAfterSeconds = wait
                throw error
            }
            throttle.recordFailure(address)
            throw GatewayError.authentication
        }
        let scopes = Set(key.scopes.compactMap(APIScope.init(rawValue:)))
        context.logger.debug("admin API call", metadata: ["gw.api_key": "\(key.id)"])
        guard scopes.contains(scope) else {
            context.logger.notice("API key lacks the route's scope", metadata: ["gw.api_key": "\(key.id)", "gw.scope": "\(scope.rawValue)"])
            throw GatewayError.missingScope
        }
        return .apiKey(id: key.id, scopes: scopes, expiresAt: key.expiresAt)
    }

    static func gatewayError(_ error: AdministrationError) -> GatewayError {
        switch error.kind {
        case .invalid(let param): return .invalidRequest(error.message, param: param)
        case .notFound: return GatewayError(code: .notFound, status: .notFound, title: "Not found", message: error.message)
        case .conflict: return GatewayError(code: .conflict, status: .conflict, title: "Conflict", message: error.message)
        case .forbidden: return GatewayError(code: .forbidden, status: .forbidden, title: "Not allowed", message: error.message)
        }
    }

    static func created(_ json: JSONValue) -> Response { json.response(status: .created) }
    static let noContent = Response(status: .noContent, headers: [.cacheControl: "no-store"])

    // MARK: the routes

    var routes: [Route] {
        let p = Self.prefix
        return [
            Route(method: .get, path: "\(p)/openapi.json", scope: nil) { _ in AdminAPIDescription.document().response() },
            Route(method: .get, path: "\(p)/platforms", scope: .platformsRead) { _ in
                AdminJSON.list(try await administration.platforms().map(AdminJSON.platform), nextCursor: nil).response()
            },
            Route(method: .post, path: "\(p)/platforms", scope: .platformsWrite) { call in
                Self.created(AdminJSON.platform(try await createPlatform(call)))
            },
            Route(method: .get, path: "\(p)/platforms/{id}", scope: .platformsRead) { call in
                AdminJSON.platform(try await administration.platform(id: try call.parameter("id"))).response()
            },
            Route(method: .patch, path: "\(p)/platforms/{id}", scope: .platformsWrite) { call in
                AdminJSON.platform(try await updatePlatform(call)).response()
            },
            Route(method: .delete, path: "\(p)/platforms/{id}", scope: .platformsWrite) { call in
                try await administration.removePlatform(id: try call.parameter("id"), by: call.actor)
                return Self.noContent
            },
            Route(method: .post, path: "\(p)/platforms/{id}/approve", scope: .platformsWrite) { call in
                AdminJSON.platform(try await administration.approvePlatform(id: try call.parameter("id"), by: call.actor)).response()
            },
            Route(method: .get, path: "\(p)/registration_invites", scope: .platformsRead) { _ in
                AdminJSON.list(try await administration.invites().map { AdminJSON.invite($0) }, nextCursor: nil).response()
            },
            Route(method: .post, path: "\(p)/registration_invites", scope: .platformsWrite) { call in
                let body = try await AdminRequestBody.read(call.request)
                try body.onlyKnown(["expires_in_seconds", "note"])
                let created = try await administration.createInvite(
                    expiresIn: TimeInterval(try body.integer("expires_in_seconds") ?? 7 * 86_400), note: try body.string("note"), baseURL: baseURL,
                    by: call.actor)
                return Self.created(AdminJSON.invite(created.invite, link: created.link))
            },
            Route(method: .get, path: "\(p)/platforms/{id}/deployments", scope: .platformsRead) { call in
                let platform = try await administration.platform(id: try call.parameter("id"))
                return AdminJSON.list(Self.deploymentItems(platform), nextCursor: nil).response()
            },
            Route(method: .post, path: "\(p)/platforms/{id}/deployments", scope: .platformsWrite) { call in
                let body = try await AdminRequestBody.read(call.request)
                try body.onlyKnown(["deployment_id"])
                let deployment = try body.requiredString("deployment_id")
                _ = try await administration.addDeployment(platformID: try call.parameter("id"), deploymentID: deployment, by: call.actor)
                return Self.created(.object([("deployment_id", .string(deployment))]))
            },
            Route(method: .delete, path: "\(p)/platforms/{id}/deployments/{deployment_id}", scope: .platformsWrite) { call in
                _ = try await administration.removeDeployment(
                    platformID: try call.parameter("id"), deploymentID: try call.parameter("deployment_id"), by: call.actor)
                return Self.noContent
            },
            Route(method: .get, path: "\(p)/signing_keys", scope: .signingKeysRead) { _ in
                AdminJSON.list(
                    try await administration.signingKeyRing().published(now: administration.now()).map(AdminJSON.signingKey), nextCursor: nil
                )
                .response()
            },
            Route(method: .post, path: "\(p)/signing_keys/rotate", scope: .signingKeysWrite) { call in
                let body = try await AdminRequestBody.read(call.request)
                try body.onlyKnown(["force", "emergency"])
                let ring = try await administration.rotateSigningKeys(
                    force: try body.bool("force") ?? false, emergency: try body.bool("emergency") ?? false, by: call.actor)
                return AdminJSON.list(ring.published(now: administration.now()).map(AdminJSON.signingKey), nextCursor: nil).response()
            },
            Route(method: .delete, path: "\(p)/signing_keys/{kid}", scope: .signingKeysWrite) { call in
                _ = try await administration.retireSigningKey(kid: try call.parameter("kid"), by: call.actor)
                return Self.noContent
            },
            Route(method: .get, path: "\(p)/api_keys", scope: .apiKeysRead) { _ in
                AdminJSON.list(try await administration.apiKeyList().map { AdminJSON.apiKey($0) }, nextCursor: nil).response()
            },
            Route(method: .post, path: "\(p)/api_keys", scope: .apiKeysWrite) { call in
                let body = try await AdminRequestBody.read(call.request)
                try body.onlyKnown(["name", "scopes", "expires_at", "environment"])
                let environmentName = try body.string("environment") ?? APIKeyService.Environment.live.rawValue
                guard let environment = APIKeyService.Environment(rawValue: environmentName) else {
                    throw body.invalid("environment", "must be live or test")
                }
                guard let scopes = try body.strings("scopes") else { throw body.invalid("scopes", "is required") }
                let created = try await administration.createAPIKey(
                    name: try body.requiredString("name"), scopes: scopes, expiresAt: try body.time("expires_at"), environment: environment,
                    by: call.actor)
                return Self.created(AdminJSON.apiKey(created.key, secret: created.secret))
            },
            Route(method: .get, path: "\(p)/api_keys/{id}", scope: .apiKeysRead) { call in
                AdminJSON.apiKey(try await administration.apiKey(id: try call.parameter("id"))).response()
            },
            Route(method: .delete, path: "\(p)/api_keys/{id}", scope: .apiKeysWrite) { call in
                try await administration.deleteAPIKey(id: try call.parameter("id"), by: call.actor)
                return Self.noContent
            },
            Route(method: .get, path: "\(p)/launches", scope: .launchesRead) { call in try await listLaunches(call) },
            Route(method: .get, path: "\(p)/launches/{id}", scope: .launchesRead) { call in
                AdminJSON.launch(try await administration.launch(id: try call.parameter("id"))).response()
            },
            Route(method: .get, path: "\(p)/outbox", scope: .outboxRead) { call in
                let (limit, _) = try Self.page(call)
                return AdminJSON.list(try await administration.outbox(limit: limit).map(AdminJSON.delivery), nextCursor: nil).response()
            },
            Route(method: .post, path: "\(p)/outbox/{id}/retry", scope: .outboxWrite) { call in
                AdminJSON.delivery(try await administration.retryDelivery(id: try call.parameter("id"), by: call.actor)).response()
            },
            Route(method: .get, path: "\(p)/audit_events", scope: .auditRead) { call in
                let (limit, after) = try Self.page(call)
                let events = try await administration.auditEvents(after: after, limit: limit + 1)
                return Self.listPage(events, limit: limit, json: AdminJSON.auditEvent) { ListPosition(time: $0.at, id: $0.id) }
            },
        ]
    }

    static func deploymentItems(_ platform: Administration.Platform) -> [JSONValue] {
        platform.registration.deploymentIDs.map { .object([("deployment_id", .string($0))]) }
    }

    // MARK: handlers with more to read

    static let platformFields: Set<String> = ["issuer", "client_id", "auth_url", "token_url", "jwks_url", "deployments", "options", "skyprep"]

    /// Deployments as the API takes them: `[{"deployment_id": "…"}]` (as they are listed) or plain strings.
    static func deployments(_ body: AdminRequestBody) throws -> [String]? {
        guard let value = body.fields["deployments"] else { return nil }
        guard case .array(let items) = value, items.count <= 1000 else {
            throw body.invalid("deployments", "must be a list of {\"deployment_id\": \"…\"} objects")
        }
        return try items.map { item in
            switch item {
            case .string(let id): return id
            case .object(let fields):
                guard fields.count == 1, case .string(let id)? = fields["deployment_id"] else { fallthrough }
                return id
            default: throw body.invalid("deployments", "must be a list of {\"deployment_id\": \"…\"} objects")
            }
        }
    }

    func createPlatform(_ call: Call) async throws -> Administration.Platform {
        let body = try await AdminRequestBody.read(call.request)
        try body.onlyKnown(Self.platformFields)
        return try await administration.addPlatform(
            issuer: try body.requiredString("issuer"), clientID: try body.requiredString("client_id"), authURL: try body.requiredString("auth_url"),
            tokenURL: try body.requiredString("token_url"), jwksURL: try body.requiredString("jwks_url"),
            deployments: try Self.deployments(body) ?? [], options: try body.object("options")?.launchOptions(),
            skyPrep: try body.object("skyprep")?.skyPrepOptions(), by: call.actor)
    }

    func updatePlatform(_ call: Call) async throws -> Administration.Platform {
        let body = try await AdminRequestBody.read(call.request)
        try body.onlyKnown(Self.platformFields)
        for name in ["issuer", "client_id"] where body.has(name) {
            throw body.invalid(name, "cannot be changed: it names the platform (register another platform instead)")
        }
        let changes = Administration.PlatformChanges(
            authURL: try body.string("auth_url"), tokenURL: try body.string("token_url"), jwksURL: try body.string("jwks_url"),
            deployments: try Self.deployments(body), options: try body.object("options")?.launchOptions(),
            skyPrep: try body.object("skyprep")?.skyPrepOptions())
        return try await administration.updatePlatform(id: try call.parameter("id"), changes, by: call.actor)
    }

    func listLaunches(_ call: Call) async throws -> Response {
        let (limit, after) = try Self.page(call)
        func time(_ name: String) throws -> Date? {
            guard let text = call.query(name) else { return nil }
            guard let date = ISO8601Time.parse(text) else {
                throw GatewayError.invalidRequest("\(name) must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z", param: name)
            }
            return date
        }
        let query = LaunchQuery(
            registrationID: call.query("platform_id"), learnerID: call.query("learner_id"), labID: call.query("lab_id"),
            outcome: call.query("outcome"), createdFrom: try time("created_after"), createdBefore: try time("created_before"), after: after,
            limit: limit + 1)
        let launches = try await administration.launches(query)
        return Self.listPage(launches, limit: limit, json: AdminJSON.launch) { ListPosition(time: $0.createdAt, id: $0.id) }
    }

    /// `limit` (1…100, default 25) and `cursor` of a paged list.
    static func page(_ call: Call) throws -> (limit: Int, after: ListPosition?) {
        var limit = 25
        if let text = call.query("limit") {
            guard let value = Int(text), (1...100).contains(value) else {
                throw GatewayError.invalidRequest("limit must be a whole number from 1 to 100", param: "limit")
            }
            limit = value
        }
        return (limit, try call.query("cursor").map(ListCursor.decode))
    }

    /// A page of `limit` rows out of the `limit + 1` read, with the cursor of the next page when there is one.
    static func listPage<T>(_ rows: [T], limit: Int, json: (T) -> JSONValue, position: (T) -> ListPosition) -> Response {
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { ListCursor.encode(position($0)) } : nil
        return AdminJSON.list(page.map(json), nextCursor: next).response()
    }
}
