import AsyncHTTPClient
import Foundation
import GatewaySupport
import Hummingbird
import HummingbirdTesting
import LTITestSupport
import NIOHTTP1
import Sandbox
import SkyPrep
import Testing

/// Runs the SkyPrep fake on 127.0.0.1 and hands a client bound to it to `body`.
func withSkyPrep(
    acctKey: String = "acme.skyprepapp.com", apiKey: String = "SECRET-skyprep-api-key",
    clientAPIKey: String? = nil, callsPerMinute: Int = 100, fakeCallsPerMinute: Int = 100, userLookup: SkyPrepUserLookup = .listAll,
    recorder: LogRecorder = LogRecorder(),
    _ body: @escaping @Sendable (SkyPrepClient, SkyPrepSandbox) async throws -> Void
) async throws {
    let fake = SkyPrepSandbox(acctKey: acctKey, apiKey: apiKey, callsPerMinute: fakeCallsPerMinute)
    let router = Router()
    fake.addRoutes(to: router)
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    try await withHTTPClient { http in
        try await app.test(.live) { client in
            let port = try #require(client.port)
            var settings = SkyPrepClientSettings(
                baseURL: { "http://127.0.0.1:\(port)/sandbox/skyprep/admin/api" }, acctKey: acctKey,
                apiKey: clientAPIKey ?? apiKey, callsPerMinute: callsPerMinute,
                baseRetryDelay: .milliseconds(20), timeout: .seconds(5))
            settings.userLookup = userLookup
            try await body(SkyPrepClient(http: http, settings: settings, logger: recorder.logger()), fake)
        }
    }
}

@Suite("SkyPrep client against the SkyPrep fake")
struct SkyPrepClientTests {
    @Test("an answer whose body stops midway times out within the call's deadline")
    func stalledBody() async throws {
        try await withStallingServer(stall: .seconds(6)) { port in
            try await withHTTPClient { http in
                let settings = SkyPrepClientSettings(
                    baseURL: { "http://127.0.0.1:\(port)/admin/api" }, acctKey: "acme.skyprepapp.com", apiKey: "k", callsPerMinute: 100,
                    maxAttempts: 1, timeout: .milliseconds(300))
                let client = SkyPrepClient(http: http, settings: settings, logger: LogRecorder().logger())
                let code = try await withDeadline(.seconds(4)) { () async -> SkyPrepError.Code? in
                    do {
                        _ = try await client.testConnection()
                        return nil
                    } catch {
                        return (error as? SkyPrepError)?.code
                    }
                }
                #expect(code == .timeout)
            }
        }
    }

    @Test("test_connection succeeds with the keys in the documented headers")
    func connection() async throws {
        try await withSkyPrep { client, fake in
            let connected = try await client.testConnection()
            #expect(connected)
            #expect(fake.calls["test_connection"] == 1)
        }
    }

    @Test("a call allowed to wait only briefly for the rate limiter fails at once as rate_limited instead of waiting a minute")
    func boundedQueueWait() async throws {
        try await withSkyPrep(callsPerMinute: 1) { client, fake in
            #expect(try await client.testConnection())
            let started = ContinuousClock.now
            do {
                _ = try await client.waitingAtMost(.milliseconds(200)).testConnection()
                Issue.record("a second call within the minute went through")
            } catch let error as SkyPrepError {
                #expect(error.code == .rateLimited)
            }
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(fake.calls["test_connection"] == 1)
        }
    }

    @Test("the fake checks header credentials before reading anything: a caller without them stores nothing")
    func fakeChecksCredentialsFirst() async throws {
        try await withSkyPrep(clientAPIKey: "wrong-key") { client, fake in
            await #expect(throws: SkyPrepError.self) {
                _ = try await client.createUser(
                    SkyPrepNewUser(
                        email: "mallory@example.edu", firstName: String(repeating: "m", count: 60_000), lastName: "x", userIdentifier: "m",
                        role: "learner"))
            }
            #expect(fake.lastForm["create_user"] == nil && fake.users.isEmpty)
        }
    }

    @Test("a wrong key is a typed 401 and is not retried")
    func wrongKey() async throws {
        try await withSkyPrep(clientAPIKey: "wrong") { client, fake in
            do {
                _ = try await client.testConnection()
                Issue.record("accepted")
            } catch let error as SkyPrepError {
                #expect(error.code == .notAuthenticated && error.httpStatus == 401)
            }
            #expect(fake.calls["test_connection"] == 1)
        }
    }

    @Test("SkyPrep's rate limit answers 429, which the client reports as rate_limited without retrying")
    func rateLimitAnswer() async throws {
        try await withSkyPrep(fakeCallsPerMinute: 2) { client, fake in
            _ = try await client.testConnection()
            _ = try await client.testConnection()
            await #expect(throws: SkyPrepError.self) { _ = try await client.testConnection() }
            do {
                _ = try await client.testConnection()
            } catch let error as SkyPrepError {
                #expect(error.code == .rateLimited && error.httpStatus == 429 && error.isTransient)
            }
            #expect(fake.calls["test_connection"] == 4)
        }
    }

    @Test(
        "a user is found by email with get_users by default, or with one get_user call when that lookup is chosen",
        arguments: SkyPrepUserLookup.allCases)
    func userByEmail(lookup: SkyPrepUserLookup) async throws {
        try await withSkyPrep(userLookup: lookup) { client, fake in
            let id = fake.addUser(email: "Kat@Example.edu", firstName: "Kat", lastName: "J")
            _ = fake.addUser(email: "other@example.edu", firstName: "O", lastName: "T")
            let found = try await client.user(email: "kat@example.edu")
            #expect(found?.id == id)
            #expect(try await client.user(email: "nobody@example.edu") == nil)
            switch lookup {
            case .listAll: #expect(fake.calls["get_users"] == 2 && fake.calls["get_user"] == nil)
            case .getUserByEmail: #expect(fake.calls["get_user"] == 2 && fake.calls["get_users"] == nil)
            }
        }
    }

    @Test("the fake takes the keys as parameters too, and a user's names and role change with update_user")
    func parameterCredentialsAndUpdates() async throws {
        try await withSkyPrep { client, fake in
            let id = try await client.createUser(
                SkyPrepNewUser(
                    email: "kat@example.edu", firstName: "Kat", lastName: "J",
                    userIdentifier: "lti-1", role: "learner"))
            try await client.updateUser(id: id, firstName: "Katherine", lastName: "Johnson", role: "manager")
            let user = try #require(fake.users.first)
            #expect(fake.users.count == 1 && user.id == id && user.email == "kat@example.edu" && user.userIdentifier == "lti-1")
            #expect(user.firstName == "Katherine" && user.lastName == "Johnson" && user.role == "manager")
            #expect(fake.lastForm["create_user"]?["email"] == "kat@example.edu")
            try await client.enrolUser(email: "kat@example.edu", courseIDs: ["7", "8"])
            #expect(fake.users.first?.courseIDs == ["7", "8"])
            let url = try #require(URL(string: client.settings.baseURL() + "/test_connection"))
            try await withHTTPClient { http in
                var request = HTTPClientRequest(url: url.absoluteString)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: "acct_key=acme.skyprepapp.com&api_key=SECRET-skyprep-api-key"))
                let response = try await http.execute(request, timeout: .seconds(5))
                #expect(response.status == .ok)
                request.body = .bytes(ByteBuffer(string: "acct_key=acme.skyprepapp.com&api_key=wrong"))
                #expect(try await http.execute(request, timeout: .seconds(5)).status == .unauthorized)
            }
        }
    }

    @Test("5xx is retried a bounded number of times; 4xx never")
    func retries() async throws {
        try await withSkyPrep { client, fake in
            fake.scriptFailures([.serverError])
            let connected = try await client.testConnection()
            #expect(connected)
            #expect(fake.calls["test_connection"] == 2)
            fake.scriptFailures([.serverError, .serverError, .serverError])
            await #expect(throws: SkyPrepError.self) { _ = try await client.testConnection() }
            #expect(fake.calls["test_connection"] == 5)  // 2 + 3 attempts
            _ = try await client.call("create_user", ["email": "ada@example.edu", "first_name": "Ada", "last_name": "Lovelace"])
            do {
                _ = try await client.call("create_user", ["email": "ada@example.edu", "first_name": "Ada", "last_name": "L"])
                Issue.record("duplicate accepted")
            } catch let error as SkyPrepError {
                #expect(error.code == .badParameters && error.responseBody.contains("already exists"))
            }
            #expect(fake.calls["create_user"] == 2)
            #expect(try await client.users().map(\.email) == ["ada@example.edu"])
        }
    }

    @Test("the website's HTML instead of JSON is an error, never data, and not retried")
    func htmlIsNotData() async throws {
        try await withSkyPrep { client, fake in
            fake.scriptFailures([.websiteHTML])
            do {
                _ = try await client.testConnection()
                Issue.record("HTML accepted")
            } catch let error as SkyPrepError {
                #expect(error.code == .notJSON)
            }
            #expect(fake.calls["test_connection"] == 1)
        }
    }

    @Test("SSO login key with autocreate returns the URL to send the browser to")
    func loginKey() async throws {
        try await withSkyPrep { client, fake in
            let answer = try await client.call(
                "get_login_key",
                [
                    "user_email": "grace@example.edu", "first_name": "Grace",
                    "last_name": "Hopper", "autocreate": "1", "key_type": "otl",
                ])
            #expect((answer["url"] as? String)?.contains("/sandbox/skyprep/login/") == true)
            #expect(fake.users.map(\.email) == ["grace@example.edu"])
        }
    }

    @Test("failures are logged with endpoint, status, body and a redacted request, never the keys")
    func failureLogs() async throws {
        let recorder = LogRecorder()
        try await withSkyPrep(recorder: recorder) { client, fake in
            fake.scriptFailures([.serverError])
            _ = try await client.call("create_user", ["email": "kat@example.edu", "first_name": "Kat", "last_name": "Johnson"])
        }
        let line = try #require(recorder.lines(containing: "skyprep call failed").first)
        #expect(line.contains("skyprep.endpoint=") && line.contains("/create_user") && line.contains("skyprep.status=500"))
        #expect(line.contains("Internal Server Error") && line.contains("email=<redacted>"))
        #expect(!line.contains("kat@example.edu"))
        #expect(recorder.lines(containing: "SECRET-skyprep-api-key").isEmpty && recorder.lines(containing: "acme.skyprepapp.com").isEmpty)
    }

    @Test("the rate limiter holds the configured rate under a burst")
    func rateLimiter() async throws {
        let limiter = RateLimiter(limit: 5, per: .milliseconds(500))
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<12 { group.addTask { try? await limiter.acquire() } }
        }
        let elapsed = ContinuousClock.now - started
        // 5 at once, 5 after one window, 2 after two windows.
        #expect(elapsed >= .milliseconds(950), "12 calls at 5 per 500 ms took \(elapsed)")
        let quick = RateLimiter(limit: 5, per: .seconds(10))
        let t0 = ContinuousClock.now
        for _ in 0..<5 { try await quick.acquire() }
        #expect(ContinuousClock.now - t0 < .milliseconds(500))
    }

    @Test("a caller waiting for the rate limiter stops at once when cancelled (shutdown does not wait a minute)")
    func rateLimiterCancellation() async throws {
        let limiter = RateLimiter(limit: 1, per: .seconds(60))
        try await limiter.acquire()
        let waiting = Task { try await limiter.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(ContinuousClock.now - cancelled < .seconds(2))
    }
}
