import Foundation
import GatewayStorage
import HTTPTypes
import Hummingbird
import LTICore

/// Where and how a page talks to the platform's storage (LTI Client Side postMessages,
/// `reference/lti-advantage.md` §1).
struct PlatformStorageTarget {
    /// The login's key in the platform's storage (derived from the state, never the state itself).
    var key: String
    /// The origin of the platform's storage frame (its authorization endpoint's, unless the platform's options
    /// name another): `lti.put_data` and `lti.get_data` go only there, and their answers count only from there.
    var origin: String
    /// The frame to use when the platform's `lti.capabilities` answer names none.
    var frame: String

    /// The origin of `registration`'s storage frame: the one its options name, else its authorization endpoint's.
    static func origin(of registration: PlatformRegistration, options: PlatformLaunchOptions) -> String? {
        options.storageOrigin.flatMap(origin(of:)) ?? origin(of: registration.authURL)
    }

    /// The `scheme://host[:port]` of an absolute URL; nil when it has none.
    static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        return components.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }

    var values: [String: Any] { ["key": key, "origin": origin, "frame": frame] }
}

extension PageRenderer {
    /// The login page of a login that offers platform storage: in a top-level window it goes on to the
    /// platform at once; in a frame it checks whether the state cookie came back, else keeps the login's
    /// secret in the platform's storage, then goes on; when neither works it offers a new window.
    ///
    /// - Important: Carries the state (inside the authorization URL, as the redirect's `Location` would, and
    ///   for the cookie check) and the storage secret; sent with `Cache-Control: no-store` and
    ///   `Referrer-Policy: no-referrer`, never logged.
    func storageLoginPage(
        authorizationURL: String, state: String, secret: String, target: PlatformStorageTarget,
        base: String, restartKey: String
    ) -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        var values = target.values
        values.merge([
            "title": "Connecting to your course", "authURL": authorizationURL, "state": state, "secret": secret,
            "checkURL": base + "/lti/login/check", "restartURL": base + "/lti/login/restart", "restartKey": restartKey,
            "nonce": nonce,
        ]) { $1 }
        return render(
            "storage-login", status: .ok, values, scriptNonce: nonce, connectSelf: true,
            formAction: "'self'" + (PlatformStorageTarget.origin(of: authorizationURL).map { " " + $0 } ?? ""))
    }

    /// The launch page that reads the login's secret back from the platform's storage and posts the launch
    /// again with it (or with the reason it could not).
    ///
    /// - Important: Relays the platform's `id_token` and the state to this gateway in a form, as the platform
    ///   posted them; no other copy is kept or logged. `Referrer-Policy: same-origin`, so that the relay's POST
    ///   carries the gateway's own `Origin` (under `no-referrer` a browser without Fetch Metadata sends
    ///   `Origin: null`), which the launch checks before it takes a secret.
    /// `formAction`: where the launch's answer may redirect (``FormTargets``); browsers hold a form's redirects to it.
    func storageLaunchPage(action: String, idToken: String, state: String, formAction: String, target: PlatformStorageTarget) -> Response {
        let nonce = SecureRandom.token(byteCount: 16)
        var values = target.values
        values.merge(["title": "Connecting to your course", "action": action, "idToken": idToken, "state": state, "nonce": nonce]) { $1 }
        return render("storage-launch", status: .ok, values, scriptNonce: nonce, referrerPolicy: "same-origin", formAction: formAction)
    }

    /// The refusal of a launch that nothing ties to this browser, offering to open the activity in a new window.
    func newWindowPage(_ error: GatewayError, reference: String, restart: NewWindowRestart) -> Response {
        var values: [String: Any] = [
            "title": error.title, "message": error.message, "reference": reference, "restartURL": restart.url, "restartKey": restart.restartKey,
        ]
        if let rule = error.rule { values["rule"] = rule }
        // The restart form posts here and is redirected on to the platform's authorization endpoint.
        return render("new-window-page", status: error.status, values, formAction: "'self'" + (restart.platformOrigin.map { " " + $0 } ?? ""))
    }

    /// The "open in a new window" section shared by the login page and the refusal.
    static let newWindowPartial = """
        <h1>Open this activity in a new window</h1>
        <p>Your browser does not let this activity remember you inside the course page. In a window of its own, it works.</p>
        <form id="restart" method="post" action="{{restartURL}}" target="_blank">
        <input type="hidden" name="login" value="{{restartKey}}">
        <p><button type="submit">Open in a new window</button></p></form>
        """

    static let newWindowTemplate = """
        {{<layout}}{{$content}}{{> new-window}}
        <p class="ref">{{message}}</p>
        <p class="ref">When you ask for help, give this. Reference: <code>{{reference}}</code>{{#rule}} · rule {{rule}}{{/rule}}</p>{{/content}}{{/layout}}
        """

    static let storageLoginTemplate = """
        {{<layout}}{{$content}}
        <div id="lti-storage" data-mode="login" data-auth="{{authURL}}" data-state="{{state}}" data-key="{{key}}" data-secret="{{secret}}"
        data-origin="{{origin}}" data-frame="{{frame}}" data-check="{{checkURL}}"></div>
        <section id="connecting"><h1>{{title}}</h1><p role="status">One moment…</p>
        <noscript><p><a href="{{authURL}}">Continue</a></p></noscript></section>
        <section id="new-window" hidden>{{> new-window}}</section>
        <script nonce="{{nonce}}">\(storageScript)</script>
        {{/content}}{{/layout}}
        """

    static let storageLaunchTemplate = """
        {{<layout}}{{$content}}
        <div id="lti-storage" data-mode="launch" data-key="{{key}}" data-origin="{{origin}}" data-frame="{{frame}}"></div>
        <h1>{{title}}</h1><p role="status">One moment…</p>
        <form id="relay" method="post" action="{{action}}">
        <input type="hidden" name="id_token" value="{{idToken}}"><input type="hidden" name="state" value="{{state}}">
        <input type="hidden" name="lti_storage_secret" disabled><input type="hidden" name="lti_storage_error" disabled>
        <noscript><p><button type="submit" name="lti_storage_error" value="noscript">Continue</button></p></noscript></form>
        <script nonce="{{nonce}}">\(storageScript)</script>
        {{/content}}{{/layout}}
        """

    /// The browser side of LTI Platform Storage (Client Side postMessages), for the login and the launch page.
    ///
    /// `lti.capabilities` carries nothing secret: it goes to the parent window with target `*` (the LMS page
    /// may be on another origin than its storage frame, as on Canvas cloud) and its answer counts only from
    /// that window. `lti.put_data` and `lti.get_data` go only to the storage frame's origin, and their
    /// answers count only from the frame they went to, from that origin, with the same `message_id`.
    ///
    /// - Important: The secret is never posted to `*` and a secret is never taken from another origin; each
    ///   message waits at most 2 s.
    static let storageScript = """
        (function () {
          'use strict';
          var d = document.getElementById('lti-storage').dataset;
          var inFrame = window.parent !== window;
          var windowProperties = ['top', 'parent', 'opener', 'self', 'window', 'frames', 'length', 'location', 'close',
                                  'closed', 'focus', 'blur', 'postMessage'];
          function messageID() {
            var bytes = new Uint8Array(16);
            crypto.getRandomValues(bytes);
            return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
          }
          function ask(target, targetOrigin, subject, fields) {
            return new Promise(function (resolve, reject) {
              var id = messageID();
              var timer = setTimeout(function () { stop(); reject('timeout'); }, 2000);
              function stop() { clearTimeout(timer); window.removeEventListener('message', listen); }
              function listen(event) {
                if (event.source !== target) return;
                if (targetOrigin !== '*' && event.origin !== targetOrigin) return;
                var data = event.data;
                if (typeof data === 'string') { try { data = JSON.parse(data); } catch (e) { return; } }
                if (!data || data.message_id !== id || data.subject !== subject + '.response') return;
                stop();
                if (data.error) { reject('refused'); } else { resolve(data); }
              }
              window.addEventListener('message', listen);
              var message = { subject: subject, message_id: id };
              for (var name in fields) { message[name] = fields[name]; }
              try { target.postMessage(message, targetOrigin); } catch (e) { stop(); reject('unreachable'); }
            });
          }
          function capabilities() {
            return new Promise(function (resolve, reject) {
              var failed = 0;
              ['lti.capabilities', 'org.imsglobal.lti.capabilities'].forEach(function (subject) {
                ask(window.parent, '*', subject, {}).then(resolve, function () { if (++failed === 2) { reject('no_capabilities'); } });
              });
            });
          }
          function storageMessage(answer, name) {
            var list = Array.isArray(answer.supported_messages) ? answer.supported_messages : [];
            for (var i = 0; i < list.length; i++) {
              var subject = list[i] && list[i].subject;
              if (subject !== 'lti.' + name && subject !== 'org.imsglobal.lti.' + name) continue;
              var frameName = typeof list[i].frame === 'string' && list[i].frame ? list[i].frame : d.frame;
              var frame = null;
              if (frameName === '_parent') {
                frame = window.parent;
              } else if (/^(?![0-9]+$)[A-Za-z0-9_-]{1,64}$/.test(frameName) && windowProperties.indexOf(frameName) < 0) {
                frame = window.parent.frames[frameName];
              }
              if (frame) return { subject: subject, frame: frame };
            }
            throw 'unsupported';
          }
          if (d.mode === 'login') {
            var go = function () { window.location.replace(d.auth); };
            if (!inFrame) { go(); return; }
            var offerNewWindow = function () {
              document.getElementById('connecting').hidden = true;
              document.getElementById('new-window').hidden = false;
            };
            fetch(d.check, { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                             body: 'state=' + encodeURIComponent(d.state) })
              .then(function (r) { return r.ok ? r.json() : {}; })
              .then(function (answer) { return answer.cookie === true; }, function () { return false; })
              .then(function (cookie) {
                if (cookie) { go(); return; }
                capabilities()
                  .then(function (answer) {
                    var put = storageMessage(answer, 'put_data');
                    return ask(put.frame, d.origin, put.subject, { key: d.key, value: d.secret });
                  })
                  .then(go, offerNewWindow);
              });
          } else {
            var form = document.getElementById('relay');
            var send = function (name, value) {
              var field = form.elements[name];
              field.disabled = false;
              field.value = value;
              form.submit();
            };
            if (!inFrame) { send('lti_storage_error', 'top_level'); return; }
            capabilities()
              .then(function (answer) {
                var get = storageMessage(answer, 'get_data');
                return ask(get.frame, d.origin, get.subject, { key: d.key });
              })
              .then(function (answer) {
                if (typeof answer.value !== 'string' || !answer.value) throw 'empty';
                send('lti_storage_secret', answer.value);
              })
              .catch(function (reason) { send('lti_storage_error', typeof reason === 'string' ? reason : 'error'); });
          }
        })();
        """
}
