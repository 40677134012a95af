import AsyncHTTPClient
import Foundation
import GatewayStorage
import HTTPTypes
import LTICore
import LTITestSupport
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayApp

extension EndToEnd {
    /// An admin API request: bearer `key` (none when nil), an optional JSON body, to the main listener or `base`.
    func api(_ method: HTTPMethod, _ path: String, key: String?, json: String? = nil, base: String? = nil) async throws -> BrowserResponse {
        var request = HTTPClientRequest(url: (base ?? baseURL) + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        return BrowserResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }

    /// A key holding `scopes`, created as the command line creates one; its secret.
    func adminKey(_ scopes: [APIScope], expiresAt: Date? = nil) async throws -> String {
        try await gateway.administration.createAPIKey(
            name: "test key", scopes: scopes.map(\.rawValue), expiresAt: expiresAt, environment: .test, by: .commandLine
        ).secret
    }
}

/// A JSON answer's top-level object.
func jsonObject(_ response: BrowserResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any], "not a JSON object: \(response.body)")
}

/// The `data` of a list answer.
func jsonList(_ response: BrowserResponse) throws -> [[String: Any]] {
    try #require(try jsonObject(response)["data"] as? [[String: Any]], "no data: \(response.body)")
}

@Suite("Admin API: scoped API keys, exact refusals, every resource", .serialized)
struct AdminAPITests {
    static let unauthenticated = #"{"error":{"type":"authentication_error","message":"Invalid or missing API key."}}"#
    static let missingScope = #"{"error":{"type":"forbidden","message":"This API key does not have the required scope."}}"#

    /// A route's path with made-up ids in its parameters.
    static func concrete(_ path: String) -> String {
        path.replacingOccurrences(of: "{id}", with: "none").replacingOccurrences(of: "{deployment_id}", with: "none")
            .replacingOccurrences(of: "{kid}", with: "none")
    }

    static func method(_ route: AdminAPIController.Route) -> HTTPMethod { HTTPMethod(rawValue: route.method.rawValue) }

    static func routes(_ e2e: EndToEnd) -> [AdminAPIController.Route] {
        AdminAPIController(administration: e2e.gateway.administration, throttle: AuthFailureThrottle(), baseURL: e2e.baseURL).routes
    }

    @Test("every route: no key → 401, a key without the route's scope → 403 (both bodies word for word), a key with only that scope → past both")
    func everyRouteAndScope() async throws {
        try await withEndToEnd { e2e in
            for route in Self.routes(e2e) {
                let path = Self.concrete(route.path)
                guard let scope = route.scope else {
                    #expect(try await e2e.api(Self.method(route), path, key: nil).status == 200, "\(path) is public")
                    continue
                }
                let anonymous = try await e2e.api(Self.method(route), path, key: nil, json: "{}")
                #expect(anonymous.status == 401 && anonymous.body == Self.unauthenticated, "\(route.method) \(path): \(anonymous.body)")
                #expect(anonymous.headers.first(name: "WWW-Authenticate") == "Bearer")
                e2e.clock.advance(61)  // a new window of the failure throttle (tested on its own)
                let others = try await e2e.adminKey(APIScope.allCases.filter { $0 != scope })
                let refused = try await e2e.api(Self.method(route), path, key: others, json: "{}")
                #expect(refused.status == 403 && refused.body == Self.missingScope, "\(route.method) \(path): \(refused.body)")
                let holder = try await e2e.adminKey([scope])
                let allowed = try await e2e.api(Self.method(route), path, key: holder, json: "{}")
                #expect(
                    ![401, 403, 405].contains(allowed.status), "\(route.method) \(path) with \(scope.rawValue): \(allowed.status) \(allowed.body)")
                #expect(!allowed.body.contains("There is nothing at this address"), "\(route.method) \(path) is not routed")
            }
        }
    }

    @Test("a malformed, unknown, expired or deleted key is refused with the same 401; deletion works from the next request on")
    func expiredAndDeletedKeys() async throws {
        try await withEndToEnd { e2e in
            let reader = try await e2e.adminKey([.platformsRead], expiresAt: e2e.clock.now.addingTimeInterval(60))
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: reader).status == 200)
            for wrong in ["", "sk_test_", String(reader.dropLast()), reader + "x", "sk_live_" + reader.dropFirst(8), reader.uppercased()] {
                let refused = try await e2e.api(.GET, "/api/v1/platforms", key: wrong)
                #expect(refused.status == 401 && refused.body == Self.unauthenticated, "\(wrong.prefix(10))")
            }
            e2e.clock.advance(61)
            let expired = try await e2e.api(.GET, "/api/v1/platforms", key: reader)
            #expect(expired.status == 401 && expired.body == Self.unauthenticated)

            let admin = try await e2e.adminKey([.apiKeysRead, .apiKeysWrite, .platformsRead])
            let doomed = try await e2e.adminKey([.platformsRead])
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: doomed).status == 200)
            let listed = try jsonList(try await e2e.api(.GET, "/api/v1/api_keys", key: admin))
            let doomedID = try #require(
                listed.first { ($0["prefix"] as? String).map { doomed.hasPrefix($0) } == true && $0["id"] as? String != nil }?["id"] as? String)
            let deleted = try await e2e.api(.DELETE, "/api/v1/api_keys/\(doomedID)", key: admin)
            #expect(deleted.status == 204)
            let after = try await e2e.api(.GET, "/api/v1/platforms", key: doomed)
            #expect(after.status == 401 && after.body == Self.unauthenticated)
            #expect(try await e2e.api(.DELETE, "/api/v1/api_keys/\(doomedID)", key: admin).status == 404)
        }
    }

    @Test("a key cannot create a key with a scope it does not hold; the secret is shown once and never listed, logged or stored")
    func creationAndSecrecy() async throws {
        try await withEndToEnd { e2e in
            let creator = try await e2e.adminKey([.apiKeysWrite, .apiKeysRead, .platformsRead])
            let escalation = try await e2e.api(.POST, "/api/v1/api_keys", key: creator, json: #"{"name":"more","scopes":["audit.read"]}"#)
            #expect(escalation.status == 403)
            #expect(try jsonObject(escalation)["error"].flatMap { ($0 as? [String: Any])?["type"] as? String } == "forbidden")
            let created = try await e2e.api(
                .POST, "/api/v1/api_keys", key: creator, json: #"{"name":"pipeline","scopes":["platforms.read"],"environment":"live"}"#)
            #expect(created.status == 201, "\(created.body)")
            let object = try jsonObject(created)
            let secret = try #require(object["secret"] as? String)
            let id = try #require(object["id"] as? String)
            #expect(secret.hasPrefix("sk_live_") && secret.count >= 8 + 43, "a secret of 32 random bytes at least")
            #expect(object["created_by"] as? String != "cli" && (object["prefix"] as? String).map { secret.hasPrefix($0) } == true)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: secret).status == 200)

            let listing = try await e2e.api(.GET, "/api/v1/api_keys", key: creator)
            let single = try await e2e.api(.GET, "/api/v1/api_keys/\(id)", key: creator)
            let audit = try await e2e.gateway.administration.auditEvents(after: nil, limit: 100)
            let texts =
                [listing.body, single.body, AdministrationTables.apiKeys(try await e2e.gateway.administration.apiKeyList())] + e2e.logs.all
                + audit.map(String.init(describing:))
            for text in texts {
                #expect(!text.contains(secret), "the secret shows in \(text.prefix(200))")
            }
            #expect(!listing.body.contains("\"secret\""))
            // Nowhere in the database: every column of every stored key.
            let store = try #require(e2e.gateway.store as? any SQLGatewayStore)
            #expect(try await Self.storedKeysContain(secret, store: store) == false)
            #expect(try await Self.storedKeysContain(String(secret.dropFirst(12).prefix(16)), store: store) == false)
        }
    }

    static func storedKeysContain<Store: SQLGatewayStore>(_ text: String, store: Store) async throws -> Bool {
        let rows = try await store.read(
            SQLStatement("SELECT \(["id", "name", "scopes", "prefix", "secret_digest", "created_by"].joined(separator: ", ")) FROM api_keys"), [])
        #expect(!rows.isEmpty)
        for row in rows {
            for column in ["id", "name", "scopes", "prefix", "secret_digest", "created_by"] where try row.text(column)?.contains(text) == true {
                return true
            }
        }
        return false
    }

    @Test("ten failed authentications from one address: further guesses get 429 and Retry-After until the window ends; a valid key still passes")
    func failuresSlowedDown() async throws {
        try await withEndToEnd { e2e in
            let valid = try await e2e.adminKey([.platformsRead])
            for attempt in 0..<10 {
                #expect(try await e2e.api(.GET, "/api/v1/platforms", key: "sk_live_guess\(attempt)").status == 401)
            }
            let blocked = try await e2e.api(.GET, "/api/v1/platforms", key: "sk_live_guess10")
            #expect(blocked.status == 429, "\(blocked.body)")
            #expect(blocked.headers.first(name: "Retry-After").flatMap(Int.init).map { (1...61).contains($0) } == true)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: nil).status == 429, "no key counts as a guess")
            #expect(e2e.logs.lines(containing: "rate_limited").isEmpty == false, "the refusal is logged with its reason")
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: valid).status == 200, "a shared address cannot lock operators out")
            e2e.clock.advance(61)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: "sk_live_guess11").status == 401)
        }
    }

    @Test("an expiring key cannot mint a key that outlives it, nor delete a key with scopes it lacks")
    func keysCannotOutliveOrOutrankTheirCreator() async throws {
        try await withEndToEnd { e2e in
            let expiry = e2e.clock.now.addingTimeInterval(3600)
            let creator = try await e2e.adminKey([.apiKeysWrite, .apiKeysRead], expiresAt: expiry)
            for body in [
                #"{"name":"forever","scopes":["api_keys.read"]}"#,
                #"{"name":"later","scopes":["api_keys.read"],"expires_at":"2100-01-01T00:00:00Z"}"#,
            ] {
                let refused = try await e2e.api(.POST, "/api/v1/api_keys", key: creator, json: body)
                let error = try jsonObject(refused)["error"] as? [String: Any]
                #expect(refused.status == 400 && error?["param"] as? String == "expires_at", "\(refused.body)")
            }
            let within = ISO8601DateFormatter().string(from: expiry.addingTimeInterval(-60))
            let created = try await e2e.api(
                .POST, "/api/v1/api_keys", key: creator, json: #"{"name":"ok","scopes":["api_keys.read"],"expires_at":"\#(within)"}"#)
            #expect(created.status == 201, "\(created.body)")

            let stronger = try await e2e.gateway.administration.createAPIKey(
                name: "audit", scopes: ["audit.read"], expiresAt: nil, environment: .test, by: .commandLine)
            let refused = try await e2e.api(.DELETE, "/api/v1/api_keys/\(stronger.key.id)", key: creator)
            #expect(refused.status == 403, "\(refused.body)")
            #expect(try await e2e.api(.GET, "/api/v1/audit_events", key: stronger.secret).status == 200, "the key still works")
        }
    }

    @Test("a key's last use is stored at most once a minute, not on every request")
    func lastUsed() async throws {
        try await withEndToEnd { e2e in
            let created = try await e2e.gateway.administration.createAPIKey(
                name: "reader", scopes: ["platforms.read"], expiresAt: nil, environment: .test, by: .commandLine)
            #expect(created.key.lastUsedAt == nil)
            let first = e2e.clock.now
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: created.secret).status == 200)
            let used = try await e2e.gateway.administration.apiKey(id: created.key.id).lastUsedAt
            #expect(used.map { abs($0.timeIntervalSince(first)) < 5 } == true)
            e2e.clock.advance(30)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: created.secret).status == 200)
            #expect(try await e2e.gateway.administration.apiKey(id: created.key.id).lastUsedAt == used, "written again within the minute")
            e2e.clock.advance(31)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: created.secret).status == 200)
            let later = try await e2e.gateway.administration.apiKey(id: created.key.id).lastUsedAt
            #expect(later.map { $0 > used! } == true)
        }
    }

    @Test("platforms through the API: create with options, read, change, add and remove deployments, delete; each change audited with its key")
    func platformLifecycle() async throws {
        try await withEndToEnd { e2e in
            let key = try await e2e.adminKey([.platformsRead, .platformsWrite, .auditRead])
            let body = """
                {"issuer":"https://moodle.example.edu","client_id":"abc","auth_url":"https://moodle.example.edu/mod/lti/auth.php",
                 "token_url":"https://moodle.example.edu/mod/lti/token.php","jwks_url":"https://moodle.example.edu/mod/lti/certs.php",
                 "deployments":[{"deployment_id":"1"}],"options":{"max_active_labs":2,"send_tag":false},
                 "skyprep":{"provisioning":false,"role_map":{"Instructor":"manager"}}}
                """
            let created = try await e2e.api(.POST, "/api/v1/platforms", key: key, json: body)
            #expect(created.status == 201, "\(created.body)")
            let platform = try jsonObject(created)
            let id = try #require(platform["id"] as? String)
            #expect((platform["options"] as? [String: Any])?["max_active_labs"] as? Int == 2)
            #expect((platform["options"] as? [String: Any])?["send_tag"] as? Bool == false)
            #expect(((platform["skyprep"] as? [String: Any])?["role_map"] as? [String: String]) == ["Instructor": "manager"])
            #expect(try await e2e.gateway.store.launchOptions(registrationID: id).maxActiveLabs == 2)

            let duplicate = try await e2e.api(.POST, "/api/v1/platforms", key: key, json: body)
            #expect(duplicate.status == 409, "\(duplicate.body)")

            let changed = try await e2e.api(
                .PATCH, "/api/v1/platforms/\(id)", key: key, json: #"{"jwks_url":"https://moodle.example.edu/keys","deployments":["1","2"]}"#)
            #expect(changed.status == 200, "\(changed.body)")
            let stored = try #require(try await e2e.gateway.store.registration(id: id))
            #expect(stored.jwksURL == "https://moodle.example.edu/keys" && stored.deploymentIDs == ["1", "2"])
            #expect(try await e2e.gateway.store.launchOptions(registrationID: id).maxActiveLabs == 2, "options left alone")
            let renamed = try await e2e.api(.PATCH, "/api/v1/platforms/\(id)", key: key, json: #"{"issuer":"https://other.example"}"#)
            let renamedError = try jsonObject(renamed)["error"] as? [String: Any]
            #expect(renamed.status == 400 && renamedError?["param"] as? String == "issuer")

            let added = try await e2e.api(.POST, "/api/v1/platforms/\(id)/deployments", key: key, json: #"{"deployment_id":"a/b c"}"#)
            #expect(added.status == 201)
            let deployments = try jsonList(try await e2e.api(.GET, "/api/v1/platforms/\(id)/deployments", key: key))
            #expect(deployments.compactMap { $0["deployment_id"] as? String } == ["1", "2", "a/b c"])
            #expect(try await e2e.api(.DELETE, "/api/v1/platforms/\(id)/deployments/a%2Fb%20c", key: key).status == 204)
            #expect(try await e2e.api(.DELETE, "/api/v1/platforms/\(id)/deployments/2", key: key).status == 204)
            let last = try await e2e.api(.DELETE, "/api/v1/platforms/\(id)/deployments/1", key: key)
            #expect(last.status == 409, "a platform keeps one deployment: \(last.body)")
            #expect(try await e2e.api(.DELETE, "/api/v1/platforms/\(id)", key: key).status == 204)
            #expect(try await e2e.api(.GET, "/api/v1/platforms/\(id)", key: key).status == 404)

            let events = try jsonList(try await e2e.api(.GET, "/api/v1/audit_events", key: key))
            let keyID = try #require(try await e2e.gateway.administration.apiKeyList().last?.id)
            #expect(
                events.compactMap { $0["action"] as? String }.prefix(6) == [
                    "platform.delete", "platform.deployment.remove", "platform.deployment.remove", "platform.deployment.add", "platform.update",
                    "platform.create",
                ])
            #expect(events.prefix(6).allSatisfy { $0["actor"] as? String == keyID && $0["target"] as? String != nil })
        }
    }

    @Test("bad input is refused with 400 and the parameter named, and changes nothing")
    func badInput() async throws {
        try await withEndToEnd { e2e in
            let key = try await e2e.adminKey([.platformsRead, .platformsWrite, .launchesRead, .apiKeysWrite])
            let before = try await e2e.gateway.store.allRegistrations()
            let valid: [String: String] = [
                "issuer": "\"https://lms.example\"", "client_id": "\"c\"", "auth_url": "\"https://lms.example/auth\"",
                "token_url": "\"https://lms.example/token\"", "jwks_url": "\"https://lms.example/jwks\"", "deployments": "[\"1\"]",
            ]
            func body(_ changes: [String: String?]) -> String {
                var fields = valid
                for (name, value) in changes { fields[name] = value }
                return "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
            }
            let cases: [(String, String, String, String?)] = [
                ("POST", "/api/v1/platforms", body(["issuer": nil]), "issuer"),
                ("POST", "/api/v1/platforms", body(["auth_url": "\"http://lms.example/auth\""]), "auth_url"),
                ("POST", "/api/v1/platforms", body(["jwks_url": "42"]), "jwks_url"),
                ("POST", "/api/v1/platforms", body(["deployments": "[]"]), "deployments"),
                ("POST", "/api/v1/platforms", body(["isuer": "\"x\""]), "isuer"),
                ("POST", "/api/v1/platforms", body(["options": #"{"max_active_labs":0}"#]), "options"),
                ("POST", "/api/v1/platforms", body(["options": #"{"send_tag":1}"#]), "options.send_tag"),
                ("POST", "/api/v1/platforms", "{not json", "body"),
                ("POST", "/api/v1/platforms", "[1,2]", "body"),
                ("GET", "/api/v1/launches?limit=0", "", "limit"),
                ("GET", "/api/v1/launches?limit=101", "", "limit"),
                ("GET", "/api/v1/launches?cursor=forged", "", "cursor"),
                ("GET", "/api/v1/launches?created_after=yesterday", "", "created_after"),
                ("POST", "/api/v1/api_keys", #"{"name":"x","scopes":["everything"]}"#, "scopes"),
                ("POST", "/api/v1/api_keys", #"{"name":"x","scopes":["platforms.read"],"expires_at":"2001-01-01T00:00:00Z"}"#, "expires_at"),
                ("POST", "/api/v1/api_keys", #"{"name":"","scopes":["platforms.read"]}"#, "name"),
            ]
            for (method, path, json, param) in cases {
                let response = try await e2e.api(HTTPMethod(rawValue: method), path, key: key, json: json.isEmpty ? nil : json)
                #expect(response.status == 400, "\(method) \(path) \(json): \(response.status) \(response.body)")
                let error = try jsonObject(response)["error"] as? [String: Any]
                #expect(error?["type"] as? String == "invalid_request" && error?["param"] as? String == param, "\(json): \(response.body)")
                #expect(response.headers.first(name: "X-Request-Id") != nil)
            }
            let huge = try await e2e.api(
                .POST, "/api/v1/platforms", key: key, json: body(["client_id": "\"" + String(repeating: "x", count: 70_000) + "\""]))
            #expect(huge.status == 413)
            #expect(try await e2e.gateway.store.allRegistrations() == before, "a refused request changed the platforms")
            #expect(try await e2e.gateway.administration.apiKeyList().count == 1, "a refused request created a key")
        }
    }
}
