import AsyncHTTPClient
import Foundation
import GatewaySupport
import Hummingbird
import HummingbirdTesting
import LTICore
import LTITestSupport
import Logging
import PlatformServices
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    private let start = ContinuousClock.now
    var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
    func advance(_ by: Duration) { offset.withLock { $0 += by } }
}

/// A platform JWKS endpoint whose answer tests control.
final class JWKSEndpoint: Sendable {
    struct Answer: Sendable {
        var body: String
        var cacheControl: String?
        var delay: Duration = .zero
        var status: HTTPResponse.Status = .ok
        /// Sends the head and the body's first byte, then waits this long before the rest.
        var bodyStall: Duration = .zero
    }
    let answer: Mutex<Answer>
    let hits = Mutex(0)
    init(_ answer: Answer) { self.answer = Mutex(answer) }

    func run(
        _ body: @escaping @Sendable (String, PlatformKeySetCache) async throws -> Void,
        settings: PlatformKeySetCacheSettings = .init(), clock: ManualClock? = nil
    ) async throws {
        let router = Router()
        router.get("/jwks") { _, _ -> Response in
            self.hits.withLock { $0 += 1 }
            let answer = self.answer.withLock { $0 }
            if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
            var headers: HTTPFields = [.contentType: "application/json"]
            if let cache = answer.cacheControl { headers[.cacheControl] = cache }
            guard answer.bodyStall > .zero else {
                return Response(status: answer.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
            }
            return Response(
                status: answer.status, headers: headers,
                body: .init { writer in
                    try await writer.write(ByteBuffer(string: String(answer.body.prefix(1))))
                    try await Task.sleep(for: answer.bodyStall)
                    try await writer.write(ByteBuffer(string: String(answer.body.dropFirst())))
                    try await writer.finish(nil)
                })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await withHTTPClient { http in
            try await app.test(.live) { client in
                let url = "http://127.0.0.1:\(try #require(client.port))/jwks"
                let cache =
                    clock.map { clock in
                        PlatformKeySetCache(http: http, settings: settings, logger: Logger(label: "t"), now: { clock.now })
                    } ?? PlatformKeySetCache(http: http, settings: settings, logger: Logger(label: "t"))
                try await body(url, cache)
            }
        }
    }
}

@Suite("Platform key sets: cached per URL, max-age, caps, one rate-limited re-fetch")
struct PlatformKeySetCacheTests {
    let platform = TestPlatform()

    @Test("keys are fetched once and served from the cache")
    func cached() async throws {
        let endpoint = JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: "public, max-age=600"))
        try await endpoint.run { url, cache in
            for _ in 0..<5 {
                let key = try await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(key != nil)
            }
            #expect(endpoint.hits.withLock { $0 } == 1)
        }
    }

    @Test("concurrent first launches share one fetch")
    func singleFlight() async throws {
        let endpoint = JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: "max-age=600", delay: .milliseconds(200)))
        try await endpoint.run { url, cache in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let key = try await cache.key(kid: "platform-key-1", jwksURL: url)
                        #expect(key != nil)
                    }
                }
                try await group.waitForAll()
            }
            #expect(endpoint.hits.withLock { $0 } == 1)
        }
    }

    @Test("an unknown kid re-fetches once, then is rate-limited")
    func unknownKid() async throws {
        let clock = ManualClock()
        let endpoint = JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: "max-age=600"))
        try await endpoint.run(
            { url, cache in
                let known = try await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(known != nil)
                let first = try await cache.key(kid: "nope", jwksURL: url)
                #expect(first == nil)
                #expect(endpoint.hits.withLock { $0 } == 1)  // within the interval: no fetch
                clock.advance(.milliseconds(1100))
                let second = try await cache.key(kid: "nope", jwksURL: url)
                #expect(second == nil)
                #expect(endpoint.hits.withLock { $0 } == 2)
                let third = try await cache.key(kid: "nope", jwksURL: url)
                #expect(third == nil)
                #expect(endpoint.hits.withLock { $0 } == 2)
            }, settings: .init(minRefetchInterval: .seconds(1)), clock: clock)
    }

    @Test("max-age is honoured: an expired set is fetched again")
    func maxAgeHonoured() async throws {
        let clock = ManualClock()
        let endpoint = JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: "max-age=1"))
        try await endpoint.run(
            { url, cache in
                _ = try await cache.key(kid: "platform-key-1", jwksURL: url)
                _ = try await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(endpoint.hits.withLock { $0 } == 1)
                clock.advance(.milliseconds(1100))
                _ = try await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(endpoint.hits.withLock { $0 } == 2)
            }, settings: .init(minMaxAge: .seconds(1)), clock: clock)
    }

    @Test("an oversized document, a slow platform and an error status fail the fetch")
    func fetchLimits() async throws {
        let huge = #"{"keys":[],"padding":""# + String(repeating: "x", count: 300_000) + #""}"#
        try await JWKSEndpoint(.init(body: huge, cacheControl: nil)).run { url, cache in
            await #expect(throws: PlatformKeySetError.self) { _ = try await cache.key(kid: "k", jwksURL: url) }
        }
        try await JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: nil, delay: .seconds(2))).run(
            { url, cache in
                await #expect(throws: PlatformKeySetError.self) { _ = try await cache.key(kid: "platform-key-1", jwksURL: url) }
            }, settings: .init(fetchTimeout: .milliseconds(300)))
        try await JWKSEndpoint(.init(body: "<html>down</html>", cacheControl: nil, status: .internalServerError)).run { url, cache in
            await #expect(throws: PlatformKeySetError.self) { _ = try await cache.key(kid: "platform-key-1", jwksURL: url) }
        }
    }

    @Test("a key set whose body stalls fails within the fetch deadline, not the platform's pace")
    func stalledBody() async throws {
        try await JWKSEndpoint(.init(body: platform.jwksJSON, cacheControl: nil, bodyStall: .seconds(6))).run(
            { url, cache in
                let failed = try await withDeadline(.seconds(4)) { () async -> Bool in
                    (try? await cache.key(kid: "platform-key-1", jwksURL: url)) == nil
                }
                #expect(failed)
            }, settings: .init(fetchTimeout: .milliseconds(300)))
    }

    @Test("a failing key set is fetched once per backoff, however many launches ask; success ends the backoff")
    func failuresBackOff() async throws {
        let clock = ManualClock()
        let endpoint = JWKSEndpoint(.init(body: "<html>down</html>", cacheControl: nil, status: .internalServerError))
        try await endpoint.run(
            { url, cache in
                for _ in 0..<20 {
                    await #expect(throws: PlatformKeySetError.self) { _ = try await cache.key(kid: "platform-key-1", jwksURL: url) }
                }
                #expect(endpoint.hits.withLock { $0 } == 1)
                clock.advance(.milliseconds(1100))  // past the first backoff (1 s)
                _ = try? await cache.key(kid: "platform-key-1", jwksURL: url)
                _ = try? await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(endpoint.hits.withLock { $0 } == 2)
                clock.advance(.milliseconds(1100))  // the second backoff is 2 s
                _ = try? await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(endpoint.hits.withLock { $0 } == 2)
                clock.advance(.milliseconds(1000))
                _ = try? await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(endpoint.hits.withLock { $0 } == 3)
                endpoint.answer.withLock { $0 = .init(body: platform.jwksJSON, cacheControl: "max-age=600") }
                clock.advance(.milliseconds(4100))
                let recovered = try await cache.key(kid: "platform-key-1", jwksURL: url)
                #expect(recovered != nil)
                #expect(endpoint.hits.withLock { $0 } == 4)
                // After a good fetch an unknown kid is rate-limited by the refetch interval again, not by the old backoff.
                clock.advance(.milliseconds(1100))
                let unknown = try await cache.key(kid: "other", jwksURL: url)
                #expect(unknown == nil)
                #expect(endpoint.hits.withLock { $0 } == 5)
            }, settings: .init(minRefetchInterval: .seconds(1)), clock: clock)
    }

    @Test("keys for encryption, of other types or algorithms, without kid, or too small are not used")
    func unusableKeysSkipped() async throws {
        let good = try #require(try JSONSerialization.jsonObject(with: Data(platform.jwksJSON.utf8)) as? [String: [[String: String]]])["keys"]![0]
        var enc = good; enc["kid"] = "enc"; enc["use"] = "enc"
        var ps = good; ps["kid"] = "ps"; ps["alg"] = "PS256"
        var noKid = good; noKid["kid"] = nil
        var small = good; small["kid"] = "small"; small["n"] = "AQAB"
        let ec = ["kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQAB", "y": "AQAB"]
        let document = try String(data: JSONSerialization.data(withJSONObject: ["keys": [good, enc, ps, noKid, small, ec]]), encoding: .utf8)!
        try await JWKSEndpoint(.init(body: document, cacheControl: nil)).run { url, cache in
            #expect(try await cache.key(kid: "platform-key-1", jwksURL: url) != nil)
            for kid in ["enc", "ps", "small", "ec"] {
                let key = try await cache.key(kid: kid, jwksURL: url)
                #expect(key == nil, "\(kid)")
            }
        }
    }
}
