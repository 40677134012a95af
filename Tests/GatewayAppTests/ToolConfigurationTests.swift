import Foundation
import GatewayStorage
import LTICore
import PlatformServices
import Testing

@testable import GatewayApp

@Suite("tool-config: each LMS's form field for field, the grade scopes the gateway uses, and a warning for unreachable URLs")
struct ToolConfigurationTests {
    static let base = "https://lti.example.edu"
    static let key = try! ToolKey.generate(now: Date())

    static func configuration(_ base: String = base) -> ToolConfiguration { ToolConfiguration(baseURL: base, activeKey: key) }

    @Test("Canvas: --lms canvas --json is the developer key alone, with exactly the scopes grade passback asks for")
    func canvasDeveloperKey() throws {
        let json = try #require(try JSONSerialization.jsonObject(with: try Self.configuration().json(lms: .canvas)) as? [String: Any])
        #expect(
            Set(json.keys) == ["title", "description", "oidc_initiation_url", "target_link_uri", "public_jwk_url", "scopes", "extensions"])
        #expect(json["scopes"] as? [String] == AGSScope.requested)
        #expect(json["oidc_initiation_url"] as? String == Self.base + "/lti/login")
        #expect(json["public_jwk_url"] as? String == Self.base + "/.well-known/jwks.json")
        // The whole document (GET /lti/config) carries the same key.
        let whole = try #require(try JSONSerialization.jsonObject(with: try Self.configuration().json()) as? [String: Any])
        #expect((whole["canvas_developer_key"] as? [String: Any])?["scopes"] as? [String] == AGSScope.requested)
        // Dynamic registration asks for the same scopes.
        #expect(Self.configuration().dynamicRegistration()["scope"] as? String == AGSScope.requested.joined(separator: " "))
    }

    @Test("Canvas: the block names the separate, required Redirect URIs field with both URLs, right before the JSON")
    func canvasRedirectURIs() throws {
        let text = Self.configuration().text(lms: .canvas)
        let lines = text.components(separatedBy: "\n")
        let field = try #require(lines.firstIndex { $0.contains("Redirect URIs:") })
        #expect(lines[field].hasSuffix(Self.base + "/lti/launch"))
        #expect(lines[field + 1].trimmingCharacters(in: .whitespaces) == Self.base + "/lti/deep-link")
        #expect(lines[field + 2].contains("required"))
        let json = try #require(lines.firstIndex { $0.contains("LTI 1.3 Configuration:") })
        #expect(field < json && lines[json + 1] == "{")
        #expect(text.contains("platforms add --issuer https://canvas.instructure.com --client-id <Client ID> --deployment <Deployment Id>"))
        #expect(!text.contains("BEGIN PUBLIC KEY"))
    }

    @Test("Moodle: its form's fields in its order, no tool-level lab id, the keyset URL rather than a PEM, then platforms add")
    func moodleForm() throws {
        let text = Self.configuration().text(lms: .moodle)
        #expect(!text.contains("BEGIN PUBLIC KEY"), "a pasted RSA key breaks at the first rotation")
        let custom = try #require(text.components(separatedBy: "\n").first { $0.contains("Custom parameters:") })
        #expect(!custom.contains("labid="), "a tool-level labid would be sent with every activity")
        let labels = [
            "Tool name", "Tool URL", "Tool description", "LTI version", "Public key type", "Public keyset", "Initiate login URL",
            "Redirection URI(s)", "Custom parameters", "Tool configuration usage", "Default launch container",
            "Supports Deep Linking (Content-Item Message)", "Content Selection URL", "IMS LTI Assignment and Grade Services",
            "IMS LTI Names and Role Provisioning", "Share launcher's name with tool", "Share launcher's email with tool",
            "Accept grades from the tool",
        ]
        let positions = labels.map { text.range(of: "    " + $0 + ":")?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil }, "\(zip(labels, positions).filter { $1 == nil }.map(\.0))")
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "fields out of the form's order")
        #expect(text.contains("Keyset URL") && text.contains("New window"))
        #expect(
            text.contains("platforms add --issuer <Platform ID> --client-id <Client ID> --deployment <Deployment ID>")
                && text.contains("--jwks-url <Public keyset URL> --token-url <Access token URL>")
                && text.contains("--auth-url <Authentication request URL>"))

        // --lms moodle --json: the same fields, in the same order, as one object.
        let json = String(decoding: try Self.configuration().json(lms: .moodle), as: UTF8.self)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(Set(object.keys) == Set(labels) && object["Custom parameters"] == "")
        let order = labels.map { json.range(of: "\"\($0)\"")?.lowerBound }
        #expect(order.compactMap { $0 }.count == labels.count && order.compactMap { $0 } == order.compactMap { $0 }.sorted())
        // The whole text: the PEM only in the general section, labelled for LMSs that cannot fetch a key set.
        let whole = Self.configuration().text()
        let pem = try #require(whole.range(of: "BEGIN PUBLIC KEY"))
        #expect(whole.range(of: "only for an LMS that cannot fetch the key set URL").map { $0.lowerBound < pem.lowerBound } == true)
        #expect(whole.components(separatedBy: "BEGIN PUBLIC KEY").count == 2)
    }

    @Test(
        "an http or loopback public URL gets a warning; an https URL on another host none",
        arguments: [
            ("http://127.0.0.1:8080", true), ("http://localhost:8080", true), ("https://[::1]:8443", true), ("http://lti.example.edu", true),
            ("https://localhost", true), ("https://lti.example.edu", false), ("https://lti.example.edu:8443/", false),
        ])
    func reachabilityWarning(url: String, warned: Bool) {
        let warning = Self.configuration(url).reachabilityWarning
        #expect((warning != nil) == warned, "\(url): \(warning ?? "none")")
        if url.hasPrefix("http://") { #expect(warning?.contains("over http") == true) }
        if url.contains("127.0.0.1") || url.contains("localhost") { #expect(warning?.contains("cannot reach") == true) }
    }

    @Test("the command: --lms canvas --json prints only the developer key, the loopback warning goes to stderr, an unknown LMS exits non-zero")
    func command() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gw-tool-config-lms-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try GatewayProcess.command(["keys", "init"], environment: [:], folder: folder) == 0)

        let canvas = try GatewayProcess.run(["tool-config", "--lms", "canvas", "--json"], environment: [:], folder: folder)
        #expect(canvas.status == 0, "\(canvas.stderr)")
        let key = try #require(try JSONSerialization.jsonObject(with: Data(canvas.stdout.utf8)) as? [String: Any], "\(canvas.stdout)")
        #expect(key["oidc_initiation_url"] as? String == "http://127.0.0.1:8080/lti/login" && key["canvas_developer_key"] == nil)
        #expect(canvas.stderr.hasPrefix("Warning: the public URL http://127.0.0.1:8080"), "\(canvas.stderr)")

        let moodle = try GatewayProcess.run(["tool-config", "--lms", "moodle"], environment: [:], folder: folder)
        #expect(moodle.status == 0 && moodle.stdout.hasPrefix("Moodle") && !moodle.stdout.contains("Canvas"))
        #expect(!moodle.stdout.contains("BEGIN PUBLIC KEY"))

        let unknown = try GatewayProcess.run(["tool-config", "--lms", "blackboard"], environment: [:], folder: folder)
        #expect(unknown.status != 0 && unknown.stdout.isEmpty && unknown.stderr.contains("'blackboard' is invalid"))

        let secure = try GatewayProcess.run(
            ["tool-config", "--lms", "canvas"],
            environment: [
                "GATEWAY_PUBLIC_URL": "https://lti.example.edu", "SKILLABLE_BASE_URL": "https://skillable.example.edu",
                "SKILLABLE_API_KEY": "key", "SKYPREP_BASE_URL": "https://skyprep.example.edu", "SKYPREP_ACCT_KEY": "acme.skyprepapp.com",
                "SKYPREP_API_KEY": "key",
            ], folder: folder)
        #expect(secure.status == 0 && secure.stderr.isEmpty, "\(secure.stderr)")
        #expect(secure.stdout.contains("https://lti.example.edu/lti/deep-link"))
    }
}
