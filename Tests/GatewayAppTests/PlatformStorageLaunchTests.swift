import AsyncHTTPClient
import Foundation
import GatewayApp
import GatewayStorage
import GatewaySupport
import HTTPTypes
import LTICore
import LTITestSupport
import NIOHTTP1
import Testing

/// What a login page or launch page carries, read the way its script reads it.
struct StoragePage {
    let body: String

    /// The value of `data-NAME` (HTML-unescaped), or of the hidden input `NAME`.
    func data(_ name: String) -> String? { value(after: "data-\(name)=\"") }
    func input(_ name: String) -> String? { value(after: "name=\"\(name)\" value=\"") }

    private func value(after marker: String) -> String? {
        guard let start = body.range(of: marker) else { return nil }
        let rest = body[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end]).replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    }
}

extension EndToEnd {
    /// The LMS's login with `lti_storage_target`, from inside its frame (`Sec-Fetch-Dest: iframe`).
    func storageLogin(target: String? = "post_message_forwarding", destination: String = "iframe") async throws -> BrowserResponse {
        var query: [(String, String)] = [
            ("iss", platformA.issuer), ("login_hint", "user-hint"), ("target_link_uri", baseURL + "/lti/launch"),
            ("client_id", platformA.clientID), ("lti_message_hint", "hint-123"),
        ]
        if let target { query.append(("lti_storage_target", target)) }
        return try await request(.GET, "/lti/login?" + FormEncoding.encode(query), headers: [("Sec-Fetch-Dest", destination)])
    }

    /// The count of launches bound through `channel` so far (process-wide).
    func bindingCount(_ channel: BrowserBindingChannel) async throws -> Double {
        let metrics = try await metrics()
        let prefix = "lti_launch_binding_total{channel=\"\(channel.rawValue)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Double(line.dropFirst(prefix.count)) ?? 0
    }
}

/// The state, nonce and secret a storage login page hands on, and its cookies.
struct StorageLogin {
    let state: String
    let nonce: String
    let secret: String
    let key: String
    let restartKey: String
    let setCookies: [String]
    let page: StoragePage

    init(_ response: BrowserResponse) throws {
        page = StoragePage(body: response.body)
        let auth = try #require(page.data("auth"))
        let items = try #require(URLComponents(string: auth)?.queryItems)
        state = try #require(items.first { $0.name == "state" }?.value)
        nonce = try #require(items.first { $0.name == "nonce" }?.value)
        secret = try #require(page.data("secret"))
        key = try #require(page.data("key"))
        restartKey = try #require(page.input("login"))
        setCookies = response.headers["Set-Cookie"]
    }
}

/// LTI Platform Storage and the fallbacks, over HTTP against the real server: login page, cookie check,
/// storage launch page, secret checks, the new-window restart, and the counters per channel.
@Suite("End to end: launches without the state cookie (platform storage, new window)", .serialized)
struct PlatformStorageLaunchTests {
    @Test("a login from an LMS frame with lti_storage_target answers the storage page and still sets both cookies")
    func storageLoginPage() async throws {
        try await withEndToEnd { e2e in
            let response = try await e2e.storageLogin()
            #expect(response.status == 200)
            let login = try StorageLogin(response)
            #expect(login.page.data("mode") == "login" && login.page.data("frame") == "post_message_forwarding")
            #expect(login.page.data("origin") == "http://127.0.0.1:\(e2e.platformPort)", "the auth endpoint's origin")
            #expect(login.key == PlatformStorageSecret.key(forState: login.state))
            #expect(response.body.contains("Open in a new window"))
            let csp = try #require(response.headers.first(name: "Content-Security-Policy"))
            #expect(csp.contains("script-src 'nonce-") && csp.contains("connect-src 'self'") && csp.contains("default-src 'none'"))
            #expect(response.headers.first(name: "Cache-Control") == "no-store")
            // Both cookies, the second partitioned (CHIPS); neither readable by scripts.
            #expect(login.setCookies.count == 2)
            #expect(login.setCookies.allSatisfy { $0.contains("HttpOnly") && $0.contains("Secure") && $0.contains("SameSite=None") })
            #expect(login.setCookies.filter { $0.contains("Partitioned") }.count == 1)
            #expect(login.setCookies.allSatisfy { $0.contains("=\(login.state);") })
        }
    }

    @Test("storage is skipped in a top-level window, without lti_storage_target, and when the platform turns it off")
    func storageSkipped() async throws {
        try await withEndToEnd { e2e in
            #expect(try await e2e.storageLogin(destination: "document").status == 302)
            #expect(try await e2e.storageLogin(target: nil).status == 302)
            try await PlatformAdministration.setLaunchOptions(
                store: e2e.gateway.store, registrationID: e2e.registrationA.id,
                options: PlatformLaunchOptions(platformStorage: .off))
            // Platform options reach the running gateway through its registration cache.
            let off = await eventually { try await e2e.storageLogin().status == 302 }
            #expect(off)
            try await PlatformAdministration.setLaunchOptions(
                store: e2e.gateway.store, registrationID: e2e.registrationA.id,
                options: PlatformLaunchOptions(storageFrame: "lti_storage_frame", storageOrigin: "https://school.example.edu"))
            let framed = await eventually { try await e2e.storageLogin(target: nil).status == 200 }
            #expect(framed)
            let page = StoragePage(body: try await e2e.storageLogin(target: nil).body)
            #expect(page.data("frame") == "lti_storage_frame" && page.data("origin") == "https://school.example.edu")
        }
    }

    @Test("without its cookie a storage launch reads the platform's storage, binds with the secret once, and counts as storage")
    func storageLaunch() async throws {
        try await withEndToEnd { e2e in
            let login = try StorageLogin(try await e2e.storageLogin())
            let token = e2e.platformA.sign(e2e.platformA.launchClaims(nonce: login.nonce, now: e2e.clock.now, toolURL: e2e.baseURL))
            let relay = try await e2e.launch(idToken: token, state: login.state, cookie: nil)
            #expect(relay.status == 200)
            let page = StoragePage(body: relay.body)
            #expect(page.data("mode") == "launch" && page.data("key") == login.key && page.data("frame") == "post_message_forwarding")
            #expect(relay.body.contains("action=\"\(e2e.baseURL)/lti/launch\""))
            #expect(!relay.body.contains(login.secret), "the launch page must not carry the secret")
            #expect(try await e2e.gateway.store.recentLaunches(limit: 10).isEmpty, "the relay recorded a launch")

            let before = try await e2e.bindingCount(.platformStorage)
            #expect(relay.headers.first(name: "Referrer-Policy") == "same-origin", "the relay's post must carry the gateway's Origin")
            let form = [("id_token", token), ("state", login.state), ("lti_storage_secret", login.secret)]
            let landed = try await e2e.request(.POST, "/lti/launch", form: form, headers: EndToEnd.sameOrigin)
            #expect(landed.status == 303, "\(landed.body)")
            #expect(landed.location?.contains("/lab/") == true)
            #expect(try await e2e.bindingCount(.platformStorage) > before)
            #expect(landed.headers["Set-Cookie"].count == 2, "both state cookies are removed")

            let replay = try await e2e.request(.POST, "/lti/launch", form: form, headers: EndToEnd.sameOrigin)
            #expect(replay.status == 401)
            #expect(e2e.logs.lines(containing: "gw.request.id=\(replay.reference ?? "-")").contains { $0.contains("gw.error=state_unknown") })
            for line in e2e.logs.lines(containing: "") {
                #expect(!line.contains(login.secret) && !line.contains(login.state) && !line.contains(token), "a secret in: \(line)")
            }
        }
    }

    @Test("a wrong or swapped secret is refused, changes nothing, and the right one still binds")
    func wrongSecret() async throws {
        try await withEndToEnd { e2e in
            let login = try StorageLogin(try await e2e.storageLogin())
            let other = try StorageLogin(try await e2e.storageLogin())
            let token = e2e.platformA.sign(e2e.platformA.launchClaims(nonce: login.nonce, now: e2e.clock.now, toolURL: e2e.baseURL))
            let calls = await e2e.sandboxCalls
            for secret in [other.secret, PlatformStorageSecret.make(), ""] {
                let refused = try await e2e.request(
                    .POST, "/lti/launch",
                    form: [("id_token", token), ("state", login.state), ("lti_storage_secret", secret)], headers: EndToEnd.sameOrigin)
                #expect(refused.status == 401)
                let reference = try #require(refused.reference)
                #expect(e2e.logs.lines(containing: "gw.request.id=\(reference)").contains { $0.contains("gw.error=storage_secret_mismatch") })
                #expect(refused.body.contains("rule Launch 1") && !refused.body.contains(login.state) && !refused.body.contains(token))
            }
            #expect(await e2e.sandboxCalls == calls, "Skillable was called")
            #expect(try await e2e.gateway.store.recentLaunches(limit: 10).isEmpty)
            let landed = try await e2e.request(
                .POST, "/lti/launch",
                form: [("id_token", token), ("state", login.state), ("lti_storage_secret", login.secret)], headers: EndToEnd.sameOrigin)
            #expect(landed.status == 303)
        }
    }

    @Test("a valid token, state and secret posted from another site are refused and change nothing (login forgery)")
    func foreignPost() async throws {
        try await withEndToEnd { e2e in
            let login = try StorageLogin(try await e2e.storageLogin())
            let token = e2e.platformA.sign(e2e.platformA.launchClaims(nonce: login.nonce, now: e2e.clock.now, toolURL: e2e.baseURL))
            let form = [("id_token", token), ("state", login.state), ("lti_storage_secret", login.secret)]
            let calls = await e2e.sandboxCalls
            let foreign: [[(String, String)]] = [
                [("Sec-Fetch-Site", "cross-site"), ("Origin", "https://evil.example")], [("Sec-Fetch-Site", "same-site")],
                [("Sec-Fetch-Site", "none")], [("Origin", "https://evil.example")], [("Origin", "null")], [],
            ]
            for headers in foreign {
                let refused = try await e2e.request(.POST, "/lti/launch", form: form, headers: headers)
                #expect(refused.status == 401, "\(headers)")
                #expect(
                    e2e.logs.lines(containing: "gw.request.id=\(refused.reference ?? "-")").contains {
                        $0.contains("gw.error=storage_secret_foreign")
                    },
                    "\(headers)")
            }
            #expect(await e2e.sandboxCalls == calls, "Skillable was called")
            #expect(try await e2e.gateway.store.recentLaunches(limit: 10).isEmpty)
            // A browser without Fetch Metadata that sends the gateway's own Origin is the gateway's page.
            let own = try #require(URLComponents(string: e2e.baseURL)).host.map { "http://\($0):\(URLComponents(string: e2e.baseURL)?.port ?? 80)" }
            let landed = try await e2e.request(.POST, "/lti/launch", form: form, headers: [("Origin", try #require(own))])
            #expect(landed.status == 303, "\(landed.body)")
        }
    }

    @Test("a secret for a login that did not use storage is refused")
    func storageWithoutStorageLogin() async throws {
        try await withEndToEnd { e2e in
            let login = try await e2e.login(e2e.platformA)
            let token = e2e.platformA.sign(e2e.claims(e2e.platformA, login))
            let refused = try await e2e.request(
                .POST, "/lti/launch",
                form: [("id_token", token), ("state", login.state), ("lti_storage_secret", PlatformStorageSecret.make())],
                headers: EndToEnd.sameOrigin)
            #expect(refused.status == 401)
            #expect(e2e.logs.lines(containing: "gw.request.id=\(refused.reference ?? "-")").contains { $0.contains("gw.error=storage_not_offered") })
            #expect(try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie).status == 303)
        }
    }

    @Test("with neither cookie nor storage the launch offers a new window; the restarted login lands in the lab as new_window")
    func newWindow() async throws {
        try await withEndToEnd { e2e in
            for storage in [true, false] {
                // A storage login whose platform answered nothing, or a login without storage at all.
                let state: String, nonce: String
                if storage {
                    let login = try StorageLogin(try await e2e.storageLogin())
                    (state, nonce) = (login.state, login.nonce)
                } else {
                    let login = try await e2e.login(e2e.platformA)
                    (state, nonce) = (login.state, login.nonce)
                }
                let token = e2e.platformA.sign(e2e.platformA.launchClaims(nonce: nonce, now: e2e.clock.now, toolURL: e2e.baseURL))
                let launchesBefore = try await e2e.gateway.store.recentLaunches(limit: 100).count
                var form = [("id_token", token), ("state", state)]
                if storage { form.append(("lti_storage_error", "timeout")) }
                let offer = try await e2e.request(.POST, "/lti/launch", form: form)
                #expect(offer.status == 401)
                #expect(offer.body.contains("Open this activity in a new window") && offer.body.contains("target=\"_blank\""))
                #expect(offer.body.contains("action=\"\(e2e.baseURL)/lti/login/restart\""))
                let reference = try #require(offer.reference)
                #expect(offer.body.contains("rule Launch 1") && offer.body.contains(reference))
                #expect(!offer.body.contains(state) && !offer.body.contains(nonce) && !offer.body.contains(token))
                #expect(offer.headers.first(name: "Content-Security-Policy")?.contains("script-src") == false, "the page runs no script")
                #expect(
                    e2e.logs.lines(containing: "gw.request.id=\(offer.reference ?? "-")").contains { $0.contains("gw.error=state_not_this_browser") })
                #expect(try await e2e.gateway.store.recentLaunches(limit: 100).count == launchesBefore, "the offer recorded a launch")

                let restartKey = try #require(StoragePage(body: offer.body).input("login"))
                let restarted = try await e2e.request(.POST, "/lti/login/restart", form: [("login", restartKey)])
                #expect(restarted.status == 303)
                let again = try LoginResult(BrowserResponse(status: 302, headers: restarted.headers, body: ""))
                #expect(again.state != state)
                #expect(again.redirect.hasPrefix("http://127.0.0.1:\(e2e.platformPort)/auth-a?"))
                #expect(again.redirect.contains("login_hint=user-hint") && again.redirect.contains("lti_message_hint=hint-123"))
                let before = try await e2e.bindingCount(.newWindow)
                let landed = try await e2e.launch(
                    idToken: e2e.platformA.sign(e2e.claims(e2e.platformA, again)), state: again.state, cookie: again.cookie)
                #expect(landed.status == 303)
                #expect(try await e2e.bindingCount(.newWindow) > before)
            }
            let unknown = try await e2e.request(.POST, "/lti/login/restart", form: [("login", "never-issued")])
            #expect(unknown.status == 400)
            #expect(
                e2e.logs.lines(containing: "gw.request.id=\(unknown.reference ?? "-")").contains { $0.contains("gw.error=login_restart_unknown") })
        }
    }

    @Test("the cookie check says whether this request carries the login's state cookie, plain or partitioned")
    func cookieCheck() async throws {
        try await withEndToEnd { e2e in
            let login = try StorageLogin(try await e2e.storageLogin())
            let names = GatewayCookieNames.stateCookieNames(for: login.state)
            func check(_ cookie: String?, state: String = login.state) async throws -> String {
                try await e2e.request(.POST, "/lti/login/check", form: [("state", state)], cookie: cookie).body
            }
            #expect(try await check("\(names.plain)=\(login.state)") == #"{"cookie":true}"#)
            #expect(try await check("\(names.partitioned)=\(login.state)") == #"{"cookie":true}"#)
            #expect(try await check(nil) == #"{"cookie":false}"#)
            #expect(try await check("\(names.plain)=something-else") == #"{"cookie":false}"#)
            #expect(try await check("\(names.plain)=\(login.state)", state: "") == #"{"cookie":false}"#)
        }
    }

    @Test("the partitioned cookie alone binds the launch, counted as partitioned_cookie")
    func partitionedCookie() async throws {
        try await withEndToEnd { e2e in
            let login = try StorageLogin(try await e2e.storageLogin())
            let token = e2e.platformA.sign(e2e.platformA.launchClaims(nonce: login.nonce, now: e2e.clock.now, toolURL: e2e.baseURL))
            let before = try await e2e.bindingCount(.partitionedCookie)
            let name = GatewayCookieNames.stateCookieNames(for: login.state).partitioned
            let landed = try await e2e.launch(idToken: token, state: login.state, cookie: "\(name)=\(login.state)")
            #expect(landed.status == 303)
            #expect(try await e2e.bindingCount(.partitionedCookie) > before)
        }
    }
}

extension EndToEnd {
    /// What a browser says of a post from one of the gateway's own pages.
    static let sameOrigin = [("Sec-Fetch-Site", "same-origin")]
}
