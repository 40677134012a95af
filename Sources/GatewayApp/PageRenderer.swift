import HTTPTypes
import Hummingbird
import Mustache

/// Learner-facing HTML pages from Mustache templates (values HTML-escaped: claim values are untrusted).
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    init() throws {
        var library = MustacheLibrary()
        try library.register(Self.layout, named: "layout")
        try library.register(Self.errorTemplate, named: "error")
        try library.register(Self.messageTemplate, named: "message")
        self.library = library
    }

    /// The page for an error, with its reference id; never the underlying error.
    func errorPage(_ error: GatewayError, reference: String) -> Response {
        render("error", status: error.status, [
            "title": error.title, "message": error.message, "reference": reference, "rule": error.rule ?? "",
        ])
    }

    /// A plain page with a title and a paragraph.
    func messagePage(title: String, message: String, status: HTTPResponse.Status = .ok) -> Response {
        render("message", status: status, ["title": title, "message": message])
    }

    private func render(_ name: String, status: HTTPResponse.Status, _ values: [String: String]) -> Response {
        let body = library.render(values, withTemplate: name) ?? "<!doctype html><title>Error</title><p>Error</p>"
        return Response(status: status, headers: [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            HTTPField.Name("Content-Security-Policy")!: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
        main{max-width:40rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
        h1{font-size:1.4rem;margin-top:0} .ref{color:#555;font-size:.9rem} code{font-size:1rem;background:#eef;padding:.1rem .3rem}
        """

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · LTI Gateway</title><style>\(style)</style></head>
        <body><main>{{$content}}{{/content}}</main></body></html>
        """

    static let errorTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1><p>{{message}}</p>
        <p class="ref">Reference: <code>{{reference}}</code>{{#rule}} · rule {{rule}}{{/rule}}</p>{{/content}}{{/layout}}
        """

    static let messageTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1><p>{{message}}</p>{{/content}}{{/layout}}
        """
}
