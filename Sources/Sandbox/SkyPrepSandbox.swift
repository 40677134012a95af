import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A local fake of the SkyPrep admin API, as Hummingbird routes at `{prefix}/admin/api/{method}`.
///
/// Faithful to what vendor-apis.md documents: POST form parameters, the keys in `X-SkyPrep-Acct-Key`
/// and `X-SkyPrep-API-Key`, JSON answers, 400/401/403/404/500 status codes. The error body shape is not
/// documented, so errors answer `{"message": …}`; a scripted `.websiteHTML` failure answers 200 with
/// HTML, as SkyPrep has been seen to do for a wrong key.
public final class SkyPrepSandbox: Sendable {
    /// A scripted failure of the next calls.
    public enum Failure: Sendable, Equatable {
        case serverError
        case websiteHTML
    }

    public struct User: Sendable, Equatable {
        public var id: Int
        public var email: String
        public var firstName: String
        public var lastName: String
        public var userIdentifier: String?
        public var role: String
    }

    struct State {
        var users: [User] = []
        var nextID = 5001
        var calls: [String: Int] = [:]
        var lastForm: [String: [String: String]] = [:]
        var failures: [Failure] = []
    }

    public let acctKey: String
    public let apiKey: String
    public let prefix: String
    private let state = Mutex(State())

    public init(acctKey: String, apiKey: String, prefix: String = "/sandbox/skyprep") {
        self.acctKey = acctKey
        self.apiKey = apiKey
        self.prefix = prefix
    }

    /// Calls received, by method.
    public var calls: [String: Int] { state.withLock { $0.calls } }
    public var users: [User] { state.withLock { $0.users } }
    /// The last form parameters received, by method.
    public var lastForm: [String: [String: String]] { state.withLock { $0.lastForm } }
    public func scriptFailures(_ failures: [Failure]) { state.withLock { $0.failures += failures } }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let group = router.group(RouterPath(prefix))
        group.post("admin/api/:method") { request, context in
            try await self.handle(request, context: context)
        }
        group.get("login/:key") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string:
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>SkyPrep (sandbox)</title></head>" +
                "<body><main><h1>Signed in to SkyPrep</h1><p>This page stands in for the learner's SkyPrep account.</p></main></body></html>")))
        }
    }

    func handle<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let method = context.parameters.get("method") ?? ""
        let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        let failure: Failure? = state.withLock { s in
            s.calls[method, default: 0] += 1
            s.lastForm[method] = form
            return s.failures.isEmpty ? nil : s.failures.removeFirst()
        }
        switch failure {
        case .serverError?: return Self.answer(.internalServerError, ["message": "Internal Server Error"])
        case .websiteHTML?:
            return Response(status: .ok, headers: [.contentType: "text/html"],
                            body: .init(byteBuffer: ByteBuffer(string: "<!DOCTYPE html><html><body>SkyPrep</body></html>")))
        case nil: break
        }
        guard request.headers[HTTPField.Name("X-SkyPrep-Acct-Key")!] == acctKey,
              request.headers[HTTPField.Name("X-SkyPrep-API-Key")!] == apiKey
        else { return Self.answer(.unauthorized, ["message": "Invalid credentials"]) }

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
            let created: User? = state.withLock { s in
                guard !s.users.contains(where: { $0.email.lowercased() == email.lowercased() }) else { return nil }
                let user = User(id: s.nextID, email: email, firstName: first, lastName: last, userIdentifier: form["user_identifier"], role: role)
                s.nextID += 1
                s.users.append(user)
                return user
            }
            guard let created else { return Self.answer(.badRequest, ["message": "A user with this email already exists"]) }
            return Self.answer(.ok, ["id": created.id, "email": created.email])
        case "get_users":
            let list = users.map { ["id": $0.id, "email": $0.email, "first_name": $0.firstName, "last_name": $0.lastName] as [String: Any] }
            let data = (try? JSONSerialization.data(withJSONObject: list)) ?? Data("[]".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case "get_login_key":
            guard let email = form["user_email"], email.contains("@") else {
                return Self.answer(.badRequest, ["message": "user_email is required"])
            }
            if form["autocreate"] == "1", !users.contains(where: { $0.email.lowercased() == email.lowercased() }) {
                state.withLock { s in
                    s.users.append(User(id: s.nextID, email: email, firstName: form["first_name"] ?? "", lastName: form["last_name"] ?? "",
                                        userIdentifier: nil, role: "learner"))
                    s.nextID += 1
                }
            }
            guard users.contains(where: { $0.email.lowercased() == email.lowercased() }) else {
                return Self.answer(.notFound, ["message": "User not found"])
            }
            let host = request.head.authority ?? "127.0.0.1"
            return Self.answer(.ok, ["url": "http://\(host)\(prefix)/login/\(UUID().uuidString)", "key_type": form["key_type"] ?? "otl"])
        default:
            return Self.answer(.notFound, ["message": "Unknown method"])
        }
    }

    static func answer(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
