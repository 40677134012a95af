import Hummingbird
import LTICore
import Mustache
import Testing

@testable import GatewayApp

@Suite("Page renderer")
struct PageRendererTests {
    static func body(_ response: Response) async throws -> String {
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return String(buffer: writer.buffer)
    }

    @Test("an error page is the template's page with this request's reference, escaped, however often it is served")
    func errorPageReuse() async throws {
        let pages = try PageRenderer()
        let error = GatewayError(
            code: .init(.stateUnknown), status: .unauthorized, title: "This launch was refused",
            message: "Start the activity again from your course & try once more.", rule: "Launch 1")
        for reference in ["ref-one", "ref-two", "<b>\"x\"&'y'</b>"] {
            let response = pages.errorPage(error, reference: reference)
            #expect(response.status == .unauthorized)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            let expected = pages.library.render(
                ["title": error.title, "message": error.message, "reference": reference, "rule": "Launch 1"],
                withTemplate: "error")
            #expect(try await Self.body(response) == expected)
        }
        // A different error is not served another error's page.
        let other = GatewayError(
            code: .init(LaunchFailure.Code.labIDMissing), status: .badRequest, title: "No lab", message: "This link names no lab.")
        let page = try await Self.body(pages.errorPage(other, reference: "ref-three"))
        #expect(page.contains("No lab") && page.contains("ref-three") && !page.contains("Launch 1") && !page.contains("refused"))
    }

    @Test("quotes and brackets followed by a combining mark are escaped too (one character to Mustache, bytes to us)")
    func combiningMarks() async throws {
        let pages = try PageRenderer()
        let hostile = "Lab\"\u{301} formaction=https://evil.example \u{301}<\u{301}script\u{301}>'\u{301}&\u{301}"
        let page = try await Self.body(pages.messagePage(title: hostile, message: hostile))
        for raw in ["\"\u{301}", "<\u{301}", ">", "'\u{301}", "&\u{301}"] where raw != ">" {
            #expect(!page.contains(raw), "unescaped \(raw.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        #expect(page.contains("Lab&quot;\u{301} formaction") && page.contains("&lt;\u{301}scrip"))
    }

    @Test("forms post only to the gateway; the return to the LMS only to the LMS's origin")
    func formAction() async throws {
        let pages = try PageRenderer()
        let csp = { (response: Response) in response.headers[.contentSecurityPolicy] ?? "" }
        #expect(csp(pages.messagePage(title: "t", message: "m")).contains("form-action 'self';"))
        let back = pages.autoPostPage(action: "https://lms.example.edu:8443/deep_links/return?x=1", jwt: "j", summary: "s")
        #expect(csp(back).contains("form-action https://lms.example.edu:8443;"))
    }
}

/// Collects a response body.
final class CollectingWriter: ResponseBodyWriter {
    var buffer = ByteBuffer()
    func write(_ buffer: ByteBuffer) async throws { self.buffer.writeImmutableBuffer(buffer) }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
