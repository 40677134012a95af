import AsyncHTTPClient
import Foundation
import GatewaySupport
import LTICore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// LTI Assignment and Grade Services scopes (lti-advantage.md §3).
public enum AGSScope {
    public static let score = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    public static let lineItem = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
    public static let lineItemReadOnly = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"

    /// What ``AGSClient`` asks a token for to post a score.
    public static let forScores = [score]
    /// What ``AGSClient`` asks a token for to find or create a line item.
    public static let forLineItems = [lineItem]
    /// Every scope ``AGSClient`` asks for, and so what a registration requests (Canvas developer key, dynamic
    /// registration): no more, so that no administrator grants what nothing uses.
    public static let requested = forLineItems + forScores
}

/// A platform's service endpoints and the tool's identity there: what a service call needs of a registration.
public struct PlatformServiceAccount: Sendable, Equatable {
    /// Cache key of its tokens (the registration's id).
    public var id: String
    public var clientID: String
    public var tokenURL: String

    public init(id: String, clientID: String, tokenURL: String) {
        self.id = id
        self.clientID = clientID
        self.tokenURL = tokenURL
    }
}

/// A score as AGS takes it (`application/vnd.ims.lis.v1.score+json`).
public struct AGSScore: Sendable, Equatable, Codable {
    public var userID: String
    public var scoreGiven: Double
    public var scoreMaximum: Double
    /// When the score was given; platforms keep only the newest per user and line item.
    public var timestamp: Date
    public var comment: String?

    public init(userID: String, scoreGiven: Double, scoreMaximum: Double, timestamp: Date, comment: String? = nil) {
        self.userID = userID
        self.scoreGiven = scoreGiven
        self.scoreMaximum = scoreMaximum
        self.timestamp = timestamp
        self.comment = comment
    }
}

/// Why a grade service call failed.
public struct AGSError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The token endpoint refused the tool's assertion: the registration or keys are wrong — or the platform still
        /// caches the tool's key set from before a rotation, so it is tried again (within the attempt limit).
        case tokenRefused = "ags_token_refused"
        /// A URL the platform named is not one the gateway calls (not https, or a line item on another origin).
        case urlRefused = "ags_url_refused"
        /// The platform refused the call (a line item that is gone, a score it will not take).
        case rejected = "ags_rejected"
        /// The platform is down, slow, throttling or unreachable: retrying later may succeed.
        case unavailable = "ags_unavailable"
        /// The platform answered something that is not AGS.
        case invalidResponse = "ags_invalid_response"
    }

    public var code: Code
    /// The HTTP status, when the platform answered.
    public var status: Int?
    public var detail: String

    public var transient: Bool { code == .unavailable || code == .tokenRefused }
    public var description: String { "\(code.rawValue)\(status.map { " http \($0)" } ?? ""): \(detail)" }

    /// The error for an HTTP status: 408, 429 and 5xx are worth a retry, as is Canvas's throttling (403 with
    /// `X-Rate-Limit-Remaining`); any other refusal is not.
    static func status(_ status: Int, throttled: Bool, while doing: String, refused: Code = .rejected) -> AGSError {
        let transient = status == 408 || status == 429 || status >= 500 || (status == 403 && throttled)
        return AGSError(code: transient ? .unavailable : refused, status: status, detail: "\(doing) answered \(status)")
    }
}

/// Calls a platform's grade services: access tokens by the OAuth 2 client-credentials grant with a signed JWT
/// assertion (cached per registration and scope set), scores, and line items (lti-advantage.md §3).
public final class AGSClient: Sendable {
    public struct Settings: Sendable {
        /// Deadline of one whole exchange (answer and body).
        public var timeout: Duration = .seconds(10)
        /// Largest answer read.
        public var maxResponseBytes = 256 * 1024
        /// A token is used until this long before it expires.
        public var tokenMargin: TimeInterval = 30
        public var userAgent = "lti-gateway"
        public init() {}
    }

    struct CachedToken {
        var value: String
        var expiresAt: Date
    }

    let http: HTTPClient
    let settings: Settings
    /// The tool's current signer (its active key), read at each assertion.
    let signer: @Sendable () -> ToolTokenSigner
    let now: @Sendable () -> Date
    let logger: Logger
    private let tokens = Mutex<[String: CachedToken]>([:])

    public init(
        http: HTTPClient, settings: Settings = Settings(), signer: @escaping @Sendable () -> ToolTokenSigner, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.http = http
        self.settings = settings
        self.signer = signer
        self.logger = logger
        self.now = now
    }

    // MARK: tokens

    static func cacheKey(_ account: PlatformServiceAccount, _ scopes: [String]) -> String {
        account.id + " " + scopes.sorted().joined(separator: " ")
    }

    /// The signed assertion of the client-credentials grant: `iss` = `sub` = client id, `aud` = the token URL exactly,
    /// `iat` a little in the past (Moodle refuses one in the future), `exp` five minutes on, a unique `jti`.
    func assertion(_ account: PlatformServiceAccount) throws -> String {
        let now = Int(now().timeIntervalSince1970)
        return try signer().sign(claims: [
            "iss": account.clientID, "sub": account.clientID, "aud": account.tokenURL, "iat": now - 5, "exp": now + 300,
            "jti": SecureRandom.token(byteCount: 16),
        ])
    }

    /// An access token for `scopes`: cached until shortly before it expires.
    func accessToken(_ account: PlatformServiceAccount, scopes: [String]) async throws -> String {
        let key = Self.cacheKey(account, scopes)
        let now = now()
        if let cached = tokens.withLock({ $0[key] }), cached.expiresAt > now { return cached.value }
        let form = FormEncoding.encode([
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", try assertion(account)), ("scope", scopes.joined(separator: " ")),
        ])
        let (status, body, _) = try await exchange(
            .POST, account.tokenURL, body: form, headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
            doing: "the token endpoint")
        guard status == 200 else { throw AGSError.status(status, throttled: false, while: "the token endpoint", refused: .tokenRefused) }
        struct TokenAnswer: Decodable {
            var access_token: String
            var expires_in: Double?
        }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: body), !answer.access_token.isEmpty else {
            throw AGSError(code: .invalidResponse, status: status, detail: "the token endpoint's answer has no access_token")
        }
        let lifetime = max(0, (answer.expires_in ?? 3600) - settings.tokenMargin)
        tokens.withLock { $0[key] = CachedToken(value: answer.access_token, expiresAt: now.addingTimeInterval(lifetime)) }
        return answer.access_token
    }

    /// Runs `call` with a token for `scopes`; on 401 the token is dropped and the call made once more with a new one.
    private func authorized(
        _ account: PlatformServiceAccount, scopes: [String], _ call: (String) async throws -> (Int, Data, HTTPHeaders)
    ) async throws -> (Int, Data, HTTPHeaders) {
        let first = try await call(try await accessToken(account, scopes: scopes))
        guard first.0 == 401 else { return first }
        _ = tokens.withLock { $0.removeValue(forKey: Self.cacheKey(account, scopes)) }
        return try await call(try await accessToken(account, scopes: scopes))
    }

    // MARK: scores

    /// `{lineItem}/scores`: `/scores` inserted before the line item URL's query string, which is kept.
    public static func scoresURL(_ lineItem: String) -> String {
        guard var components = URLComponents(string: lineItem) else { return lineItem + "/scores" }
        let path = components.percentEncodedPath
        components.percentEncodedPath = (path.hasSuffix("/") ? String(path.dropLast()) : path) + "/scores"
        return components.string ?? lineItem + "/scores"
    }

    /// Posts `score` to the line item (checklist "Services"): activity `Completed`, grading `FullyGraded`.
    public func postScore(_ score: AGSScore, lineItem: String, account: PlatformServiceAccount) async throws {
        let formatter = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var body: [String: any Sendable] = [
            "userId": score.userID, "scoreGiven": score.scoreGiven, "scoreMaximum": score.scoreMaximum, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded", "timestamp": formatter.format(score.timestamp),
        ]
        if let comment = score.comment { body["comment"] = comment }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        let url = Self.scoresURL(lineItem)
        let (status, _, headers) = try await authorized(account, scopes: AGSScope.forScores) { token in
            try await exchange(
                .POST, url, body: json,
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/vnd.ims.lis.v1.score+json")],
                doing: "the score endpoint")
        }
        guard (200..<300).contains(status) else {
            throw AGSError.status(status, throttled: headers.contains(name: "X-Rate-Limit-Remaining"), while: "the score endpoint")
        }
    }

    // MARK: line items

    /// The line item of a resource link in the context's line items (`lineitems`): found by resource link or
    /// resource id, else created with `label` and `scoreMaximum`.
    public func lineItem(
        in lineItems: String, resourceLinkID: String?, resourceID: String, label: String, scoreMaximum: Double, account: PlatformServiceAccount
    ) async throws -> String {
        let scopes = AGSScope.forLineItems
        var query = URLComponents(string: lineItems)
        if let resourceLinkID {
            let existing = query?.queryItems ?? []
            query?.queryItems = existing + [URLQueryItem(name: "resource_link_id", value: resourceLinkID)]
        }
        let listURL = query?.string ?? lineItems
        let (status, body, headers) = try await authorized(account, scopes: scopes) { token in
            try await exchange(
                .GET, listURL, body: nil,
                headers: [("Authorization", "Bearer \(token)"), ("Accept", "application/vnd.ims.lis.v2.lineitemcontainer+json")],
                doing: "the line items endpoint")
        }
        guard status == 200 else {
            throw AGSError.status(status, throttled: headers.contains(name: "X-Rate-Limit-Remaining"), while: "the line items endpoint")
        }
        struct LineItem: Decodable {
            var id: String
            var resourceId: String?
            var resourceLinkId: String?
        }
        guard let items = try? JSONDecoder().decode([LineItem].self, from: body) else {
            throw AGSError(code: .invalidResponse, status: status, detail: "the line items endpoint's answer is not a list of line items")
        }
        if let found = items.first(where: { $0.resourceId == resourceID && (resourceLinkID == nil || $0.resourceLinkId == resourceLinkID) })
            ?? items.first(where: { resourceLinkID != nil && $0.resourceLinkId == resourceLinkID })
        {
            return try Self.sameOrigin(found.id, as: lineItems)
        }
        var item: [String: any Sendable] = ["scoreMaximum": scoreMaximum, "label": label, "resourceId": resourceID, "tag": "skillable-lab"]
        if let resourceLinkID { item["resourceLinkId"] = resourceLinkID }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: item, options: [.sortedKeys]), as: UTF8.self)
        let (created, createdBody, createdHeaders) = try await authorized(account, scopes: scopes) { token in
            try await exchange(
                .POST, lineItems, body: json,
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")],
                doing: "the line items endpoint")
        }
        guard (200..<300).contains(created) else {
            throw AGSError.status(created, throttled: createdHeaders.contains(name: "X-Rate-Limit-Remaining"), while: "the line items endpoint")
        }
        guard let item = try? JSONDecoder().decode(LineItem.self, from: createdBody) else {
            throw AGSError(code: .invalidResponse, status: created, detail: "the created line item has no id")
        }
        return try Self.sameOrigin(item.id, as: lineItems)
    }

    /// `url` when it is on the origin of `reference` (a line item the platform names must be its own).
    static func sameOrigin(_ url: String, as reference: String) throws -> String {
        func origin(_ text: String) -> String? {
            URLComponents(string: text).flatMap { c in
                c.scheme.flatMap { s in c.host.map { "\(s.lowercased())://\($0.lowercased()):\(c.port ?? -1)" } }
            }
        }
        guard let found = origin(url), found == origin(reference) else {
            throw AGSError(code: .urlRefused, status: nil, detail: "a line item on another origin than the line items URL")
        }
        return url
    }

    /// Whether the gateway calls `url`: https, or http to this machine (a local platform, the tests).
    ///
    /// - Important: The URLs come from launches (the AGS claim) and platforms' answers; a bearer token goes with each call.
    public static func isCallable(_ url: String) -> Bool { SecureURL.parse(url) != nil }

    // MARK: plumbing

    /// One whole exchange within the deadline: status, body (capped) and headers. Network failures and deadlines are
    /// ``AGSError/Code/unavailable``.
    private func exchange(
        _ method: HTTPMethod, _ url: String, body: String?, headers: [(String, String)], doing: String
    ) async throws -> (Int, Data, HTTPHeaders) {
        guard Self.isCallable(url) else { throw AGSError(code: .urlRefused, status: nil, detail: "\(doing) is not an https URL") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: settings.userAgent)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let (http, timeout, maxBytes, prepared) = (http, settings.timeout, settings.maxResponseBytes, request)
        do {
            return try await withDeadline(timeout) {
                let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                let response = try await http.execute(prepared, timeout: .nanoseconds(nanoseconds))
                let data = try await response.body.collect(upTo: maxBytes)
                return (Int(response.status.code), Data(data.readableBytesView), response.headers)
            }
        } catch let error as AGSError {
            throw error
        } catch {
            throw AGSError(code: .unavailable, status: nil, detail: "\(doing) could not be reached: \(error)")
        }
    }
}
