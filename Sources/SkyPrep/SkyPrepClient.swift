import AsyncHTTPClient
import Foundation
import GatewaySupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where and how to reach the SkyPrep admin API (vendor-apis.md, "SkyPrep admin API").
public struct SkyPrepClientSettings: Sendable {
    /// `https://api.skyprep.io/admin/api` (never the customer's login domain); methods are appended. Read on
    /// every call, so that a fake whose port is known only after start-up can be used.
    public var baseURL: @Sendable () -> String
    /// - Important: Secret. The customer's SkyPrep domain key, sent only in `X-SkyPrep-Acct-Key`.
    public var acctKey: String
    /// - Important: Secret. Sent only in `X-SkyPrep-API-Key`.
    public var apiKey: String
    /// Client-side rate limit (SkyPrep: about 100 calls per minute per IP).
    public var callsPerMinute: Int
    /// Attempts of one call on 5xx or timeouts (4xx is never retried).
    public var maxAttempts: Int
    /// Waits between attempts of one call (doubling, no jitter: the rate limiter spreads calls already).
    public var retry: Backoff
    public var timeout: TimeAmount
    /// How a user is found by email (to link an existing account).
    public var userLookup: SkyPrepUserLookup = .listAll
    /// The longest a call waits for a free slot of the rate limiter; nil → as long as it takes (background work).
    /// Calls a browser waits for set it, and fail as `rate_limited` rather than keep the learner waiting.
    public var maxQueueWait: Duration?

    public init(
        baseURL: @escaping @Sendable () -> String, acctKey: String, apiKey: String, callsPerMinute: Int = 100, maxAttempts: Int = 3,
        baseRetryDelay: Duration = .milliseconds(500), timeout: TimeAmount = .seconds(10)
    ) {
        self.baseURL = baseURL
        self.acctKey = acctKey
        self.apiKey = apiKey
        self.callsPerMinute = callsPerMinute
        self.maxAttempts = maxAttempts
        self.retry = Backoff(base: baseRetryDelay, cap: .seconds(30), jitter: .none)
        self.timeout = timeout
    }
}

/// A failed SkyPrep call, typed by the documented status codes.
public struct SkyPrepError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badParameters = "bad_parameters"  // 400
        case notAuthenticated = "not_authenticated"  // 401
        case refused  // 403: permissions or IP allow-list
        case notFound = "not_found"  // 404
        case rateLimited = "rate_limited"  // 429 (undocumented; answered by SkyPrep's rate limit)
        case serverError = "server_error"  // 5xx
        case notJSON = "not_json"  // any answer that is not JSON (e.g. the website's HTML)
        case timeout
        case transport
    }

    public var code: Code
    public var method: String
    public var httpStatus: Int?
    /// The start of the answer's body, for support; never contains our keys (they are only in headers).
    public var responseBody: String

    /// Worth retrying later: 5xx, timeouts, transport failures and SkyPrep's rate limit. Any other 4xx or a
    /// non-JSON 200 is not.
    public var isTransient: Bool { [.serverError, .timeout, .transport, .rateLimited].contains(code) }

    public init(code: Code, method: String, httpStatus: Int?, responseBody: String) {
        self.code = code
        self.method = method
        self.httpStatus = httpStatus
        self.responseBody = responseBody
    }

    public var description: String { "skyprep \(method) \(code.rawValue)\(httpStatus.map { " http \($0)" } ?? "")" }
}

/// The SkyPrep admin API: POST form parameters to `…/admin/api/<method>`, credentials in headers, JSON
/// answers. Follows SkyPrep's own guidance: a client-side rate limiter, no retry on 4xx, bounded retries
/// with backoff on 5xx and timeouts, and every failure logged with what support asks for (endpoint,
/// time, status, response body, a redacted request) — never the keys.
public struct SkyPrepClient: Sendable {
    let http: HTTPClient
    public let settings: SkyPrepClientSettings
    let limiter: RateLimiter
    let logger: Logger

    /// - Parameter limiter: share one between clients of several SkyPrep accounts: SkyPrep limits calls per IP.
    public init(http: HTTPClient, settings: SkyPrepClientSettings, logger: Logger, limiter: RateLimiter? = nil) {
        self.http = http
        self.settings = settings
        self.limiter = limiter ?? RateLimiter(limit: settings.callsPerMinute, per: .seconds(60))
        self.logger = logger
    }

    /// This client with calls that wait at most `maxWait` for a free slot of the rate limiter.
    public func waitingAtMost(_ maxWait: Duration) -> SkyPrepClient {
        var settings = settings
        settings.maxQueueWait = maxWait
        return SkyPrepClient(http: http, settings: settings, logger: logger, limiter: limiter)
    }

    /// This client for another SkyPrep account (same rate limiter, same retry policy).
    public func forAccount(acctKey: String, apiKey: String) -> SkyPrepClient {
        var other = settings
        other.acctKey = acctKey
        other.apiKey = apiKey
        return SkyPrepClient(http: http, settings: other, logger: logger, limiter: limiter)
    }

    /// `test_connection`: true when SkyPrep answers `message` = `success`.
    public func testConnection() async throws -> Bool {
        let answer = try await call("test_connection", [:])
        return (answer["message"] as? String)?.lowercased() == "success"
    }

    /// The user with `email` (case-insensitive), nil when SkyPrep has none: by ``SkyPrepClientSettings/userLookup``.
    public func user(email: String) async throws -> SkyPrepUserSummary? {
        switch settings.userLookup {
        case .listAll:
            return try await users().first { $0.email.lowercased() == email.lowercased() }
        case .getUserByEmail:
            let answer: [String: any Sendable]
            do {
                answer = try await call("get_user", [SkyPrepParameterNames.userLookupEmail: email])
            } catch let error as SkyPrepError where error.code == .notFound {
                return nil
            }
            let user = (answer["user"] as? [String: any Sendable]) ?? answer
            guard let id = Self.integer(user["id"]), let found = user["email"] as? String, found.lowercased() == email.lowercased() else {
                return nil
            }
            return SkyPrepUserSummary(id: id, email: found, userIdentifier: user["user_identifier"] as? String)
        }
    }

    /// `get_users`: every user (SkyPrep answers a JSON array of users with `id` and `email`).
    public func users() async throws -> [SkyPrepUserSummary] {
        let answer = try await request("get_users", [:])
        guard let list = answer as? [any Sendable] else {
            throw SkyPrepError(code: .notJSON, method: "get_users", httpStatus: 200, responseBody: "not a JSON array")
        }
        return list.compactMap { item in
            guard let user = item as? [String: any Sendable], let id = Self.integer(user["id"]), let email = user["email"] as? String else {
                return nil
            }
            return SkyPrepUserSummary(id: id, email: email, userIdentifier: user["user_identifier"] as? String)
        }
    }

    /// `create_user`; the new user's id.
    public func createUser(_ user: SkyPrepNewUser) async throws -> Int {
        var parameters = [
            SkyPrepParameterNames.createUserEmail: user.email, "first_name": user.firstName, "last_name": user.lastName,
            "user_identifier": user.userIdentifier, "role": user.role,
        ]
        parameters = parameters.filter { !$0.value.isEmpty || $0.key == "first_name" || $0.key == "last_name" }
        return try Self.userID(in: try await call("create_user", parameters), method: "create_user")
    }

    /// `update_user`: names, and the role unless it is nil (then SkyPrep keeps the user's own).
    public func updateUser(id: Int, firstName: String, lastName: String, role: String?) async throws {
        var parameters = ["user_id": String(id), "first_name": firstName, "last_name": lastName]
        if let role { parameters["role"] = role }
        _ = try await call("update_user", parameters)
    }

    /// `get_user`: the user's SkyPrep role (`learner`, `admin`, …), nil when SkyPrep's answer names none.
    public func userRole(id: Int) async throws -> String? {
        let answer = try await call("get_user", ["user_id": String(id)])
        let user = (answer["user"] as? [String: any Sendable]) ?? answer
        return (user["role"] ?? user["user_role"]) as? String
    }

    /// `enroll_user_in_courses` for the user with `email`.
    public func enrolUser(email: String, courseIDs: [String]) async throws {
        _ = try await call(
            "enroll_user_in_courses",
            [
                SkyPrepParameterNames.enrolEmail: email,
                SkyPrepParameterNames.enrolCourses: courseIDs.joined(separator: ";"),
            ])
    }

    /// `get_login_key` with `autocreate=1`: the one-time (`otl`) sign-in URL for the user with `email`, created if absent.
    public func loginURL(email: String, firstName: String, lastName: String, groups: [String]) async throws -> String {
        var parameters = ["user_email": email, "first_name": firstName, "last_name": lastName, "autocreate": "1", "key_type": "otl"]
        if !groups.isEmpty {
            // `;` separates groups, so none may hold one.
            parameters["user_groups"] = groups.map { $0.replacingOccurrences(of: ";", with: ",") }.joined(separator: ";")
            parameters["autocreate_user_groups"] = "1"
        }
        let answer = try await call("get_login_key", parameters)
        guard let url = answer["url"] as? String, !url.isEmpty else {
            throw SkyPrepError(code: .notJSON, method: "get_login_key", httpStatus: 200, responseBody: "no url in the answer")
        }
        return url
    }

    /// The user id in an answer: `id`, `user_id` or `user.id` (the answer shape is not documented).
    static func userID(in answer: [String: any Sendable], method: String) throws -> Int {
        if let id = integer(answer["id"]) ?? integer(answer["user_id"]) ?? integer((answer["user"] as? [String: any Sendable])?["id"]) {
            return id
        }
        throw SkyPrepError(code: .notJSON, method: method, httpStatus: 200, responseBody: "no user id in the answer")
    }

    static func integer(_ value: (any Sendable)?) -> Int? {
        switch value {
        case let v as Int: v
        case let v as String: Int(v)
        case let v as Double where v == v.rounded(): Int(v)
        default: nil
        }
    }

    /// Calls `method` with form `parameters`; the decoded JSON object.
    ///
    /// - Important: Parameters may hold personal data; failures log them with values redacted.
    public func call(_ method: String, _ parameters: [String: String]) async throws -> [String: any Sendable] {
        guard let object = try await request(method, parameters) as? [String: any Sendable] else {
            throw SkyPrepError(code: .notJSON, method: method, httpStatus: 200, responseBody: "not a JSON object")
        }
        return object
    }

    /// Sends with the rate limiter and the retry policy; the decoded JSON (object or array).
    private func request(_ method: String, _ parameters: [String: String]) async throws -> any Sendable {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await limiter.acquire(waitingAtMost: settings.maxQueueWait)
            } catch is RateLimiterFull {
                throw SkyPrepError(code: .rateLimited, method: method, httpStatus: nil, responseBody: "no slot of the client-side rate limit in time")
            }
            do {
                return try await send(method, parameters)
            } catch let error as SkyPrepError {
                log(error, parameters: parameters, attempt: attempt)
                // SkyPrep's rate limit is not retried here: the caller's queue tries again much later.
                guard error.isTransient, error.code != .rateLimited, attempt < settings.maxAttempts else { throw error }
                try await Task.sleep(for: settings.retry.delay(afterAttempt: attempt))
            }
        }
    }

    private func send(_ method: String, _ parameters: [String: String]) async throws -> any Sendable {
        var base = settings.baseURL()
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + "/" + method)
        request.method = .POST
        request.headers.add(name: "X-SkyPrep-Acct-Key", value: settings.acctKey)
        request.headers.add(name: "X-SkyPrep-API-Key", value: settings.apiKey)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        let form = FormEncoding.encode(parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        request.body = .bytes(ByteBuffer(string: form))
        // One deadline for the whole exchange: the answer's head, then its body in what time is left.
        let deadline = ContinuousClock.now + .nanoseconds(settings.timeout.nanoseconds)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: settings.timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw SkyPrepError(code: .timeout, method: method, httpStatus: nil, responseBody: "")
        } catch {
            throw SkyPrepError(code: .transport, method: method, httpStatus: nil, responseBody: "\(type(of: error))")
        }
        let body: String
        do {
            body = String(buffer: try await withDeadline(deadline - .now) { try await response.body.collect(upTo: 1 << 20) })
        } catch is DeadlineExceeded {
            throw SkyPrepError(code: .timeout, method: method, httpStatus: Int(response.status.code), responseBody: "")
        } catch {
            body = ""  // too large or cut off: judged by its status, and never read as data
        }
        let status = Int(response.status.code)
        let excerpt = String(body.prefix(500))
        switch status {
        case 200..<300: break
        case 400: throw SkyPrepError(code: .badParameters, method: method, httpStatus: status, responseBody: excerpt)
        case 401: throw SkyPrepError(code: .notAuthenticated, method: method, httpStatus: status, responseBody: excerpt)
        case 403: throw SkyPrepError(code: .refused, method: method, httpStatus: status, responseBody: excerpt)
        case 404: throw SkyPrepError(code: .notFound, method: method, httpStatus: status, responseBody: excerpt)
        case 429: throw SkyPrepError(code: .rateLimited, method: method, httpStatus: status, responseBody: excerpt)
        case 500..<600: throw SkyPrepError(code: .serverError, method: method, httpStatus: status, responseBody: excerpt)
        default: throw SkyPrepError(code: .badParameters, method: method, httpStatus: status, responseBody: excerpt)
        }
        // A wrong key has been seen to return the website's HTML with 200: never data.
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)), let value = Self.sendable(json) else {
            throw SkyPrepError(code: .notJSON, method: method, httpStatus: status, responseBody: excerpt)
        }
        return value
    }

    /// What SkyPrep support asks for: endpoint, time, status, body, and the request with values redacted.
    private func log(_ error: SkyPrepError, parameters: [String: String], attempt: Int) {
        logger.warning(
            "skyprep call failed",
            metadata: [
                "skyprep.endpoint": "\(settings.baseURL())/\(error.method)",
                "skyprep.time": "\(ISO8601DateFormatter().string(from: Date()))",
                "skyprep.status": "\(error.httpStatus.map(String.init) ?? "-")",
                "skyprep.error": "\(error.code.rawValue)",
                "skyprep.attempt": "\(attempt)",
                "skyprep.response_body": "\(error.responseBody)",
                "skyprep.request": "\(parameters.keys.sorted().map { "\($0)=<redacted>" }.joined(separator: "&"))",
            ])
    }

    static func sendable(_ value: Any) -> (any Sendable)? {
        switch value {
        case let v as String: v
        case let v as Bool: v
        case let v as Int: v
        case let v as Double: v
        case let v as [Any]: v.compactMap { sendable($0) }
        case let v as [String: Any]: v.compactMapValues { sendable($0) }
        default: nil
        }
    }
}

/// A user as `get_users` lists them.
public struct SkyPrepUserSummary: Sendable, Equatable {
    public var id: Int
    public var email: String
    /// Present only if SkyPrep includes it in the list (undocumented).
    public var userIdentifier: String?

    public init(id: Int, email: String, userIdentifier: String?) {
        self.id = id
        self.email = email
        self.userIdentifier = userIdentifier
    }
}

/// What `create_user` needs.
public struct SkyPrepNewUser: Sendable, Equatable {
    public var email: String
    public var firstName: String
    public var lastName: String
    /// Our stable learner id, so that SkyPrep's user can be traced back to the LMS identity.
    public var userIdentifier: String
    /// learner, admin, manager or content_manager.
    public var role: String

    public init(email: String, firstName: String, lastName: String, userIdentifier: String, role: String) {
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
        self.userIdentifier = userIdentifier
        self.role = role
    }
}

/// Parameter names that vendor-apis.md marks unconfirmed, kept in one place.
public enum SkyPrepParameterNames {
    /// `create_user`'s email: some clients send `user_email`; the documentation and the fake use `email`.
    public static let createUserEmail = "email"
    /// `enroll_user_in_courses`: the user by email, courses `;`-separated (unconfirmed).
    public static let enrolEmail = "user_email"
    public static let enrolCourses = "course_ids"
    /// `get_user` by email, when ``SkyPrepUserLookup/getUserByEmail`` is chosen (unconfirmed).
    public static let userLookupEmail = "user_email"
}

/// At most `limit` acquisitions per sliding `window`; callers wait for a free slot (SkyPrep's guidance:
/// about 100 calls a minute, no large concurrent batches).
public actor RateLimiter {
    private let limit: Int
    private let window: Duration
    private var recent: [ContinuousClock.Instant] = []

    public init(limit: Int, per window: Duration) {
        self.limit = max(1, limit)
        self.window = window
    }

    /// Waits for a free slot; throws `CancellationError` when the waiting task is cancelled (shutdown), and
    /// ``RateLimiterFull`` at once when no slot frees within `maxWait`.
    public func acquire(waitingAtMost maxWait: Duration? = nil) async throws {
        let deadline = maxWait.map { ContinuousClock.now + $0 }
        while true {
            let now = ContinuousClock.now
            recent.removeAll { now - $0 >= window }
            if recent.count < limit {
                recent.append(now)
                return
            }
            let wait = window - (now - recent[0])
            if let deadline, now + wait > deadline { throw RateLimiterFull() }
            try await Task.sleep(for: wait)
        }
    }
}

/// No slot of a ``RateLimiter`` frees within the wait a caller allows.
public struct RateLimiterFull: Error {}

/// How the gateway finds a SkyPrep user by email (`SKYPREP_USER_LOOKUP`).
public enum SkyPrepUserLookup: String, Sendable, CaseIterable {
    /// `get_users`, filtered here: documented, but it lists the whole tenant (the default).
    case listAll = "get_users"
    /// `get_user` with `user_email`: one user per call, the smallest answer — SkyPrep's support for a lookup by email
    /// is unconfirmed, so this is opt-in.
    case getUserByEmail = "get_user"
}
