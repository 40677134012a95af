import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import LTITestSupport
import NIOHTTP1
import Testing

@testable import GatewayApp

/// Hardening L3: pages with actions are framed only by their platform; pages without actions by any site.
@Suite("Who may frame the gateway's pages")
struct FrameAncestorsTests {
    static func registration(issuer: String, auth: String) -> PlatformRegistration {
        PlatformRegistration(
            id: "r", issuer: issuer, clientID: "c", authURL: auth, tokenURL: auth, jwksURL: auth, deploymentIDs: ["d"], createdAt: Date())
    }

    @Test("derived from the registration: its issuer's and auth endpoint's origins, and a cloud LMS's course domains")
    func derived() {
        let canvas = Self.registration(issuer: "https://canvas.instructure.com", auth: "https://sso.canvaslms.com/api/lti/authorize_redirect")
        #expect(
            FrameAncestors.sources(canvas, options: PlatformLaunchOptions())
                == "https://canvas.instructure.com https://sso.canvaslms.com https://*.instructure.com")
        let moodle = Self.registration(issuer: "https://moodle.school.edu", auth: "https://moodle.school.edu/mod/lti/auth.php")
        #expect(FrameAncestors.sources(moodle, options: PlatformLaunchOptions()) == "https://moodle.school.edu")
        let withStorage = PlatformLaunchOptions(storageOrigin: "https://school.example.edu")
        #expect(FrameAncestors.sources(moodle, options: withStorage) == "https://moodle.school.edu https://school.example.edu")
        let configured = PlatformLaunchOptions(frameAncestors: ["https://canvas.school.edu", "https://*.school.edu"])
        #expect(FrameAncestors.sources(canvas, options: configured) == "https://canvas.school.edu https://*.school.edu")
        // A lookalike of a cloud domain gets no wildcard.
        let lookalike = Self.registration(issuer: "https://evilinstructure.com", auth: "https://evilinstructure.com/auth")
        #expect(FrameAncestors.sources(lookalike, options: PlatformLaunchOptions()) == "https://evilinstructure.com")
    }

    @Test("the option takes origins, https wildcards of a domain, or *; nothing else")
    func optionValidation() {
        for good in [["https://school.instructure.com"], ["https://*.school.edu"], ["*"], ["http://localhost:8080"]] {
            #expect(PlatformLaunchOptions(frameAncestors: good).problem == nil, "\(good)")
        }
        for bad in [
            [], ["http://school.example.edu"], ["https://*"], ["https://*.edu"], ["https://school.edu/path"], ["'self' https://a.edu"],
            ["https://a.edu; script-src *"],
        ] {
            #expect(PlatformLaunchOptions(frameAncestors: bad).problem != nil, "\(bad)")
        }
    }

    @Test("end to end: the learner's labs page names its platform (or the platform's setting), a refusal page any site")
    func endToEnd() async throws {
        try await withEndToEnd { e2e in
            let learner: (inout [String: Any]) -> Void = { $0["sub"] = "framed-learner" }
            _ = try await e2e.fullLaunch(labID: "1001", learner)
            _ = try await e2e.fullLaunch(labID: "1002", learner)
            let page = try await e2e.fullLaunch(labID: "1003", learner)  // too many labs: the page with actions
            #expect(page.status == 200)
            let lms = "http://127.0.0.1:\(e2e.platformPort)"
            #expect(page.headers.first(name: "Content-Security-Policy")?.hasSuffix("frame-ancestors https://lms-a.example.edu \(lms)") == true)

            // The platform's own setting wins, on the page's later actions too.
            var options = try await e2e.gateway.store.launchOptions(registrationID: e2e.registrationA.id)
            options.frameAncestors = ["https://course.example.edu"]
            _ = try await e2e.gateway.store.setLaunchOptions(options, registrationID: e2e.registrationA.id)
            let session = try #require(Page.attribute(page.body, named: "value", in: "session").first)
            let listed = try await e2e.request(.POST, "/lti/labs", form: [("session", session)])
            #expect(listed.headers.first(name: "Content-Security-Policy")?.hasSuffix("frame-ancestors https://course.example.edu") == true)

            // A refusal has nothing to click: any LMS frame may show it, with its reference.
            let refused = try await e2e.launch(idToken: "not.a.jwt", state: "unknown-state", cookie: nil)
            #expect(refused.headers.first(name: "Content-Security-Policy")?.hasSuffix("frame-ancestors *") == true)
            // So is an action posted with a handle the gateway never gave (its refusal page has no actions either).
            let unknown = try await e2e.request(.POST, "/lti/labs", form: [("session", "never-issued")])
            #expect(unknown.status == 400 && unknown.headers.first(name: "Content-Security-Policy")?.hasSuffix("frame-ancestors *") == true)
        }
    }

    @Test("a page with actions whose platform no route named stays unframeable")
    func unknownPlatform() throws {
        let page = try PageRenderer().labsPage(["title": "Labs"])
        #expect(page.headers[.contentSecurityPolicy]?.hasSuffix("frame-ancestors 'none'") == true)
    }
}

@Suite("Form targets")
struct FormTargetsTests {
    @Test("a page whose form is answered with a redirect into a lab names the lab hosts in form-action, and nothing but hosts")
    func labHostsInFormAction() {
        let labs = LabRedirectPolicy(
            exactAuthorities: ["lti.example.edu", "labondemand.example:8443"],
            hostSuffixes: [".labondemand.com", "lab.example.org", "x; script-src *"],
            sandboxAuthority: { "127.0.0.1:9000" })
        let skyPrep = LabRedirectPolicy(exactAuthorities: ["lti.example.edu"], hostSuffixes: ["acme.skyprepapp.com"], sandboxAuthority: nil)
        #expect(
            FormTargets(policies: [labs, skyPrep]).formAction
                == "'self' labondemand.example:8443 lti.example.edu 127.0.0.1:9000 https://*.labondemand.com https://labondemand.com "
                + "https://lab.example.org https://acme.skyprepapp.com")
    }
}
