import Foundation
import GatewaySupport
import HTTPTypes
import Hummingbird
import LTICore
import Mustache
import Synchronization

/// Learner-facing HTML pages from Mustache templates (values HTML-escaped: claim values are untrusted).
///
/// Values are escaped by ``HTMLEscaping`` (bytes), not Mustache's own escaper, which works on characters: a `"`
/// followed by a combining mark is one character to it, and slipped through unescaped (a lab name could have
/// added attributes to a button). Every page's forms may post only to this gateway (`form-action 'self'`), the
/// return to the LMS only to the LMS's return address.
struct PageRenderer: Sendable {
    let library: MustacheLibrary
    private let errorPages = ErrorPageCache()

    init() throws {
        MustacheContentTypes.register(ByteEscapedHTML(), named: ByteEscapedHTML.name)
        var library = MustacheLibrary()
        let templates = [
            ("layout", Self.layout), ("error", Self.errorTemplate), ("message", Self.messageTemplate), ("picker", Self.pickerTemplate),
            ("autopost", Self.autoPostTemplate), ("lab-actions", Self.labActionsTemplate), ("labs", Self.labsTemplate),
            ("confirm-end", Self.confirmEndTemplate), ("new-window", Self.newWindowPartial), ("new-window-page", Self.newWindowTemplate),
            ("storage-login", Self.storageLoginTemplate), ("storage-launch", Self.storageLaunchTemplate),
            ("registered", Self.registeredTemplate),
        ]
        for (name, template) in templates {
            try library.register("{{% CONTENT_TYPE: \(ByteEscapedHTML.name)}}" + template, named: name)
        }
        self.library = library
    }

    /// Mustache's content type for our pages: ``HTMLEscaping`` over bytes.
    struct ByteEscapedHTML: MustacheContentType {
        static let name = "GATEWAY_HTML"
        func escapeText(_ text: String) -> String { HTMLEscaping.escape(text) }
    }

    /// The page for an error, with its reference id; never the underlying error.
    ///
    /// Refusals must stay cheap (forged launches arrive in bulk), so each error's page is rendered once
    /// around a marker and later pages only put the escaped reference in its place (``ErrorPageCache``).
    func errorPage(_ error: GatewayError, reference: String) -> Response {
        func values(reference: String) -> [String: Any] {
            var values: [String: Any] = ["title": error.title, "message": error.message, "reference": reference]
            if let rule = error.rule { values["rule"] = rule }  // an empty string would still open the section
            if let returnURL = error.returnURL { values["returnURL"] = returnURL }
            return values
        }
        // A page with a way back to the learner's own course is that learner's: rendered for them, never cached.
        guard error.returnURL == nil else { return render("error", status: error.status, values(reference: reference), hasActions: false) }
        let key = ErrorPageCache.Key(title: error.title, message: error.message, rule: error.rule)
        let page = errorPages.page(for: key) { marker in library.render(values(reference: marker), withTemplate: "error") }
        guard let page else { return render("error", status: error.status, values(reference: reference), hasActions: false) }
        var body = ByteBuffer()
        body.reserveCapacity(page.head.utf8.count + page.tail.utf8.count + reference.utf8.count + 16)
        body.writeString(page.head)
        body.writeHTMLEscaped(reference)
        body.writeString(page.tail)
        return response(status: error.status, body: body, hasActions: false)
    }

    /// A plain page with a title and a paragraph.
    /// The page that ends a dynamic registration; it may show in the LMS's frame (it has no actions).
    func registeredPage(title: String, message: String, facts: [String]) -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        return render(
            "registered", status: .ok, ["title": title, "message": message, "facts": facts, "nonce": nonce], scriptNonce: nonce, hasActions: false)
    }

    func messagePage(title: String, message: String, status: HTTPResponse.Status = .ok) -> Response {
        render("message", status: status, ["title": title, "message": message], hasActions: false)
    }

    /// The lab picker of a deep-linking request; `422` when it comes back with a problem in the instructor's choice.
    func pickerPage(_ picker: PickerView) -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        var values = picker.values
        values["nonce"] = nonce
        return render("picker", status: picker.content.problem == nil ? .ok : .unprocessableContent, values, scriptNonce: nonce)
    }

    /// The too-many-labs page: the learner's running and saved labs with their actions (its script shows their
    /// times in the learner's own time zone).
    /// `formAction`: its Launch and Resume are answered with a redirect into a lab (``FormTargets``).
    func labsPage(_ values: [String: Any], formAction: String = "'self'") -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        var values = values
        values["nonce"] = nonce
        return render("labs", status: .ok, values, scriptNonce: nonce, formAction: formAction)
    }

    /// Asks the learner to confirm ending a lab.
    func confirmEndPage(_ values: [String: Any]) -> Response {
        render("confirm-end", status: .ok, values)
    }

    /// A page that posts `JWT` to the platform at once (and offers a button for browsers without script).
    func autoPostPage(action: String, jwt: String, summary: String) -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        return render(
            "autopost", status: .ok,
            [
                "title": "Returning to your course", "action": action, "jwt": jwt,
                "summary": summary, "nonce": nonce,
            ], scriptNonce: nonce, formAction: PlatformStorageTarget.origin(of: action) ?? "'none'",
            // Its one form carries the instructor's own choice to the LMS's own return URL, by itself: nothing to trick a click into.
            hasActions: false)
    }

    /// Renders template `name`; `scriptNonce` allows the page's scripts carrying it, `connectSelf` their
    /// requests to this gateway; `referrerPolicy` is `no-referrer` unless a page needs its own origin sent;
    /// `formAction` is where its forms may post (this gateway unless said).
    /// `hasActions`: the page has buttons or forms, so only its platform may frame it (``FrameAncestors``).
    func render(
        _ name: String, status: HTTPResponse.Status, _ values: [String: Any], scriptNonce: String? = nil,
        connectSelf: Bool = false, referrerPolicy: String = "no-referrer", formAction: String = "'self'", hasActions: Bool = true
    ) -> Response {
        let body = library.render(values, withTemplate: name) ?? "<!doctype html><title>Error</title><p>Error</p>"
        return response(
            status: status, body: ByteBuffer(string: body), scriptNonce: scriptNonce, connectSelf: connectSelf, referrerPolicy: referrerPolicy,
            formAction: formAction, hasActions: hasActions)
    }

    private func response(
        status: HTTPResponse.Status, body: ByteBuffer, scriptNonce: String? = nil, connectSelf: Bool = false,
        referrerPolicy: String = "no-referrer", formAction: String = "'self'", hasActions: Bool
    ) -> Response {
        let scripts = scriptNonce.map { "; script-src 'nonce-\($0)'" } ?? ""
        let connect = connectSelf ? "; connect-src 'self'" : ""
        let framing = hasActions ? FrameAncestors.restricted : "frame-ancestors *"
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'none'; style-src 'unsafe-inline'\(scripts)\(connect); form-action \(formAction); \(framing)",
                .xContentTypeOptions: "nosniff",
                .referrerPolicy: referrerPolicy,
            ], body: .init(byteBuffer: body))
    }

    /// Error pages rendered once per distinct error, split where the request's reference goes.
    ///
    /// Holds at most ``capacity`` pages; errors beyond that (their messages are fixed texts, so this is
    /// not expected) are rendered each time rather than evicting, so that no input can grow it.
    final class ErrorPageCache: Sendable {
        struct Key: Hashable, Sendable {
            var title: String
            var message: String
            var rule: String?
        }

        struct Page: Sendable {
            var head: String
            var tail: String
        }

        static let capacity = 256
        /// Stands in for the reference while rendering; random, so no title or message can contain it.
        private let marker = "reference-" + SecureRandom.token(byteCount: 16)
        private let pages = Mutex<[Key: Page]>([:])

        /// The page for `key`, rendering it with `render(marker)` the first time.
        func page(for key: Key, render: (String) -> String?) -> Page? {
            if let page = pages.withLock({ $0[key] }) { return page }
            guard let html = render(marker), let range = html.range(of: marker) else { return nil }
            let page = Page(head: String(html[..<range.lowerBound]), tail: String(html[range.upperBound...]))
            pages.withLock { if $0.count < Self.capacity { $0[key] = page } }
            return page
        }
    }

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
        main{max-width:40rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
        h1{font-size:1.4rem;margin-top:0} .ref{color:#555;font-size:.9rem} code{font-size:1rem;background:#eef;padding:.1rem .3rem}
        @media (max-width:40rem){main{margin:0;border-radius:0;box-shadow:none;padding:1.2rem;min-height:100vh;box-sizing:border-box}}
        button,.button{display:inline-block;min-height:44px;min-width:44px;padding:.55rem 1.1rem;margin:.2rem .4rem .2rem 0;font:inherit;
        border-radius:6px;border:2px solid #1f5fbf;background:#1f5fbf;color:#fff;cursor:pointer;text-decoration:none;box-sizing:border-box}
        .secondary{background:#fff;color:#1f5fbf} .destructive{background:#b3261e;border-color:#b3261e;color:#fff}
        button:focus-visible,.button:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
        .problem{color:#8a1c14;background:#fdecea;border-left:4px solid #b3261e;padding:.6rem .8rem}
        .back{margin-top:1.5rem}
        """

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · LTI Gateway</title><style>\(style)</style></head>
        <body><main>{{$content}}{{/content}}</main></body></html>
        """

    static let errorTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1><p>{{message}}</p>
        {{#returnURL}}<p class="back"><a class="button secondary" href="{{returnURL}}">Back to your course</a></p>{{/returnURL}}
        <p class="ref">When you ask for help, give this. Reference: <code>{{reference}}</code>{{#rule}} · rule {{rule}}{{/rule}}</p>{{/content}}{{/layout}}
        """

    static let pickerTemplate = """
        {{<layout}}{{$content}}
        <h1>Add Skillable labs</h1>
        <form id="picker" method="post" action="{{action}}">
        <input type="hidden" name="session" value="{{session}}">
        <p id="problem" class="problem" role="alert" data-none="{{noneChosen}}"{{^problem}} hidden{{/problem}}>{{problem}}</p>
        <p><label for="search">Search by name, number or tag</label><br>
        <input type="search" id="search" autocomplete="off" style="width:100%;padding:.5rem;box-sizing:border-box" aria-controls="labs"></p>
        <fieldset><legend>{{#multiple}}Choose one or more labs{{/multiple}}{{^multiple}}Choose a lab{{/multiple}}</legend>
        <ul id="labs" style="list-style:none;padding:0">
        {{#labs}}<li data-search="{{search}}" style="margin:.6rem 0">
        <label style="display:flex;gap:.6rem;align-items:flex-start;padding:.3rem 0"><input type="{{inputType}}" name="lab" value="{{id}}"{{#required}} required{{/required}}{{#checked}} checked{{/checked}} style="width:1.3rem;height:1.3rem;margin:.1rem 0 0;flex:none">
        <span><strong>{{name}}</strong> <span class="ref">{{number}} · {{duration}} min</span>
        <span class="ref" style="display:block">{{description}}</span></span></label></li>
        {{/labs}}</ul>
        <p id="nomatch" hidden role="status">No lab matches this search.</p></fieldset>
        {{#lineItems}}<p><label><input type="checkbox" name="create_line_item" value="on"{{#createLineItem}} checked{{/createLineItem}}> Create a gradebook column for each lab</label>
        <label style="margin-left:1rem">Maximum score <input type="number" name="score_maximum" min="1" max="10000" step="any" value="{{scoreMaximum}}" style="width:6rem"></label></p>{{/lineItems}}
        <p><button type="submit" name="action" value="add">Add to course</button>
        <button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Cancel</button></p>
        </form>
        <script nonce="{{nonce}}">
        (function(){var q=document.getElementById('search'),none=document.getElementById('nomatch'),form=document.getElementById('picker'),
        problem=document.getElementById('problem');
        q.addEventListener('input',function(){var v=q.value.toLowerCase().trim(),shown=0;
        document.querySelectorAll('#labs li').forEach(function(li){var hit=!v||li.dataset.search.indexOf(v)>=0;li.hidden=!hit;if(hit)shown++;});
        none.hidden=shown>0;});
        form.addEventListener('submit',function(e){if(e.submitter&&e.submitter.value==='cancel')return;
        if(!form.querySelector('input[name=lab]:checked')){e.preventDefault();problem.textContent=problem.dataset.none;problem.hidden=false;
        problem.scrollIntoView();}});})();
        </script>
        {{/content}}{{/layout}}
        """

    static let labsTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1>
        <p{{#ended}} role="status"{{/ended}}>{{advice}}</p>
        {{#hasRunning}}<h2>Running labs</h2><ul style="padding-left:1.2rem">{{#running}}<li style="margin:.8rem 0"><strong>{{name}}</strong><br>
        <span class="ref">Started <time datetime="{{startISO}}">{{start}}</time> · ends {{expiresRelative}} (<time datetime="{{expiresISO}}">{{expires}}</time>)</span>{{> lab-actions}}</li>{{/running}}</ul>{{/hasRunning}}
        {{#hasSaved}}<h2>Saved labs</h2><ul style="padding-left:1.2rem">{{#saved}}<li style="margin:.8rem 0"><strong>{{name}}</strong><br>
        <span class="ref">Started <time datetime="{{startISO}}">{{start}}</time> · saved until <time datetime="{{expiresISO}}">{{expires}}</time> ({{expiresRelative}})</span>{{> lab-actions}}</li>{{/saved}}</ul>{{/hasSaved}}
        {{^hasLabs}}<p>You have no running or saved labs now.</p>{{/hasLabs}}
        <form method="post" action="{{base}}/lti/labs/launch"><input type="hidden" name="session" value="{{session}}">
        <p><button type="submit">Launch {{labName}}</button></p></form>
        {{#returnURL}}<p class="back"><a class="button secondary" href="{{returnURL}}">Back to your course</a></p>{{/returnURL}}
        <p class="ref">When you ask for help, give this. Reference: <code>{{reference}}</code></p>
        <script nonce="{{nonce}}">
        (function(){try{var f=new Intl.DateTimeFormat(undefined,{dateStyle:'medium',timeStyle:'short'});
        document.querySelectorAll('time[datetime]').forEach(function(t){var d=new Date(t.getAttribute('datetime'));if(!isNaN(d))t.textContent=f.format(d);});}catch(e){}})();
        </script>{{/content}}{{/layout}}
        """

    static let labActionsTemplate = """
        <div style="margin-top:.3rem">
        <form method="post" action="{{base}}/lti/labs/resume" style="display:inline"><input type="hidden" name="session" value="{{session}}">
        <input type="hidden" name="instance" value="{{id}}"><button type="submit" class="secondary" aria-label="Resume {{name}}">Resume</button></form>
        <form method="post" action="{{base}}/lti/labs/end" style="display:inline"><input type="hidden" name="session" value="{{session}}">
        <input type="hidden" name="instance" value="{{id}}"><button type="submit" class="destructive" aria-label="End {{name}}">End…</button></form></div>
        """

    static let confirmEndTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1>
        <p>Ending the lab stops it for good: anything in it that you have not saved or submitted is lost.</p>
        <form method="post" action="{{base}}/lti/labs/end" style="display:inline"><input type="hidden" name="session" value="{{session}}">
        <input type="hidden" name="instance" value="{{id}}"><input type="hidden" name="confirm" value="yes">
        <button type="submit" class="destructive">End {{name}}</button></form>
        <form method="post" action="{{base}}/lti/labs" style="display:inline"><input type="hidden" name="session" value="{{session}}">
        <button type="submit" class="secondary">Keep it</button></form>
        {{#returnURL}}<p class="back"><a class="button secondary" href="{{returnURL}}">Back to your course</a></p>{{/returnURL}}
        <p class="ref">When you ask for help, give this. Reference: <code>{{reference}}</code></p>{{/content}}{{/layout}}
        """

    static let autoPostTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1>
        <form id="return" method="post" action="{{action}}">
        <input type="hidden" name="JWT" value="{{jwt}}">
        <p>{{summary}}</p><p><button type="submit">Continue to the course</button></p></form>
        <script nonce="{{nonce}}">document.getElementById('return').submit();</script>{{/content}}{{/layout}}
        """

    /// The end of a dynamic registration: says what was registered and tells the LMS (opener or parent frame) to close
    /// the registration window (`org.imsglobal.lti.close`).
    static let registeredTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1><p>{{message}}</p><ul>{{#facts}}<li>{{.}}</li>{{/facts}}</ul>
        <p>You can close this window.</p>
        <script nonce="{{nonce}}">(window.opener || window.parent).postMessage({subject: "org.imsglobal.lti.close"}, "*");</script>
        {{/content}}{{/layout}}
        """

    static let messageTemplate = """
        {{<layout}}{{$content}}<h1>{{title}}</h1><p>{{message}}</p>{{/content}}{{/layout}}
        """
}

extension ByteBuffer {
    /// Writes `text` with `<`, `>`, `&`, `"` and `'` escaped as Mustache's `{{…}}` does.
    mutating func writeHTMLEscaped(_ text: String) {
        for byte in text.utf8 {
            if let entity = HTMLEscaping.entity(for: byte) { writeStaticString(entity) } else { writeInteger(byte) }
        }
    }
}
