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

@Suite("Admin API: launches, signing keys, its description, where it listens, and the command line", .serialized)
struct AdminAPIOperationsTests {
    static func launch(_ id: String, platform: String, lab: String, outcome: String = "launched", at time: Date) -> LaunchRecord {
        LaunchRecord(
            id: id, registrationID: platform, deploymentID: "dep", learnerID: "learner-\(id.suffix(1))", subject: "sub",
            messageType: "LtiResourceLinkRequest", resourceLinkID: nil, contextID: nil, labID: lab, outcome: outcome, vendorResultCode: 1,
            labInstanceID: "inst-\(id)", agsLineItem: nil, createdAt: time)
    }

    @Test("launches page newest first by cursor; each launch appears once, in order, while launches are recorded between pages")
    func launchPagingUnderInserts() async throws {
        try await withEndToEnd { e2e in
            let key = try await e2e.adminKey([.launchesRead])
            let start = e2e.clock.now.addingTimeInterval(-3600)
            var expected: [String] = []
            for index in 0..<30 {
                // Pairs share a time: the id orders them.
                let id = String(format: "launch-%02d", index)
                try await e2e.gateway.store.recordLaunch(
                    Self.launch(id, platform: e2e.registrationA.id, lab: index % 3 == 0 ? "7" : "42", at: start.addingTimeInterval(Double(index / 2)))
                )
                expected.insert(id, at: 0)
            }
            expected = expected.sorted { a, b in
                let (ta, tb) = (Int(a.suffix(2))! / 2, Int(b.suffix(2))! / 2)
                return ta != tb ? ta > tb : a > b
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let path = "/api/v1/launches?limit=7&created_before=2100-01-01T00:00:00Z" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await e2e.api(.GET, path, key: key)
                #expect(page.status == 200, "\(page.body)")
                let object = try jsonObject(page)
                let rows = try jsonList(page)
                #expect(rows.count <= 7)
                seen += rows.compactMap { $0["id"] as? String }.filter { $0.hasPrefix("launch-") }
                cursor = object["next_cursor"] as? String
                pages += 1
                // Between pages, launches are recorded: a newer one, and one at the very time of the page's last row whose
                // id sorts before it (so it is behind the cursor): neither may appear in a later page or shift one.
                let lastID = try #require(rows.last?["id"] as? String)
                let last = try #require(try await e2e.gateway.store.launch(id: lastID))
                try await e2e.gateway.store.recordLaunch(
                    Self.launch("new-\(pages)", platform: e2e.registrationA.id, lab: "42", at: e2e.clock.now.addingTimeInterval(Double(pages))))
                try await e2e.gateway.store.recordLaunch(
                    Self.launch("launch-zz\(pages)", platform: e2e.registrationA.id, lab: "42", at: last.createdAt))
            } while cursor != nil && pages < 50
            #expect(seen == expected, "pages repeated or skipped launches")

            let filtered = try jsonList(
                try await e2e.api(.GET, "/api/v1/launches?platform_id=\(e2e.registrationA.id)&lab_id=7&limit=100", key: key))
            #expect(
                filtered.count == 10 && filtered.allSatisfy { $0["lab_id"] as? String == "7" && $0["platform_id"] as? String == e2e.registrationA.id }
            )
            let window = try jsonList(
                try await e2e.api(
                    .GET,
                    "/api/v1/launches?outcome=launched&created_after=\(ISO8601DateFormatter().string(from: start.addingTimeInterval(14)))&created_before=\(ISO8601DateFormatter().string(from: start.addingTimeInterval(15)))",
                    key: key))
            #expect(window.compactMap { $0["id"] as? String } == ["launch-29", "launch-28"])
            let one = try jsonObject(try await e2e.api(.GET, "/api/v1/launches/launch-05", key: key))
            #expect(one["lab_instance_id"] as? String == "inst-launch-05" && one["created_at"] as? String != nil)
            #expect((one["created_at"] as? String)?.hasSuffix("Z") == true, "times in UTC")
        }
    }

    @Test("signing keys through the API: listed, rotated (the served key set changes at once), a retiring key retired; refusals are 409")
    func signingKeys() async throws {
        try await withEndToEnd { e2e in
            let key = try await e2e.adminKey([.signingKeysRead, .signingKeysWrite, .auditRead])
            let listed = try jsonList(try await e2e.api(.GET, "/api/v1/signing_keys", key: key))
            #expect(Set(listed.compactMap { $0["state"] as? String }) == ["active", "next"])
            let early = try await e2e.api(.POST, "/api/v1/signing_keys/rotate", key: key)
            #expect(early.status == 409, "the next key is too young to promote: \(early.body)")
            let next = try #require(listed.first { $0["state"] as? String == "next" }?["kid"] as? String)
            let rotated = try await e2e.api(.POST, "/api/v1/signing_keys/rotate", key: key, json: #"{"force":true}"#)
            #expect(rotated.status == 200, "\(rotated.body)")
            #expect(try jsonList(rotated).first { $0["state"] as? String == "active" }?["kid"] as? String == next)
            #expect(e2e.gateway.toolKeys.ring.active?.kid == next, "the running gateway signs with the new key at once")
            let retiring = try #require(try jsonList(rotated).first { $0["state"] as? String == "retiring" }?["kid"] as? String)
            #expect(try await e2e.api(.DELETE, "/api/v1/signing_keys/\(next)", key: key).status == 409, "the active key cannot be retired")
            #expect(try await e2e.api(.DELETE, "/api/v1/signing_keys/\(retiring)", key: key).status == 204)
            #expect(!(try await e2e.request(.GET, "/.well-known/jwks.json").body.contains(retiring)), "a retired key is no longer published")
            #expect(try await e2e.api(.DELETE, "/api/v1/signing_keys/unknown-kid", key: key).status == 404)
            let auditPage = try await e2e.api(.GET, "/api/v1/audit_events?limit=2", key: key)
            let rows = try jsonList(auditPage)
            let recorded = rows.map { String(describing: $0["action"] ?? "-") }
            #expect(recorded == ["signing_key.retire", "signing_keys.rotate"], "\(auditPage.body)")
        }
    }

    @Test("the OpenAPI document names every route with its scope, and every operation it names is served")
    func description() async throws {
        try await withEndToEnd { e2e in
            let routes = AdminAPIOperationsTests.routeTable(e2e)
            let documented = Dictionary(
                uniqueKeysWithValues: AdminAPIDescription.operations.map { ("\($0.method.uppercased()) \($0.path)", $0.scope) })
            #expect(Set(routes.keys) == Set(documented.keys), "routes and document differ")
            for (route, scope) in routes {
                #expect(documented[route] == .some(scope?.rawValue), "\(route): document says \(String(describing: documented[route]))")
            }

            let served = try await e2e.api(.GET, "/api/v1/openapi.json", key: nil)
            #expect(served.status == 200)
            let document = try jsonObject(served)
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var servedOperations: [String: String?] = [:]
            for (path, methods) in paths {
                for (method, operation) in methods {
                    let security = (operation as? [String: Any])?["security"] as? [[String: [String]]]
                    servedOperations.updateValue(security?.first?["apiKey"]?.first, forKey: "\(method.uppercased()) \(path)")
                }
            }
            #expect(servedOperations == routes.mapValues { $0?.rawValue }, "the served document differs from the routes")
            // Every $ref points at a schema the document defines.
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            let references = served.body.components(separatedBy: "#/components/schemas/").dropFirst().map { $0.prefix { $0 != "\"" } }
            #expect(!references.isEmpty && references.allSatisfy { schemas[String($0)] != nil })
        }
    }

    static func routeTable(_ e2e: EndToEnd) -> [String: APIScope?] {
        var table: [String: APIScope?] = [:]
        for route in AdminAPIController(administration: e2e.gateway.administration, throttle: AuthFailureThrottle(), baseURL: e2e.baseURL).routes {
            table["\(route.method.rawValue) \(route.path)"] = route.scope
        }
        return table
    }

    @Test("with GATEWAY_OPS_PORT, the admin API and /metrics answer only on the operations listener; GATEWAY_ADMIN_API=false serves no admin API")
    func listeners() async throws {
        try await withEndToEnd(configure: { $0.server.opsPort = 0 }) { e2e in
            let key = try await e2e.adminKey([.platformsRead])
            let port = try await e2e.gateway.operationsPort.wait(timeout: .seconds(5))
            let operations = "http://127.0.0.1:\(port)"
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: key).status == 404)
            #expect(try await e2e.request(.GET, "/metrics", headers: [("Authorization", "Bearer \(EndToEnd.metricsToken)")]).status == 404)
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: key, base: operations).status == 200)
            let metrics = try await e2e.request(.GET, operations + "/metrics", headers: [("Authorization", "Bearer \(EndToEnd.metricsToken)")])
            #expect(metrics.status == 200 && metrics.body.contains("# TYPE"), "\(metrics.body.prefix(300))")
            #expect(try await e2e.request(.GET, operations + "/lti/config").status == 404, "learners' routes stay on the main listener")
            #expect(try await e2e.request(.GET, "/healthz").status == 200)
        }
        try await withEndToEnd(configure: { $0.server.adminAPI = false }) { e2e in
            let key = try await e2e.adminKey([.platformsRead])
            #expect(try await e2e.api(.GET, "/api/v1/platforms", key: key).status == 404)
            #expect(try await e2e.api(.GET, "/api/v1/openapi.json", key: nil).status == 404)
        }
    }
}

@Suite("Command line: api-keys and audit through the administration service")
struct AdministrationCommandTests {
    /// Runs `lti-gateway ARGS` on the SQLite database and keys in `folder`; exit status and stdout.
    static func run(_ arguments: [String], folder: URL) throws -> (status: Int32, stdout: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: GatewayProcess.executable)
        process.arguments = arguments + ["--config", emptyConfig(in: folder)]
        process.environment = [
            "GATEWAY_DATABASE_URL": "sqlite:" + folder.appendingPathComponent("gateway.sqlite").path,
            "GATEWAY_KEYS_DIR": folder.appendingPathComponent("keys").path, "PATH": "/usr/bin:/bin",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("api-keys create prints the secret alone on its last line; list never shows it; revoke and the audit trail name the command line")
    func apiKeysCommands() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try Self.run(["keys", "init"], folder: folder).status == 0)
        let created = try Self.run(["api-keys", "create", "--name", "nightly export", "--scope", "launches.read", "audit.read"], folder: folder)
        #expect(created.status == 0, "\(created.stdout)")
        let secret = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        #expect(secret.hasPrefix("sk_live_") && !secret.contains(" "))
        let listed = try Self.run(["api-keys", "list"], folder: folder)
        #expect(listed.status == 0 && listed.stdout.contains("nightly export") && listed.stdout.contains("audit.read launches.read"))
        #expect(!listed.stdout.contains(secret))
        let id = try #require(listed.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ").first.map(String.init))
        #expect(try Self.run(["api-keys", "create", "--name", "x", "--scope", "everything"], folder: folder).status != 0)
        #expect(try Self.run(["api-keys", "create", "--name", "x", "--scope", "audit.read", "--expires", "soon"], folder: folder).status != 0)
        #expect(try Self.run(["api-keys", "revoke", id], folder: folder).status == 0)
        #expect(try Self.run(["api-keys", "revoke", id], folder: folder).status != 0, "revoking twice says there is no such key")
        // keys list: every column starts where its header does.
        let keys = try Self.run(["keys", "list"], folder: folder).stdout.split(separator: "\n").map(String.init)
        let stateColumn = try #require(keys.first?.range(of: "STATE")).lowerBound.utf16Offset(in: keys[0])
        for row in keys.dropFirst() {
            let cell = row.utf16.dropFirst(stateColumn).prefix(4)
            #expect(["acti", "next"].contains(String(decoding: cell, as: UTF16.self)), "misaligned: \(row)")
        }
        let audit = try Self.run(["audit", "list"], folder: folder)
        #expect(audit.stdout.contains("api_key.delete") && audit.stdout.contains("api_key.create") && audit.stdout.contains(" cli "))
        #expect(!audit.stdout.contains(secret))
    }
}
