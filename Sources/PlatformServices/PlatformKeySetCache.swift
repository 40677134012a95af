import AsyncHTTPClient
import Foundation
import GatewaySupport
import LTICore
import Logging
import NIOCore
import NIOHTTP1

/// How platform key sets are fetched and kept.
public struct PlatformKeySetCacheSettings: Sendable {
    /// Deadline for one JWKS fetch.
    public var fetchTimeout: TimeAmount
    /// Larger key set documents are refused.
    public var maxDocumentBytes: Int
    /// Lifetime when the platform sends no `Cache-Control: max-age`.
    public var defaultMaxAge: Duration
    /// `max-age` is clamped into this range (a platform answering `no-store` is still not fetched per launch).
    public var minMaxAge: Duration
    public var maxMaxAge: Duration
    /// An unknown `kid` re-fetches a key set at most once per this interval (checklist "Launch" rule 3).
    public var minRefetchInterval: Duration
    /// When a refresh fails, keys this much past their lifetime are still used.
    public var staleIfError: Duration
    /// After a failed fetch, the URL is not fetched again for a while: `minRefetchInterval`, doubling with each
    /// further failure, at most this long. Launches in between use the keys held (if any) or are refused at once.
    public var maxFailureBackoff: Duration

    public init(
        fetchTimeout: TimeAmount = .seconds(5), maxDocumentBytes: Int = 256 * 1024,
        defaultMaxAge: Duration = .seconds(300), minMaxAge: Duration = .seconds(60),
        maxMaxAge: Duration = .seconds(86_400), minRefetchInterval: Duration = .seconds(10),
        staleIfError: Duration = .seconds(3600), maxFailureBackoff: Duration = .seconds(300)
    ) {
        self.fetchTimeout = fetchTimeout
        self.maxDocumentBytes = maxDocumentBytes
        self.defaultMaxAge = defaultMaxAge
        self.minMaxAge = minMaxAge
        self.maxMaxAge = maxMaxAge
        self.minRefetchInterval = minRefetchInterval
        self.staleIfError = staleIfError
        self.maxFailureBackoff = maxFailureBackoff
    }
}

/// A failed key set fetch.
public struct PlatformKeySetError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var reason: String
    public var description: String { "JWKS fetch from \(url) failed: \(reason)" }
}

/// The platforms' public key sets, cached per JWKS URL (checklist "Launch" rule 3).
///
/// Keys are parsed once per fetch into ``PlatformPublicKey`` values, so a launch costs a dictionary
/// lookup. There is no default key: a `kid` absent from the set is unknown, full stop, which makes
/// the jwt-kit default-key fallback impossible by construction. Concurrent fetches of one URL share
/// a single request. A URL whose fetch failed is not fetched again before its backoff has passed, however many
/// launches ask (negative caching).
public actor PlatformKeySetCache: PlatformKeyProvider {
    struct Entry {
        var keys: [String: PlatformPublicKey]
        var fetchedAt: ContinuousClock.Instant
        var expiresAt: ContinuousClock.Instant
    }

    /// The failures of a URL since its last good fetch.
    struct Failure {
        var error: any Error
        var count: Int
        var retryAt: ContinuousClock.Instant
    }

    private let http: HTTPClient
    private let settings: PlatformKeySetCacheSettings
    private let logger: Logger
    private let now: @Sendable () -> ContinuousClock.Instant
    private var entries: [String: Entry] = [:]
    private var inFlight: [String: Task<Entry, any Error>] = [:]
    private var failures: [String: Failure] = [:]
    /// Number of HTTP fetches made, for tests and metrics.
    public private(set) var fetchCount = 0

    /// - Parameter now: the clock (a parameter, so that tests can move time instead of sleeping).
    public init(
        http: HTTPClient, settings: PlatformKeySetCacheSettings = .init(), logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.http = http
        self.settings = settings
        self.logger = logger
        self.now = now
    }

    public func key(kid: String, jwksURL: String) async throws -> PlatformPublicKey? {
        let now = self.now()
        if let entry = entries[jwksURL] {
            if now < entry.expiresAt {
                if let key = entry.keys[kid] { return key }
                // Unknown kid in a fresh set: re-fetch once, rate-limited per URL.
                guard now - entry.fetchedAt >= settings.minRefetchInterval else {
                    logger.debug("unknown kid, re-fetch rate-limited", metadata: ["lti.jwks_url": "\(jwksURL)"])
                    return nil
                }
            }
        }
        do {
            return try await refresh(jwksURL).keys[kid]
        } catch {
            // A platform outage does not stop launches signed with keys we already hold.
            if let entry = entries[jwksURL], now < entry.expiresAt + settings.staleIfError, let key = entry.keys[kid] {
                logger.warning("JWKS refresh failed; using cached keys", metadata: ["lti.jwks_url": "\(jwksURL)", "error": "\(error)"])
                return key
            }
            throw error
        }
    }

    private func refresh(_ url: String) async throws -> Entry {
        if let running = inFlight[url] { return try await running.value }
        if let failure = failures[url], now() < failure.retryAt {
            logger.debug("JWKS fetch skipped: failed recently", metadata: ["lti.jwks_url": "\(url)"])
            throw failure.error
        }
        let task = Task { try await self.fetch(url) }
        inFlight[url] = task
        defer { inFlight[url] = nil }
        do {
            let entry = try await task.value
            entries[url] = entry
            failures[url] = nil
            return entry
        } catch {
            let count = (failures[url]?.count ?? 0) + 1
            let backoff = Backoff(base: settings.minRefetchInterval, cap: settings.maxFailureBackoff, jitter: .none)
            failures[url] = Failure(error: error, count: count, retryAt: now() + backoff.bound(afterAttempt: count))
            throw error
        }
    }

    private func fetch(_ url: String) async throws -> Entry {
        fetchCount += 1
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        // One deadline for the whole exchange: the answer's head, then its body in what time is left.
        let deadline = ContinuousClock.now + .nanoseconds(settings.fetchTimeout.nanoseconds)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: settings.fetchTimeout)
        } catch {
            throw PlatformKeySetError(url: url, reason: "no answer (\(error))")
        }
        guard response.status == .ok else {
            throw PlatformKeySetError(url: url, reason: "HTTP \(response.status.code)")
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > settings.maxDocumentBytes {
            throw PlatformKeySetError(url: url, reason: "document larger than \(settings.maxDocumentBytes) bytes")
        }
        let body: ByteBuffer
        do {
            body = try await withDeadline(deadline - .now) { [maxBytes = settings.maxDocumentBytes] in
                try await response.body.collect(upTo: maxBytes)
            }
        } catch is DeadlineExceeded {
            throw PlatformKeySetError(url: url, reason: "document not received within \(settings.fetchTimeout)")
        } catch {
            throw PlatformKeySetError(url: url, reason: "document larger than \(settings.maxDocumentBytes) bytes or unreadable")
        }
        let keys = try Self.parse(Data(body.readableBytesView), url: url, logger: logger)
        let maxAge = Self.maxAge(response.headers.first(name: "Cache-Control")).map { Duration.seconds($0) } ?? settings.defaultMaxAge
        let lifetime = min(max(maxAge, settings.minMaxAge), settings.maxMaxAge)
        let now = self.now()
        logger.info("fetched platform JWKS", metadata: ["lti.jwks_url": "\(url)", "lti.jwks_keys": "\(keys.count)"])
        return Entry(keys: keys, fetchedAt: now, expiresAt: now + lifetime)
    }

    /// The RS256-capable signing keys of a JWKS document, by kid. Keys for encryption, of other types or
    /// algorithms, without kid, or under 2048 bits are skipped.
    static func parse(_ data: Data, url: String, logger: Logger) throws -> [String: PlatformPublicKey] {
        struct Document: Decodable { var keys: [JWK] }
        struct JWK: Decodable { var kty: String?; var kid: String?; var use: String?; var alg: String?; var n: String?; var e: String? }
        guard let document = try? JSONDecoder().decode(Document.self, from: data) else {
            throw PlatformKeySetError(url: url, reason: "not a JWKS document")
        }
        var keys: [String: PlatformPublicKey] = [:]
        for jwk in document.keys {
            guard jwk.kty == "RSA", let kid = jwk.kid, let n = jwk.n, let e = jwk.e,
                jwk.use == nil || jwk.use == "sig", jwk.alg == nil || jwk.alg == "RS256"
            else { continue }
            do {
                keys[kid] = try PlatformPublicKey(kid: kid, modulus: n, exponent: e)
            } catch {
                logger.warning("skipped unusable platform key", metadata: ["lti.jwks_url": "\(url)", "lti.kid": "\(kid)"])
            }
        }
        return keys
    }

    /// The `max-age` of a `Cache-Control` header, in seconds.
    static func maxAge(_ header: String?) -> Int64? {
        guard let header else { return nil }
        for directive in header.split(separator: ",") {
            let parts = directive.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "max-age", let seconds = Int64(parts[1]) { return seconds }
            if parts.count == 1, ["no-store", "no-cache"].contains(parts[0].lowercased()) { return 0 }
        }
        return nil
    }
}
