import Foundation
import GatewayApp
import GatewayStorage
import GatewayStoragePostgres
import GatewaySupport
import JWTKit
import LTICore
import LTITestSupport
import NIOHTTP1
import Testing

/// An LMS platform verifying the gateway's signatures the way platforms do: it caches the tool's JWKS for
/// its `max-age` and re-fetches once on an unknown kid. Verification is jwt-kit's, independent of the
/// gateway's own signing code.
actor PlatformVerifier {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    let e2e: EndToEnd
    private var cached: (json: String, kids: Set<String>, expires: Date)?
    private(set) var fetches = 0

    init(_ e2e: EndToEnd) { self.e2e = e2e }

    private func fetch() async throws {
        let response = try await e2e.request(.GET, "/.well-known/jwks.json")
        let maxAge = response.headers.first(name: "Cache-Control")?.split(separator: "=").last.flatMap { Double($0) } ?? 0
        let document = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: [[String: String]]]
        cached = (response.body, Set((document?["keys"] ?? []).compactMap { $0["kid"] }), e2e.clock.now.addingTimeInterval(maxAge))
        fetches += 1
    }

    /// The subject of a valid token; throws when the signature does not verify with a published key.
    func verify(_ token: String) async throws -> String {
        let kid = try #require(
            try JSONSerialization.jsonObject(with: Base64URL.decode(String(token.split(separator: ".")[0]))!) as? [String: String])["kid"]
        if cached == nil || e2e.clock.now >= cached!.expires { try await fetch() }
        if let kid, !cached!.kids.contains(kid) { try await fetch() }
        guard let kid, cached!.kids.contains(kid) else { throw Unpublished(kid: kid ?? "-") }
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: cached!.json)
        return try await keys.verify(token, as: Claims.self).sub.value
    }

    struct Unpublished: Error { var kid: String }
}

@Suite("End to end: signing keys rotate without breaking platforms")
struct KeyRotationTests {
    static func sign(_ e2e: EndToEnd, _ subject: String) throws -> String {
        try e2e.gateway.toolKeys.signer.sign(claims: [
            "iss": "client-a", "aud": e2e.platformA.issuer, "sub": subject,
            "iat": Int(e2e.clock.now.timeIntervalSince1970),
        ])
    }

    /// Waits (bounded) until the running server serves a JWKS satisfying `condition`.
    static func waitForJWKS(_ e2e: EndToEnd, _ condition: (String) -> Bool) async throws {
        for _ in 0..<100 {
            if condition(try await e2e.request(.GET, "/.well-known/jwks.json").body) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the server never served the expected JWKS")
    }

    static func rotate(_ e2e: EndToEnd, force: Bool = false) async throws -> ToolKeyRing {
        let ring = try await KeyAdministration.rotate(
            store: e2e.keyStore,
            policy: GatewaySettings().keys.policy, force: force, now: e2e.clock.now)
        let active = try #require(ring.active?.kid)
        try await waitForJWKS(e2e) { _ in e2e.gateway.toolKeys.signer.key.kid == active }
        return ring
    }

    @Test("keys: active and next generated with mode 0600, both published with public members only, reused at restart")
    func keysAtStart() async throws {
        var kids: Set<String> = []
        try await withEndToEnd { e2e in
            let ring = e2e.gateway.toolKeys.ring
            let active = try #require(ring.active), next = try #require(ring.next)
            kids = [active.kid, next.kid]
            if let database = e2e.gateway.store as? PostgresGatewayStore {
                let sealed = try await database.sealedPrivateKeys()
                #expect(sealed.count == 2 && sealed.allSatisfy { !$0.contains("PRIVATE KEY") })
            } else {
                let folder = e2e.folder.appendingPathComponent("keys").path
                for kid in kids {
                    let mode = try FileManager.default.attributesOfItem(atPath: "\(folder)/\(kid).pem")[.posixPermissions] as? NSNumber
                    #expect(mode?.intValue == 0o600)
                }
            }
            let jwks = try await e2e.request(.GET, "/.well-known/jwks.json")
            #expect(jwks.headers.first(name: "Cache-Control") == "public, max-age=3600")
            let keys = try #require((try JSONSerialization.jsonObject(with: Data(jwks.body.utf8)) as? [String: [[String: String]]])?["keys"])
            #expect(Set(keys.compactMap { $0["kid"] }) == kids)
            for key in keys {
                #expect(Set(key.keys) == ["kty", "kid", "use", "alg", "n", "e"])
                #expect(key["alg"] == "RS256" && key["use"] == "sig" && key["kty"] == "RSA")
            }
            #expect(try Self.sign(e2e, "x").contains(".") && e2e.gateway.toolKeys.signer.key.kid == active.kid)
        }
        // A restart on the same folder keeps the keys.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = FileSigningKeyStore(folder: folder)
        let first = try await ToolKeyService.start(store: store, policy: .init(), now: Date())
        let second = try await ToolKeyService.start(store: store, policy: .init(), now: Date())
        #expect(first.ring.active?.kid == second.ring.active?.kid && first.ring.next?.kid == second.ring.next?.kid)
    }

    @Test("a key ring that exists but cannot be read stops the start with the cause, and no key is replaced")
    func unreadableRing() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-keys-unreadable-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = FileSigningKeyStore(folder: folder)
        let first = try await ToolKeyService.start(store: store, policy: .init(), now: Date())
        let kids = Set(first.ring.keys.map(\.kid))
        // keyring.json present but unreadable (a folder in its place reads as EISDIR, even for root).
        let metadata = folder + "/keyring.json"
        try FileManager.default.moveItem(atPath: metadata, toPath: metadata + ".saved")
        try FileManager.default.createDirectory(atPath: metadata, withIntermediateDirectories: false)
        do {
            _ = try await ToolKeyService.start(store: store, policy: .init(), now: Date())
            Issue.record("started on an unreadable key ring")
        } catch let error as StorageError {
            #expect(error.code == .unavailable && error.message.contains("cannot read") && error.message.contains("keyring.json"))
        }
        let pems = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".pem") }
        #expect(Set(pems.map { String($0.dropLast(4)) }) == kids)  // no key generated, none removed
    }

    @Test("a platform verifies every signature through two rotations without refreshing anything by hand; retire ends the old key")
    func twoRotations() async throws {
        try await withEndToEnd(configure: { $0.keys.reloadInterval = .milliseconds(100) }) { e2e in
            let platform = PlatformVerifier(e2e)
            let first = try Self.sign(e2e, "before-rotations")
            let firstKid = e2e.gateway.toolKeys.signer.key.kid
            #expect(try await platform.verify(first) == "before-rotations")

            // Routine rotation: the next key has been published longer than the JWKS max-age.
            e2e.clock.advance(7300)
            #expect(try await platform.verify(first) == "before-rotations")  // the platform's cache refreshes itself
            let fetchesBeforeRotation = await platform.fetches
            let afterFirst = try await Self.rotate(e2e)
            let second = try Self.sign(e2e, "after-first-rotation")
            #expect(e2e.gateway.toolKeys.signer.key.kid != firstKid)
            #expect(afterFirst.key(kid: firstKid)?.state == .retiring)
            #expect(try await platform.verify(second) == "after-first-rotation")
            // The new active key was published as `next` before it signed: the platform needed no fetch.
            #expect(await platform.fetches == fetchesBeforeRotation)
            #expect(try await platform.verify(first) == "before-rotations")  // still published while retiring

            e2e.clock.advance(7300)
            _ = try await Self.rotate(e2e)
            let third = try Self.sign(e2e, "after-second-rotation")
            for (token, subject) in [(first, "before-rotations"), (second, "after-first-rotation"), (third, "after-second-rotation")] {
                #expect(try await platform.verify(token) == subject)
            }
            let fetchesSoFar = await platform.fetches

            // Compromise: retire the first key; its signatures stop verifying, the others still do.
            _ = try await KeyAdministration.retire(store: e2e.keyStore, kid: firstKid)
            try await Self.waitForJWKS(e2e) { !$0.contains(firstKid) }
            e2e.clock.advance(3601)  // the platform's cache expires
            await #expect(throws: (any Error).self) { _ = try await platform.verify(first) }
            #expect(try await platform.verify(third) == "after-second-rotation")
            #expect(try await platform.verify(second) == "after-first-rotation")
            #expect(await platform.fetches <= fetchesSoFar + 2)
        }
    }

    @Test("a retiring key leaves the JWKS by itself when its grace period ends")
    func graceEnds() async throws {
        try await withEndToEnd(configure: { $0.keys.reloadInterval = .milliseconds(100) }) { e2e in
            let oldKid = e2e.gateway.toolKeys.signer.key.kid
            e2e.clock.advance(7300)
            _ = try await Self.rotate(e2e)
            e2e.clock.advance(6 * 86_400)
            // What the reloader does on its next turn, done now: within the grace period nothing changes.
            try await e2e.gateway.toolKeys.reloadIfChanged(now: e2e.clock.now)
            #expect(try await e2e.request(.GET, "/.well-known/jwks.json").body.contains(oldKid))
            e2e.clock.advance(86_401)
            try await Self.waitForJWKS(e2e) { !$0.contains(oldKid) }
        }
    }

    @Test("after rotate new signatures carry the new kid, and the JWKS never lacks the active kid, while signing and rotating concurrently")
    func concurrentSigningAndRotation() async throws {
        try await withEndToEnd(configure: { $0.keys.reloadInterval = .milliseconds(100) }) { e2e in
            let store = try e2e.keyStore
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for _ in 0..<3 {
                        try await Task.sleep(for: .milliseconds(150))
                        _ = try await KeyAdministration.rotate(store: store, policy: GatewaySettings().keys.policy, force: true, now: e2e.clock.now)
                    }
                }
                for worker in 0..<2 {
                    group.addTask {
                        for i in 0..<60 {
                            let token = try Self.sign(e2e, "w\(worker)-\(i)")
                            let kid = try #require(
                                (try JSONSerialization.jsonObject(
                                    with: Base64URL.decode(String(token.split(separator: ".")[0]))!) as? [String: String])?["kid"])
                            let jwks = try await e2e.request(.GET, "/.well-known/jwks.json").body
                            #expect(jwks.contains(kid), "signed with \(kid), not in the JWKS served afterwards")
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
                try await group.waitForAll()
            }
            // All three rotations reached the server; signatures carry the newest kid.
            try await Self.waitForJWKS(e2e) { _ in
                e2e.gateway.toolKeys.ring.keys.filter { $0.state == .retiring }.count == 3
            }
            let ring = try await store.loadKeyRing()
            #expect(e2e.gateway.toolKeys.signer.key.kid == ring.active?.kid)
        }
    }

    @Test("a rotation done by another process is picked up by the running server")
    func rotationElsewhere() async throws {
        try await withEndToEnd(configure: { $0.keys.reloadInterval = .milliseconds(200) }) { e2e in
            let before = e2e.gateway.toolKeys.signer.key.kid
            // A second handle on the key folder, as `lti-gateway keys rotate` opens it.
            let ring = try await KeyAdministration.rotate(
                store: e2e.keyStore,
                policy: GatewaySettings().keys.policy, force: true, now: e2e.clock.now)
            let newKid = try #require(ring.active?.kid)
            #expect(newKid != before)
            try await Self.waitForJWKS(e2e) { $0.contains(ring.next?.kid ?? "?") }
            #expect(e2e.gateway.toolKeys.signer.key.kid == newKid)
        }
    }

    @Test("a private key file readable by others stops the start with a message saying how to fix it")
    func insecureKeyRefused() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-insecure-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = folder.appendingPathComponent("keys").path
        let ring = try await ToolKeyService.start(store: FileSigningKeyStore(folder: keys), policy: .init(), now: Date()).ring
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: "\(keys)/\(try #require(ring.active?.kid)).pem")
        var settings = GatewaySettings()
        settings.server.publicURL = "http://127.0.0.1:1"
        settings.server.port = 0
        settings.database.url = "sqlite:" + folder.appendingPathComponent("db.sqlite").path
        settings.keys.directory = keys
        do {
            _ = try await withStore(settings: settings, logger: LogRecorder().logger()) { store in
                try await buildGateway(settings: settings, store: store, logger: LogRecorder().logger())
            }
            Issue.record("started with a group-readable key")
        } catch let error as SettingsError {
            #expect(error.message.contains("readable by other users") && error.message.contains("chmod 600"))
        }
    }

    @Test("tool-config only reads: on a fresh folder it says how to create the keys and creates none; keys init creates them once")
    func toolConfigReadsOnly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-tool-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = folder.appendingPathComponent("keys")
        let keyFiles = { (try? FileManager.default.contentsOfDirectory(atPath: keys.path).filter { $0.hasSuffix(".pem") }.sorted()) ?? [] }
        #expect(try GatewayProcess.command(["tool-config"], environment: [:], folder: folder) != 0)
        #expect(keyFiles().isEmpty)
        #expect(try GatewayProcess.command(["keys", "init"], environment: [:], folder: folder) == 0)
        let created = keyFiles()
        #expect(created.count == 2)
        #expect(try GatewayProcess.command(["keys", "init"], environment: [:], folder: folder) == 0)
        #expect(try GatewayProcess.command(["tool-config"], environment: [:], folder: folder) == 0)
        #expect(keyFiles() == created)
    }

    @Test("keys rotate --emergency replaces every key at once and leaves no earlier private key on disk; with --force it is refused")
    func emergencyRotation() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-emergency-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = FileSigningKeyStore(folder: folder.appendingPathComponent("keys").path)
        #expect(try GatewayProcess.command(["keys", "init"], environment: [:], folder: folder) == 0)
        #expect(try GatewayProcess.command(["keys", "rotate", "--force"], environment: [:], folder: folder) == 0)
        let before = Set(try await keys.loadKeyRing().keys.map(\.kid))
        #expect(before.count == 3)  // active, next, retiring
        #expect(try GatewayProcess.command(["keys", "rotate", "--force", "--emergency"], environment: [:], folder: folder) != 0)
        #expect(Set(try await keys.loadKeyRing().keys.map(\.kid)) == before)
        #expect(try GatewayProcess.command(["keys", "rotate", "--emergency"], environment: [:], folder: folder) == 0)
        let after = try await keys.loadKeyRing()
        #expect(after.keys.count == 2 && after.active != nil && after.next != nil)
        #expect(Set(after.keys.map(\.kid)).isDisjoint(with: before))
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("keys").path).filter { $0.hasSuffix(".pem") }
        #expect(Set(files) == Set(after.keys.map { "\($0.kid).pem" }))
    }

    @Test("the tool configuration (GET /lti/config and tool-config) matches the running server's URLs, which answer")
    func toolConfiguration() async throws {
        try await withEndToEnd { e2e in
            let response = try await e2e.request(.GET, "/lti/config")
            #expect(response.status == 200)
            let config = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            #expect(config["oidc_login_url"] as? String == e2e.baseURL + "/lti/login")
            #expect(config["target_link_uri"] as? String == e2e.baseURL + "/lti/launch")
            #expect(config["deep_linking_url"] as? String == e2e.baseURL + "/lti/deep-link")
            #expect(config["jwks_url"] as? String == e2e.baseURL + "/.well-known/jwks.json")
            #expect(config["redirect_uris"] as? [String] == [e2e.baseURL + "/lti/launch", e2e.baseURL + "/lti/deep-link"])
            let key = try #require(config["public_key"] as? [String: String])
            #expect(key["kid"] == e2e.gateway.toolKeys.ring.active?.kid && key["pem"]?.hasPrefix("-----BEGIN PUBLIC KEY-----") == true)
            #expect(!response.body.contains("PRIVATE"))
            let canvas = try #require(config["canvas_developer_key"] as? [String: Any])
            #expect(canvas["oidc_initiation_url"] as? String == e2e.baseURL + "/lti/login")
            #expect(canvas["public_jwk_url"] as? String == e2e.baseURL + "/.well-known/jwks.json")
            #expect((config["moodle"] as? String)?.contains(e2e.baseURL + "/lti/login") == true)

            // The URLs it names are the running server's.
            #expect(try await e2e.request(.GET, "/.well-known/jwks.json").status == 200)
            let login = try await e2e.login(e2e.platformA)
            #expect(login.redirect.contains(FormEncoding.percentEncode(e2e.baseURL + "/lti/launch")))

            // The command's text names the same URLs and the registered platform.
            let text = ToolConfiguration(
                baseURL: e2e.baseURL, activeKey: try #require(e2e.gateway.toolKeys.ring.active),
                registration: e2e.registrationA
            ).text()
            for url in ["/lti/login", "/lti/launch", "/lti/deep-link", "/.well-known/jwks.json"] { #expect(text.contains(e2e.baseURL + url)) }
            #expect(text.contains(e2e.registrationA.clientID) && text.contains("dep-a") && !text.contains("PRIVATE"))
        }
    }
}
