import Foundation
import GatewayApp
import GatewayStorage
import JWTKit
import LTICore
import LTITestSupport
import NIOHTTP1
import Sandbox
import Testing

/// The instructor's side of deep linking, driven like a browser.
extension EndToEnd {
    /// Settings claim of a deep-linking request.
    static func deepLinkSettings(
        multiple: Bool = true, lineItem: Bool = true, data: String? = "opaque-data-123",
        types: [String] = ["ltiResourceLink"]
    ) -> [String: Any] {
        var settings: [String: Any] = [
            "deep_link_return_url": "https://lms-a.example.edu/deep_links/return?ctx=9&x=1",
            "accept_types": types, "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": multiple, "accept_lineitem": lineItem,
        ]
        if let data { settings["data"] = data }
        return settings
    }

    /// An `LtiDeepLinkingRequest` launch to `path`; returns the picker (or refusal) page.
    func openPicker(
        _ settings: [String: Any], path: String = "/lti/deep-link",
        roles: [String] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        platform: TestPlatform? = nil
    ) async throws -> BrowserResponse {
        let platform = platform ?? platformA
        let login = try await login(platform)
        let claims = self.claims(platform, login, labID: nil) {
            $0[LTIClaim.messageType] = "LtiDeepLinkingRequest"
            $0[LTIClaim.resourceLink] = nil
            $0[LTIClaim.roles] = roles
            $0[LTIClaim.deepLinkingSettings] = settings
        }
        return try await launch(idToken: platform.sign(claims), state: login.state, cookie: login.cookie, path: path)
    }

    /// Submits the picker form.
    func submitPicker(
        session: String, labs: [String], action: String = "add", lineItem: Bool = false,
        scoreMaximum: String? = nil
    ) async throws -> BrowserResponse {
        var form = [("session", session), ("action", action)] + labs.map { ("lab", $0) }
        if lineItem { form.append(("create_line_item", "on")) }
        if let scoreMaximum { form.append(("score_maximum", scoreMaximum)) }
        return try await request(.POST, "/lti/deep-link/select", form: form)
    }
}

/// Reads values out of the gateway's HTML.
enum Page {
    static func attribute(_ html: String, named name: String, in element: String) -> [String] {
        let pattern = #"<input[^>]*name="\#(element)"[^>]*\#(name)="([^"]*)""#
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).compactMap {
            Range($0.range(at: 1), in: html).map { unescape(String(html[$0])) }
        }
    }

    static func formAction(_ html: String) -> String? {
        let regex = try! NSRegularExpression(pattern: #"<form[^>]*action="([^"]*)""#)
        guard let match = regex.firstMatch(in: html, range: NSRange(html.startIndex..., in: html)),
            let range = Range(match.range(at: 1), in: html)
        else { return nil }
        return unescape(String(html[range]))
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
    }
}

/// The LMS receiving the response: verifies the JWT with jwt-kit against a key set built from the gateway's
/// published JWKS document (not with the gateway's signing code), then reads the claims.
struct ReturnedResponse {
    let claims: [String: Any]
    let kid: String

    struct Signed: JWTPayload {
        var iss: IssuerClaim
        var aud: AudienceClaim
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    init(_ page: BrowserResponse, e2e: EndToEnd) async throws {
        #expect(page.status == 200)
        let jwt = try #require(Page.attribute(page.body, named: "value", in: "JWT").first, "no JWT field")
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: try await e2e.request(.GET, "/.well-known/jwks.json").body)
        let signed = try await keys.verify(jwt, as: Signed.self)
        #expect(signed.iss.value == "client-a")
        let parts = jwt.split(separator: ".").map(String.init)
        claims = try #require(try JSONSerialization.jsonObject(with: Base64URL.decode(parts[1])!) as? [String: Any])
        let header = try #require(try JSONSerialization.jsonObject(with: Base64URL.decode(parts[0])!) as? [String: String])
        #expect(header["alg"] == "RS256")
        kid = try #require(header["kid"])
    }

    var items: [[String: Any]] { claims[DeepLinkingResponse.contentItemsClaim] as? [[String: Any]] ?? [] }
}

@Suite("End to end: deep linking — instructors pick labs, the LMS receives signed links")
struct DeepLinkingTests {
    @Test("from the LMS's 'add content' to a working lab link: picker, signed response with every claim, then a launch of the link")
    func fullLoop() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings())
            #expect(picker.status == 200)
            // Only enabled, complete profiles; checkboxes when several are allowed; labelled search; line item option.
            #expect(Page.attribute(picker.body, named: "value", in: "lab").sorted() == ["1001", "1002", "1003"])
            #expect(picker.body.contains(#"type="checkbox" name="lab""#))
            #expect(picker.body.contains(#"<label for="search">"#) && picker.body.contains("<legend>"))
            #expect(picker.body.contains("create_line_item") && picker.body.contains(#"value="100""#))
            #expect(picker.body.contains("Kubernetes Basics") && picker.body.contains("K8S-100") && picker.body.contains("45 min"))
            // Only its platform may show the picker in a frame (its issuer's and auth endpoint's origins).
            #expect(
                picker.headers.first(name: "Content-Security-Policy")?.hasSuffix(
                    "frame-ancestors https://lms-a.example.edu http://127.0.0.1:\(e2e.platformPort)") == true)
            let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)

            let returned = try await e2e.submitPicker(session: session, labs: ["1001", "1003"], lineItem: true, scoreMaximum: "50")
            #expect(Page.formAction(returned.body) == "https://lms-a.example.edu/deep_links/return?ctx=9&x=1")
            #expect(returned.body.contains("Continue to the course"))  // a visible button for browsers without script
            let response = try await ReturnedResponse(returned, e2e: e2e)
            let c = response.claims
            #expect(response.kid == e2e.gateway.toolKeys.ring.active?.kid)
            #expect(c["iss"] as? String == "client-a" && c["aud"] as? String == e2e.platformA.issuer)
            #expect((c["nonce"] as? String)?.count ?? 0 >= 32)
            let iat = try #require(c["iat"] as? Int), exp = try #require(c["exp"] as? Int)
            #expect(abs(Double(iat) - e2e.clock.now.timeIntervalSince1970) < 5 && exp > iat && exp - iat <= 3600)
            #expect(c[LTIClaim.deploymentID] as? String == "dep-a")
            #expect(c[LTIClaim.messageType] as? String == "LtiDeepLinkingResponse")
            #expect(c[LTIClaim.version] as? String == "1.3.0")
            #expect(c[DeepLinkingResponse.dataClaim] as? String == "opaque-data-123")
            #expect(response.items.count == 2)
            let first = try #require(response.items.first)
            #expect(first["type"] as? String == "ltiResourceLink")
            #expect(first["title"] as? String == "Create a Virtual Machine in Azure")
            #expect(first["text"] as? String == "Deploy and connect to a Windows virtual machine.")
            #expect(first["url"] as? String == e2e.baseURL + "/lti/launch")
            #expect(first["custom"] as? [String: String] == ["labid": "1001"])
            let line = try #require(first["lineItem"] as? [String: Any])
            #expect(line["scoreMaximum"] as? Double == 50 && line["label"] as? String == "Create a Virtual Machine in Azure")
            #expect(response.items.last?["custom"] as? [String: String] == ["labid": "1003"])

            // The LMS creates the link; a learner launches it and lands in lab 1003.
            let custom = try #require(response.items.last?["custom"] as? [String: String])
            let launch = try await e2e.fullLaunch(labID: custom["labid"])
            #expect(launch.status == 303)
            #expect(await e2e.gateway.skillableSandbox?.state.lastQuery["launch"]?["labid"] == "1003")
        }
    }

    @Test("data is echoed exactly, and absent (never null) when the request had none; nonces are fresh")
    func dataEcho() async throws {
        try await withEndToEnd { e2e in
            let tricky = #"{"a":"b & c","é":[1,2]}  trailing "#
            let withData = try await e2e.openPicker(EndToEnd.deepLinkSettings(data: tricky), path: "/lti/launch")
            let s1 = try #require(Page.attribute(withData.body, named: "value", in: "session").first)
            let r1 = try await ReturnedResponse(try await e2e.submitPicker(session: s1, labs: ["1002"]), e2e: e2e)
            #expect(r1.claims[DeepLinkingResponse.dataClaim] as? String == tricky)

            let without = try await e2e.openPicker(EndToEnd.deepLinkSettings(data: nil))
            let s2 = try #require(Page.attribute(without.body, named: "value", in: "session").first)
            let r2 = try await ReturnedResponse(try await e2e.submitPicker(session: s2, labs: ["1002"]), e2e: e2e)
            #expect(r2.claims.keys.contains(DeepLinkingResponse.dataClaim) == false)
            #expect(r1.claims["nonce"] as? String != r2.claims["nonce"] as? String)
        }
    }

    @Test("only roles that may change the course open the picker: a learner gets a page; a platform may name other roles")
    func pickerRoles() async throws {
        try await withEndToEnd { e2e in
            let membership = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
            let learner = try await e2e.openPicker(EndToEnd.deepLinkSettings(), roles: [membership + "Learner"])
            #expect(learner.status == 403 && learner.body.contains("Only instructors add labs here"))
            #expect(try await e2e.gateway.store.recentLaunches(limit: 5).isEmpty)
            // An institution's instructor is no instructor of this course.
            let elsewhere = try await e2e.openPicker(
                EndToEnd.deepLinkSettings(), roles: ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor", membership + "Learner"])
            #expect(elsewhere.status == 403)
            #expect(try await e2e.openPicker(EndToEnd.deepLinkSettings(), roles: [membership + "ContentDeveloper"]).status == 200)
            // The platform lets its mentors add labs too, and only them.
            #expect(
                try await e2e.gateway.store.setLaunchOptions(PlatformLaunchOptions(pickerRoles: ["Mentor"]), registrationID: e2e.registrationA.id))
            #expect(try await e2e.openPicker(EndToEnd.deepLinkSettings(), roles: [membership + "Mentor"]).status == 200)
            #expect(try await e2e.openPicker(EndToEnd.deepLinkSettings()).status == 403)
        }
    }

    @Test("multi-select only when the platform allows it")
    func singleSelect() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings(multiple: false))
            #expect(picker.body.contains(#"type="radio" name="lab""#) && !picker.body.contains(#"type="checkbox" name="lab""#))
            let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
            let refused = try await e2e.submitPicker(session: session, labs: ["1001", "1002"])
            #expect(refused.status == 422 && refused.body.contains("one lab at a time") && refused.body.contains(#"type="radio" name="lab""#))
            // The same picker, corrected, goes through.
            #expect(try await ReturnedResponse(try await e2e.submitPicker(session: session, labs: ["1002"]), e2e: e2e).items.count == 1)
        }
    }

    @Test("line items only when the platform accepts them")
    func lineItemsOnlyWhenAccepted() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings(lineItem: false))
            #expect(!picker.body.contains("create_line_item"))
            let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
            let response = try await ReturnedResponse(try await e2e.submitPicker(session: session, labs: ["1001"], lineItem: true), e2e: e2e)
            #expect(response.items.count == 1 && response.items[0]["lineItem"] == nil)
            // Accepted but not chosen: no line item either.
            let p2 = try await e2e.openPicker(EndToEnd.deepLinkSettings(lineItem: true))
            let s2 = try #require(Page.attribute(p2.body, named: "value", in: "session").first)
            #expect(try await ReturnedResponse(try await e2e.submitPicker(session: s2, labs: ["1001"]), e2e: e2e).items[0]["lineItem"] == nil)
        }
    }

    @Test("a choice to correct (none, a bad maximum score, too many) brings the picker back with the problem and the choices kept")
    func choiceToCorrect() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings(multiple: true, lineItem: true))
            let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
            #expect(picker.status == 200 && picker.body.contains(#"id="problem" class="problem" role="alert""#) && picker.body.contains(" hidden>"))

            let none = try await e2e.submitPicker(session: session, labs: [])
            #expect(none.status == 422 && none.body.contains("Choose at least one lab") && none.body.contains(#"value="cancel""#))
            #expect(Page.attribute(none.body, named: "value", in: "session").first == session)

            var form = [("session", session), ("action", "add"), ("lab", "1002"), ("create_line_item", "on"), ("score_maximum", "0")]
            let badScore = try await e2e.request(.POST, "/lti/deep-link/select", form: form)
            #expect(badScore.status == 422 && badScore.body.contains("from 1 to 10000"))
            #expect(badScore.body.contains(#"value="1002" checked"#) && !badScore.body.contains(#"value="1001" checked"#))
            #expect(badScore.body.contains(#"value="on" checked"#) && badScore.body.contains(#"value="0""#))

            let tooMany = try await e2e.submitPicker(session: session, labs: (1...51).map { String(1000 + $0) }, lineItem: true, scoreMaximum: "10")
            #expect(tooMany.status == 422 && tooMany.body.contains("at most 50 labs"))

            // Nothing was consumed: the corrected choice goes to the LMS, with its gradebook column.
            form[form.count - 1] = ("score_maximum", "25")
            let returned = try await ReturnedResponse(try await e2e.request(.POST, "/lti/deep-link/select", form: form), e2e: e2e)
            #expect(returned.items.count == 1 && (returned.items[0]["lineItem"] as? [String: Any])?["scoreMaximum"] as? Double == 25)
            let logged = e2e.logs.lines(containing: "lab picker submission to correct")
            #expect(logged.count == 3 && logged.allSatisfy { $0.contains("gw.error=deep_link_") })
        }
    }

    @Test("a picker token from before pickers said how they look leaves the number of labs to the session")
    func tokenWithoutLook() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings(multiple: true))
            let token = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
            let payload = try #require(Base64URL.decode(String(token.split(separator: ".")[1])))
            let claims = (try JSONSerialization.jsonObject(with: payload) as? [String: Any]) ?? [:]
            #expect(claims["multiple"] as? Bool == true)
            let older = try InternalTokens(ring: e2e.gateway.toolKeys.ring).sign(claims: [
                "aud": "lti-gateway/deep-link-picker", "sid": claims["sid"] as? String ?? "", "iat": claims["iat"] as? Int ?? 0,
                "exp": claims["exp"] as? Int ?? 0,
            ])
            let returned = try await ReturnedResponse(try await e2e.submitPicker(session: older, labs: ["1001", "1002"]), e2e: e2e)
            #expect(returned.items.count == 2)
        }
    }

    @Test("cancel returns an empty item list to the platform")
    func cancel() async throws {
        try await withEndToEnd { e2e in
            let picker = try await e2e.openPicker(EndToEnd.deepLinkSettings())
            let session = try #require(Page.attribute(picker.body, named: "value", in: "session").first)
            let response = try await ReturnedResponse(try await e2e.submitPicker(session: session, labs: [], action: "cancel"), e2e: e2e)
            #expect(response.items.isEmpty && response.claims[DeepLinkingResponse.contentItemsClaim] != nil)
            #expect(response.claims[DeepLinkingResponse.dataClaim] as? String == "opaque-data-123")
        }
    }

    @Test("forged, replayed and expired picker submissions get a page telling the instructor to reopen the picker")
    func badSubmissions() async throws {
        try await withEndToEnd { e2e in
            func session() async throws -> String {
                try #require(Page.attribute(try await e2e.openPicker(EndToEnd.deepLinkSettings()).body, named: "value", in: "session").first)
            }
            // Replayed: the second submission of one picker.
            let used = try await session()
            #expect(try await e2e.submitPicker(session: used, labs: ["1001"]).status == 200)
            let replay = try await e2e.submitPicker(session: used, labs: ["1001"])
            #expect(replay.status == 400 && replay.body.contains("reopen the lab picker") && replay.body.contains("already been used"))

            // Forged: a token not signed by the gateway, a tampered one, none at all, and a token signed for something else.
            let genuine = try await session()
            let parts = genuine.split(separator: ".").map(String.init)
            let tampered =
                parts[0] + "." + TestPlatform.encodeSegment(["aud": "lti-gateway/deep-link-picker", "sid": "guess", "exp": 9_999_999_999]) + "."
                + parts[2]
            let foreign = TestPlatform.signRS256(
                header: ["alg": "RS256", "kid": e2e.gateway.toolKeys.signer.key.kid],
                claims: ["aud": "lti-gateway/deep-link-picker", "sid": "x", "exp": 9_999_999_999], key: TestKeys.attacker)
            let otherPurpose = try e2e.gateway.toolKeys.signer.sign(claims: ["aud": "something-else", "sid": "x", "exp": 9_999_999_999])
            for forged in [tampered, foreign, "", "not-a-token", otherPurpose, String(repeating: "a", count: 20_000)] {
                let response = try await e2e.submitPicker(session: forged, labs: ["1001"])
                #expect(response.status == 400 && response.body.contains("reopen the lab picker"), "\(forged.prefix(20))")
            }
            // A real session id, signed by the gateway, but for another purpose or already expired.
            let sid = try #require((try JSONSerialization.jsonObject(with: Base64URL.decode(parts[1])!) as? [String: Any])?["sid"] as? String)
            let internalTokens = InternalTokens(ring: e2e.gateway.toolKeys.ring)
            let wrongAudience = try internalTokens.sign(claims: ["aud": "something-else", "sid": sid, "exp": 9_999_999_999])
            #expect(try await e2e.submitPicker(session: wrongAudience, labs: ["1001"]).status == 400)
            // Signed with the key platforms trust (as a deep-linking response is): never an internal token.
            let platformFacing = try e2e.gateway.toolKeys.signer.sign(claims: [
                "aud": "lti-gateway/deep-link-picker", "sid": sid, "exp": 9_999_999_999,
            ])
            #expect(try await e2e.submitPicker(session: platformFacing, labs: ["1001"]).status == 400)
            let pastExpiry = try internalTokens.sign(claims: [
                "aud": "lti-gateway/deep-link-picker", "sid": sid,
                "exp": Int(e2e.clock.now.timeIntervalSince1970) - 1,
            ])
            let expiredToken = try await e2e.submitPicker(session: pastExpiry, labs: ["1001"])
            #expect(expiredToken.status == 400 && expiredToken.body.contains("expired"))
            // The genuine picker still works after the forgeries.
            #expect(try await e2e.submitPicker(session: genuine, labs: ["1001"]).status == 200)

            // Expired.
            let late = try await session()
            e2e.clock.advance(3601)
            let expired = try await e2e.submitPicker(session: late, labs: ["1001"])
            #expect(expired.status == 400 && expired.body.contains("expired"))
            // A lab that is not launchable cannot be smuggled in.
            e2e.clock.advance(-3601)
            let smuggle = try await e2e.submitPicker(session: try await session(), labs: ["1004"])
            #expect(smuggle.status == 422 && smuggle.body.contains("not (or no longer) available") && !smuggle.body.contains(#"value="1004""#))
        }
    }

    @Test("the lab list is cached: several pickers, one catalog call; a failing Skillable gets a clear page")
    func catalogCache() async throws {
        try await withEndToEnd { e2e in
            await e2e.gateway.skillableSandbox?.state.scriptFailures([.serverError])
            let failed = try await e2e.openPicker(EndToEnd.deepLinkSettings())
            #expect(failed.status == 502 && failed.body.contains("lab list is not available"))
            for _ in 0..<3 { #expect(try await e2e.openPicker(EndToEnd.deepLinkSettings()).status == 200) }
            #expect(await e2e.gateway.skillableSandbox?.state.calls["catalog"] == 2)
        }
    }

    @Test("a placement that does not accept resource links gets a clear page")
    func typeNotAccepted() async throws {
        try await withEndToEnd { e2e in
            let response = try await e2e.openPicker(EndToEnd.deepLinkSettings(types: ["file", "html"]))
            #expect(response.status == 400 && response.body.contains("cannot be added here"))
        }
    }
}
