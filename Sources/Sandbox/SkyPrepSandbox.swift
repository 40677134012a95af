import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A local fake of the SkyPrep admin API, as Hummingbird routes at `{prefix}/admin/api/{method}`.
///
/// Faithful to what vendor-apis.md documents: POST form parameters; the keys in `X-SkyPrep-Acct-Key` and
/// `X-SkyPrep-API-Key` headers or as `acct_key` / `api_key` parameters; JSON answers; 400/401/403/404/500
/// status codes; about 100 calls a minute per client. What is not documented is marked where it is
/// decided: error bodies answer `{"message": …}`, the rate limit answers 429, `create_user` takes
/// `email`, `enroll_user_in_courses` takes `user_email` and `course_ids` (`;`-separated).
///
/// `POST {prefix}/control?outage=500|html|off&fail=500,html&rateLimit=N&reset=1` (with the API key in
/// `X-SkyPrep-API-Key`) switches failure modes for manual testing.
public final class SkyPrepSandbox: Sendable {
    /// A failure of calls: scripted for the next calls, or for all calls while an outage lasts.
    public enum Failure: Sendable, Equatable {
        case serverError
        /// 200 with the website's HTML, as SkyPrep has been seen to answer a wrong key.
        case websiteHTML
    }

    public struct User: Sendable, Equatable {
        public var id: Int
        public var email: String
        public var firstName: String
        public var lastName: String
        public var userIdentifier: String?
        public var role: String
        public var groups: [String]
        public var courseIDs: [String]
    }

    /// What happens to a call before its method runs.
    enum Gate { case pass, limited, failed(Failure) }

    struct State {
        var users: [User] = []
        var nextID = 5001
        var calls: [String: Int] = [:]
        var lastForm: [String: [String: String]] = [:]
        var failures: [Failure] = []
        var outage: Failure?
        var callsPerMinute: Int
        var recentCalls: [ContinuousClock.Instant] = []
    }

    public let acctKey: String
    public let apiKey: String
    public let prefix: String
    private let state: Mutex<State>

    public init(acctKey: String, apiKey: String, prefix: String = "/sandbox/skyprep", callsPerMinute: Int = 100) {
        self.acctKey = acctKey
        self.apiKey = apiKey
        self.prefix = prefix
        self.state = Mutex(State(callsPerMinute: callsPerMinute))
    }

    /// Calls received, by method.
    public var calls: [String: Int] { state.withLock { $0.calls } }
    public var users: [User] { state.withLock { $0.users } }
    /// The last form parameters received, by method.
    public var lastForm: [String: [String: String]] { state.withLock { $0.lastForm } }
    /// The next calls fail, one failure each.
    public func scriptFailures(_ failures: [Failure]) { state.withLock { $0.failures += failures } }
    /// Every call fails this way until `setOutage(nil)`.
    public func setOutage(_ failure: Failure?) { state.withLock { $0.outage = failure } }
    /// Adds a user as an administrator would by hand (no `user_identifier`).
    public func addUser(email: String, firstName: String, lastName: String, role: String = "learner") -> Int {
        state.withLock { s in
            s.users.append(
                User(
                    id: s.nextID, email: email, firstName: firstName, lastName: lastName, userIdentifier: nil,
                    role: role, groups: [], courseIDs: []))
            s.nextID += 1
            return s.nextID - 1
        }
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let group = router.group(RouterPath(prefix))
        group.post("admin/api/:method") { request, context in
            try await self.handle(request, context: context)
        }
        group.post("control") { request, _ in
            self.control(request)
        }
        group.get("login/:key") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string:
                            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>SkyPrep (sandbox)</title></head>"
                            + "<body><main><h1>Signed in to SkyPrep</h1><p>This page stands in for the learner's SkyPrep account.</p></main></body></html>"
                    )))
        }
    }

    func control(_ request: Request) -> Response {
        guard request.headers[HTTPField.Name("X-SkyPrep-API-Key")!] == apiKey else {
            return Self.answer(.unauthorized, ["message": "Invalid credentials"])
        }
        let q = request.uri.queryParameters
        state.withLock { s in
            if q["reset"] != nil {
                s.failures = []
                s.outage = nil
            }
            if let outage = q["outage"] { s.outage = outage == "500" ? .serverError : outage == "html" ? .websiteHTML : nil }
            if let fail = q["fail"] { s.failures += fail.split(separator: ",").map { $0 == "html" ? .websiteHTML : .serverError } }
            if let limit = q["rateLimit"].flatMap({ Int($0) }), limit > 0 { s.callsPerMinute = limit }
        }
        return Self.answer(.ok, ["message": "success"])
    }

    /// The largest form the fake reads (SkyPrep's calls carry a few short fields).
    static let maxFormBytes = 64 * 1024

    func handle<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let method = context.parameters.get("method") ?? ""
        // Credentials in headers are checked before anything is read: a caller without them stores nothing here.
        let headerAcct = request.headers[HTTPField.Name("X-SkyPrep-Acct-Key")!]
        let headerKey = request.headers[HTTPField.Name("X-SkyPrep-API-Key")!]
        if headerAcct != nil || headerKey != nil, headerAcct != acctKey || headerKey != apiKey {
            state.withLock { $0.calls[method, default: 0] += 1 }
            return Self.answer(.unauthorized, ["message": "Invalid credentials"])
        }
        let body = String(buffer: try await request.body.collect(upTo: Self.maxFormBytes))
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        let credentialed = (headerAcct ?? form["acct_key"]) == acctKey && (headerKey ?? form["api_key"]) == apiKey
        let gate: Gate = state.withLock { s in
            s.calls[method, default: 0] += 1
            if credentialed { s.lastForm[method] = form.filter { $0.key != "api_key" && $0.key != "acct_key" } }
            let now = ContinuousClock.now
            s.recentCalls.removeAll { now - $0 >= .seconds(60) }
            guard s.recentCalls.count < s.callsPerMinute else { return .limited }
            s.recentCalls.append(now)
            if let outage = s.outage { return .failed(outage) }
            return s.failures.isEmpty ? .pass : .failed(s.failures.removeFirst())
        }
        switch gate {
        case .limited: return Self.answer(.tooManyRequests, ["message": "Rate limit exceeded"])
        case .failed(.serverError): return Self.answer(.internalServerError, ["message": "Internal Server Error"])
        case .failed(.websiteHTML):
            return Response(
                status: .ok, headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<!DOCTYPE html><html><body>SkyPrep</body></html>")))
        case .pass: break
        }
        // Both credential forms: headers (preferred) or parameters.
        guard credentialed else { return Self.answer(.unauthorized, ["message": "Invalid credentials"]) }
        return answer(method, form, authority: request.head.authority)
    }

    private func answer(_ method: String, _ form: [String: String], authority: String?) -> Response {
        switch method {
        case "test_connection":
            return Self.answer(.ok, ["message": "success"])
        case "create_user":
            guard let email = form["email"], email.contains("@"), let first = form["first_name"], let last = form["last_name"] else {
                return Self.answer(.badRequest, ["message": "email, first_name and last_name are required"])
            }
            let role = form["role"] ?? "learner"
            guard ["learner", "admin", "manager", "content_manager"].contains(role) else {
                return Self.answer(.badRequest, ["message": "invalid role"])
            }
            if let password = form["password"], password.count < 8 { return Self.answer(.badRequest, ["message": "password too short"]) }
            let created: User? = state.withLock { s in
                guard !s.users.contains(where: { $0.email.lowercased() == email.lowercased() }) else { return nil }
                let user = User(
                    id: s.nextID, email: email, firstName: first, lastName: last, userIdentifier: form["user_identifier"],
                    role: role, groups: [], courseIDs: [])
                s.nextID += 1
                s.users.append(user)
                return user
            }
            guard let created else { return Self.answer(.badRequest, ["message": "A user with this email already exists"]) }
            return Self.answer(.ok, Self.describe(created))
        case "get_user":
            // By id (documented), or by `user_email` (the gateway's opt-in lookup; unconfirmed at SkyPrep).
            let byEmail = form["user_email"].flatMap { email in users.first { $0.email.lowercased() == email.lowercased() } }
            guard let user = byEmail ?? form["user_id"].flatMap(Int.init).flatMap({ id in users.first { $0.id == id } }) else {
                return Self.answer(.notFound, ["message": "User not found"])
            }
            return Self.answer(.ok, Self.describe(user))
        case "update_user":
            guard let id = form["user_id"].flatMap(Int.init) else { return Self.answer(.badRequest, ["message": "user_id is required"]) }
            if let role = form["role"], !["learner", "admin", "manager", "content_manager"].contains(role) {
                return Self.answer(.badRequest, ["message": "invalid role"])
            }
            let updated: User? = state.withLock { s in
                guard let index = s.users.firstIndex(where: { $0.id == id }) else { return nil }
                if let v = form["first_name"] { s.users[index].firstName = v }
                if let v = form["last_name"] { s.users[index].lastName = v }
                if let v = form["role"] { s.users[index].role = v }
                return s.users[index]
            }
            guard let updated else { return Self.answer(.notFound, ["message": "User not found"]) }
            return Self.answer(.ok, Self.describe(updated))
        case "get_users":
            let list = users.map { ["id": $0.id, "email": $0.email, "first_name": $0.firstName, "last_name": $0.lastName] as [String: Any] }
            let data = (try? JSONSerialization.data(withJSONObject: list)) ?? Data("[]".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case "enroll_user_in_courses":
            guard let email = form["user_email"], let courses = form["course_ids"], !courses.isEmpty else {
                return Self.answer(.badRequest, ["message": "user_email and course_ids are required"])
            }
            let found: Bool = state.withLock { s in
                guard let index = s.users.firstIndex(where: { $0.email.lowercased() == email.lowercased() }) else { return false }
                for course in courses.split(separator: ";").map(String.init) where !s.users[index].courseIDs.contains(course) {
                    s.users[index].courseIDs.append(course)
                }
                return true
            }
            return found ? Self.answer(.ok, ["message": "success"]) : Self.answer(.notFound, ["message": "User not found"])
        case "get_login_key":
            guard let email = form["user_email"], email.contains("@") else { return Self.answer(.badRequest, ["message": "user_email is required"]) }
            let groups = (form["user_groups"] ?? "").split(separator: ";").map(String.init)
            let known: Bool = state.withLock { s in
                if form["autocreate"] == "1", !s.users.contains(where: { $0.email.lowercased() == email.lowercased() }) {
                    s.users.append(
                        User(
                            id: s.nextID, email: email, firstName: form["first_name"] ?? "", lastName: form["last_name"] ?? "",
                            userIdentifier: nil, role: "learner", groups: [], courseIDs: []))
                    s.nextID += 1
                }
                guard let index = s.users.firstIndex(where: { $0.email.lowercased() == email.lowercased() }) else { return false }
                for group in groups where !s.users[index].groups.contains(group) { s.users[index].groups.append(group) }
                return true
            }
            guard known else { return Self.answer(.notFound, ["message": "User not found"]) }
            let host = authority ?? "127.0.0.1"
            return Self.answer(.ok, ["url": "http://\(host)\(prefix)/login/\(UUID().uuidString)", "key_type": form["key_type"] ?? "otl"])
        default:
            return Self.answer(.notFound, ["message": "Unknown method"])
        }
    }

    static func describe(_ user: User) -> [String: Any] {
        ["id": user.id, "email": user.email, "first_name": user.firstName, "last_name": user.lastName, "role": user.role]
    }

    static func answer(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
