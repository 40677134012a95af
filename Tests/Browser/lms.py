"""A small LMS for the browser tests: a Canvas-like course page that shows the gateway in an iframe,
the platform side of LTI Platform Storage, an OIDC authorization endpoint that signs id_tokens, and a
deep-linking return endpoint that verifies the gateway's signed response.

The LMS listens on 127.0.0.1 but the browser reaches it as ``http://localhost:PORT``: a different site
from the gateway's ``http://127.0.0.1:PORT``, so the gateway's frame is a third-party frame.

It listens on three ports, three origins of the same host (cookies are per host, so the LMS's sign-in
cookie reaches all of them):

* ``origin`` (main): the course page, and the authorization endpoint and forwarding frame of the platform
  registered with ``CLIENT_ID``;
* ``cloud_origin``: the authorization endpoint and forwarding frame of the platform registered with
  ``CLOUD_CLIENT_ID``, while its course page stays on ``origin`` -- the layout of Canvas cloud, whose course
  page is on the institution's domain (``school.instructure.com``) and its auth endpoint and
  ``post_message_forwarding`` frame on ``sso.canvaslms.com``;
* ``foreign_origin``: a page of somebody else (``/evil``) that posts a form to the gateway.
"""

from __future__ import annotations

import base64
import html
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLIENT_ID = "browser-tests"
#: The client id of the platform whose auth endpoint and storage frame are on ``TestLMS.cloud_origin``.
CLOUD_CLIENT_ID = "browser-tests-cloud"
DEPLOYMENT_ID = "d1"
LAB_ID = "1001"
#: The title of the LMS link to each sandbox lab (the gateway's pages name the lab a launch starts by it).
LINK_TITLES = {"1001": "Networking lab", "1002": "Routing lab", "1003": "Kubernetes lab"}
#: A launch's ``lti_message_hint`` word choosing its link's lab: ``lab:1002``; ``lab:none`` is a link without labid.
LAB_HINT = "lab:"
#: The course's page a launch's ``launch_presentation.return_url`` names (the gateway's "Back to your course").
RETURN_PATH = "/course-return"
DEEP_LINK_DATA = "opaque-123"
STORAGE_FRAME = "post_message_forwarding"
SIGN_IN_COOKIE = "lms_user"

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LTI_DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"

# Scenarios of the course page: whether the login announces storage, and whether anybody answers.
#   storage, deeplink    course page and forwarder on `origin`, both answer
#   silent               the login announces storage, nobody answers
#   cloud                the Canvas-cloud layout: the course page on `origin` answers lti.capabilities, the
#                        forwarder on `cloud_origin` answers put and get
#   cloud-impostor-put   cloud layout; the forwarder does not answer lti.put_data but hands it to the course
#                        page, which answers it from `origin` (another window, another origin)
#   cloud-impostor-get   cloud layout; the forwarder answers put, but on lti.get_data the storage frame goes to
#                        a page of `origin` that answers it (the window asked, another origin)
#   hostile-frame        lti.capabilities names the frame `top` for put and get
#   hostile-target       the login's lti_storage_target is `opener`
#   plain                no storage announced
#   toplevel             the link opens the gateway as the whole page
CLOUD_SCENARIOS = {"cloud", "cloud-impostor-put", "cloud-impostor-get"}
STORAGE_SCENARIOS = {"storage", "silent", "deeplink", "hostile-frame"} | CLOUD_SCENARIOS
SCENARIOS = STORAGE_SCENARIOS | {"plain", "toplevel", "hostile-target"}
#: What an impostor answers lti.get_data with (and lti.put_data, as its value).
IMPOSTOR_VALUE = "not-the-secret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_to_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def b64url_to_int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


@dataclass
class DeepLinkResult:
    """What the LMS found in a deep-linking response posted to its return URL."""

    verified: bool
    problem: str | None
    items: list[dict[str, Any]] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)


class TestLMS:
    """The test platform. Start it with :meth:`start`, stop it with :meth:`stop`."""

    __test__ = False  # not a test class

    def __init__(self, gateway_port: int, log_path: str) -> None:
        self.gateway_origin = f"http://127.0.0.1:{gateway_port}"
        self.launch_url = f"{self.gateway_origin}/lti/launch"
        self.deep_link_url = f"{self.gateway_origin}/lti/deep-link"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "lms-" + uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._log = open(log_path, "a", encoding="utf-8")
        self.auth_requests: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.deep_link_results: list[DeepLinkResult] = []
        self._foreign_posts: dict[str, dict[str, str]] = {}
        self._servers: dict[str, ThreadingHTTPServer] = {}

    # ----------------------------------------------------------------- lifecycle

    ROLES = ("main", "cloud", "foreign")

    def start(self) -> None:
        lms = self

        class Handler(_Handler):
            platform = lms

        for role in self.ROLES:
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            server.lms_role = role  # type: ignore[attr-defined]
            self._servers[role] = server
            threading.Thread(target=server.serve_forever, name=f"test-lms-{role}", daemon=True).start()

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self._log.close()

    def port_of(self, role: str) -> int:
        return self._servers[role].server_address[1]

    def origin_of(self, role: str) -> str:
        return f"http://localhost:{self.port_of(role)}"

    @property
    def port(self) -> int:
        return self.port_of("main")

    @property
    def origin(self) -> str:
        """The course page's origin (and the auth endpoint's of the platform registered with ``CLIENT_ID``)."""
        return self.origin_of("main")

    @property
    def cloud_origin(self) -> str:
        """The auth endpoint's and storage frame's origin of the platform registered with ``CLOUD_CLIENT_ID``."""
        return self.origin_of("cloud")

    @property
    def foreign_origin(self) -> str:
        """Somebody else's site."""
        return self.origin_of("foreign")

    @property
    def issuer(self) -> str:
        return self.origin

    @staticmethod
    def client_id_for(scenario: str) -> str:
        return CLOUD_CLIENT_ID if scenario in CLOUD_SCENARIOS else CLIENT_ID

    def auth_origin_for(self, scenario: str) -> str:
        """Where the platform of ``scenario`` has its auth endpoint (and storage frame)."""
        return self.cloud_origin if scenario in CLOUD_SCENARIOS else self.origin

    # ----------------------------------------------------------------- URLs

    def course_url(self, scenario: str, user: str, pause: bool = False) -> str:
        query = {"scenario": scenario, "user": user}
        if pause:
            query["pause"] = "1"
        return f"{self.origin}/course?{urllib.parse.urlencode(query)}"

    def login_url(self, user: str, storage_target: str | None = None, message_hint: str | None = None,
                  client_id: str = CLIENT_ID) -> str:
        """The gateway's OIDC login URL as this platform builds it for a link."""
        query = {
            "iss": self.issuer,
            "login_hint": user,
            "target_link_uri": self.launch_url,
            "client_id": client_id,
            "lti_deployment_id": DEPLOYMENT_ID,
        }
        if message_hint:
            query["lti_message_hint"] = message_hint
        if storage_target:
            query["lti_storage_target"] = storage_target
        return f"{self.gateway_origin}/lti/login?{urllib.parse.urlencode(query)}"

    def foreign_post_url(self, fields: dict[str, str]) -> str:
        """The URL of a page on ``foreign_origin`` that posts ``fields`` to the gateway's launch at once."""
        token = uuid.uuid4().hex
        with self._lock:
            self._foreign_posts[token] = dict(fields)
        return f"{self.foreign_origin}/evil?case={token}"

    # ----------------------------------------------------------------- records

    def log(self, line: str) -> None:
        with self._lock:
            self._log.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self._log.flush()

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
        self.log("ERROR " + message)

    def take_errors(self) -> list[str]:
        with self._lock:
            errors, self.errors = self.errors, []
        return errors

    # ----------------------------------------------------------------- tokens

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                          "n": int_to_b64url(numbers.n), "e": int_to_b64url(numbers.e)}]}

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    @staticmethod
    def lab_hint(lab: str | None) -> str:
        """The ``lti_message_hint`` word for a launch of the link to ``lab`` (``None``: a link without labid)."""
        return LAB_HINT + (lab if lab is not None else "none")

    @property
    def return_url(self) -> str:
        """``launch_presentation.return_url`` of the resource-link launches."""
        return self.origin + RETURN_PATH

    def id_token(self, user: str, nonce: str, message_hint: str, client_id: str = CLIENT_ID) -> str:
        now = int(time.time())
        hints = message_hint.split()
        # The link's lab: LAB_ID unless the hint names another (or none: a link without labid).
        lab = next((word[len(LAB_HINT):] for word in hints if word.startswith(LAB_HINT)), LAB_ID)
        custom = {} if lab == "none" else {"labid": lab}
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "sub": user,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": f"Learner {user}",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": DEPLOYMENT_ID,
            LTI + "context": {"id": "course-101", "title": "Networking 101"},
            LTI + "custom": custom,
        }
        if "deeplink" in hints:
            claims.update({
                LTI + "message_type": "LtiDeepLinkingRequest",
                LTI + "roles": [INSTRUCTOR_ROLE],
                LTI + "target_link_uri": self.deep_link_url,
                LTI_DL + "deep_linking_settings": {
                    "deep_link_return_url": f"{self.origin}/deep-link-return",
                    "accept_types": ["ltiResourceLink"],
                    "accept_presentation_document_targets": ["iframe", "window"],
                    "accept_multiple": True,
                    "data": DEEP_LINK_DATA,
                },
            })
        else:
            claims.update({
                LTI + "message_type": "LtiResourceLinkRequest",
                LTI + "roles": [LEARNER_ROLE],
                LTI + "target_link_uri": self.launch_url,
                LTI + "resource_link": ({"id": "link-networking-lab", "title": "Networking lab"} if lab == LAB_ID
                                        else {"id": f"link-lab-{lab}", "title": LINK_TITLES.get(lab, "Lab without labid")}),
                LTI + "launch_presentation": {"document_target": "iframe", "return_url": self.return_url},
            })
        return self.sign(claims)

    def verify_deep_link_response(self, jwt: str) -> DeepLinkResult:
        """Verifies the gateway's deep-linking response against the gateway's published key set."""
        try:
            header_part, claims_part, signature_part = jwt.split(".")
            header = json.loads(b64url_decode(header_part))
            claims = json.loads(b64url_decode(claims_part))
        except (ValueError, json.JSONDecodeError) as error:
            return DeepLinkResult(False, f"not a compact JWS: {error}")
        if header.get("alg") != "RS256" or not header.get("kid"):
            return DeepLinkResult(False, f"bad header {header}", claims=claims)
        with urllib.request.urlopen(f"{self.gateway_origin}/.well-known/jwks.json", timeout=10) as response:
            key_set = json.load(response)
        keys = [k for k in key_set.get("keys", []) if k.get("kid") == header["kid"]]
        if not keys:
            return DeepLinkResult(False, f"kid {header['kid']} not in the gateway's key set", claims=claims)
        public_key = rsa.RSAPublicNumbers(b64url_to_int(keys[0]["e"]), b64url_to_int(keys[0]["n"])).public_key()
        try:
            public_key.verify(b64url_decode(signature_part), f"{header_part}.{claims_part}".encode("ascii"),
                              padding.PKCS1v15(), hashes.SHA256())
        except Exception as error:  # cryptography raises InvalidSignature
            return DeepLinkResult(False, f"signature does not verify: {error!r}", claims=claims)
        problems = []
        audience = claims.get("aud")
        if audience != self.issuer and not (isinstance(audience, list) and self.issuer in audience):
            problems.append(f"aud {audience!r}")
        if claims.get("iss") != CLIENT_ID:
            problems.append(f"iss {claims.get('iss')!r}")
        if claims.get(LTI + "message_type") != "LtiDeepLinkingResponse":
            problems.append(f"message_type {claims.get(LTI + 'message_type')!r}")
        if claims.get(LTI + "deployment_id") != DEPLOYMENT_ID:
            problems.append(f"deployment_id {claims.get(LTI + 'deployment_id')!r}")
        if claims.get(LTI_DL + "data") != DEEP_LINK_DATA:
            problems.append(f"data {claims.get(LTI_DL + 'data')!r}")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time():
            problems.append(f"exp {claims.get('exp')!r}")
        items = claims.get(LTI_DL + "content_items")
        if not isinstance(items, list):
            problems.append("content_items missing")
            items = []
        return DeepLinkResult(True, "; ".join(problems) or None, items=items, claims=claims)

    # ----------------------------------------------------------------- pages

    def course_page(self, scenario: str, user: str, pause: bool) -> str:
        title = "Networking 101"
        if scenario == "toplevel":
            link = self.login_url(user, storage_target="_parent")
            tool = (f'<p>This lab opens in a new window.</p>'
                    f'<p><a id="open-tool" href="{html.escape(link)}">Open the networking lab</a></p>')
        else:
            hints = ["deeplink"] if scenario == "deeplink" else []
            if pause:
                hints.append("pause")
            target = STORAGE_FRAME if scenario in STORAGE_SCENARIOS else None
            if scenario == "hostile-target":
                target = "opener"
            src = self.login_url(user, storage_target=target, message_hint=" ".join(hints) or None,
                                 client_id=self.client_id_for(scenario))
            forwarder = f"{self.auth_origin_for(scenario)}/forwarder?scenario={scenario}"
            # Like Canvas, the page's forwarding frame is there before the tool's frame starts loading: the
            # tool's src is set once the forwarder has loaded.
            tool = (f'<iframe name="{STORAGE_FRAME}" src="{html.escape(forwarder)}" '
                    f'style="display:none" title="messages" onload="startTool()"></iframe>\n'
                    f'<iframe id="tool" name="tool" data-src="{html.escape(src)}" width="900" height="700" '
                    f'allow="clipboard-write" title="Networking lab" '
                    f'onload="if (this.getAttribute(\'src\')) window.__toolLoads.push(Date.now())"></iframe>')
        return COURSE_PAGE.format(
            title=title, user=html.escape(user), scenario=html.escape(scenario), tool=tool,
            gateway_origin=json.dumps(self.gateway_origin), scenario_json=json.dumps(scenario),
            frame=json.dumps(STORAGE_FRAME), cloud_origin=json.dumps(self.cloud_origin),
            bogus=json.dumps(IMPOSTOR_VALUE))

    def forwarder_page(self, scenario: str) -> str:
        return FORWARDER_PAGE.format(gateway_origin=json.dumps(self.gateway_origin), scenario_json=json.dumps(scenario),
                                     course_origin=json.dumps(self.origin), bogus=json.dumps(IMPOSTOR_VALUE))

    def foreign_page(self, token: str) -> str | None:
        with self._lock:
            fields = self._foreign_posts.get(token)
        if fields is None:
            return None
        inputs = "\n".join(f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                           for name, value in fields.items())
        return FOREIGN_PAGE.format(action=html.escape(self.launch_url), inputs=inputs)


COURSE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: Modules</title>
<style>
 body {{ margin: 0; font-family: 'Lato', 'Helvetica Neue', Arial, sans-serif; color: #2d3b45; }}
 header {{ background: #394b58; color: #fff; padding: 10px 20px; font-size: 18px; }}
 .wrap {{ display: flex; }}
 nav {{ width: 180px; padding: 16px; border-right: 1px solid #c7cdd1; min-height: 720px; }}
 nav a {{ display: block; color: #0374b5; text-decoration: none; padding: 4px 0; }}
 main {{ padding: 16px 24px; }}
 h1 {{ font-size: 22px; font-weight: normal; margin: 0 0 12px; }}
 iframe#tool {{ border: 1px solid #c7cdd1; }}
</style>
<script>
 window.__toolLoads = window.__toolLoads || [];
 window.__lmsMessages = [];
 window.__lmsStore = {{}};
 function startTool() {{
   const tool = document.getElementById('tool');
   if (tool && !tool.getAttribute('src')) tool.setAttribute('src', tool.dataset.src);
 }}
 (function () {{
   const gatewayOrigin = {gateway_origin};
   const cloudOrigin = {cloud_origin};
   const scenario = {scenario_json};
   window.addEventListener('message', function (event) {{
     const data = event.data;
     if (!data || typeof data !== 'object' || typeof data.subject !== 'string') return;
     const tool = document.getElementById('tool');
     const fromTool = !!tool && event.source === tool.contentWindow;
     const forwarder = document.querySelector('iframe[name=' + {frame} + ']');
     if (data.subject === 'browser-tests.relay') {{
       // cloud-impostor-put: the forwarder handed over a storage request; answer it from this page (not the
       // storage frame, not the storage origin), with the request's own message_id.
       if (scenario !== 'cloud-impostor-put' || !forwarder || event.source !== forwarder.contentWindow
           || event.origin !== cloudOrigin || !tool) return;
       const asked = data.message;
       window.__lmsMessages.push({{ at: 'course-sent', subject: asked.subject + '.response', origin: location.origin,
                                    fromTool: false, key: String(asked.key) }});
       tool.contentWindow.postMessage({{ subject: asked.subject + '.response', message_id: asked.message_id,
                                         key: asked.key, value: {bogus} }}, gatewayOrigin);
       return;
     }}
     window.__lmsMessages.push({{ at: 'course', subject: data.subject, origin: event.origin, fromTool: fromTool,
                                  key: data.key === undefined ? null : String(data.key) }});
     if (scenario === 'silent') return;
     if (data.subject !== 'lti.capabilities') return;
     if (event.origin !== gatewayOrigin || !fromTool) return;
     const storageFrame = scenario === 'hostile-frame' ? 'top' : {frame};
     event.source.postMessage({{
       subject: 'lti.capabilities.response',
       message_id: data.message_id,
       supported_messages: [
         {{ subject: 'lti.capabilities' }},
         {{ subject: 'lti.put_data', frame: storageFrame }},
         {{ subject: 'lti.get_data', frame: storageFrame }}
       ]
     }}, event.origin);
   }});
 }})();
</script>
</head>
<body>
<header>Test LMS &middot; {title} &middot; signed in as {user}</header>
<div class="wrap">
<nav><a href="#">Home</a><a href="#">Modules</a><a href="#">Assignments</a><a href="#">Grades</a></nav>
<main><h1>Module 1: Networking lab ({scenario})</h1>
{tool}
</main></div>
</body></html>
"""

FORWARDER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>post_message_forwarding</title></head><body>
<script>
 (function () {{
   const gatewayOrigin = {gateway_origin};
   const courseOrigin = {course_origin};
   const scenario = {scenario_json};
   // Records and the store live in the course page when it is of this frame's origin, else in this frame
   // (the cloud layout; the tests read them from here).
   let home = window;
   try {{ if (window.top.__lmsMessages) home = window.top; }} catch (e) {{ home = window; }}
   home.__lmsMessages = home.__lmsMessages || [];
   home.__lmsStore = home.__lmsStore || {{}};
   if (scenario === 'impostor') {{
     // The storage frame, moved to the course page's origin, answers the request it was handed.
     const asked = JSON.parse(decodeURIComponent(location.hash.slice(1)));
     home.__lmsMessages.push({{ at: 'impostor-sent', subject: asked.subject + '.response', origin: location.origin,
                                fromTool: false, key: String(asked.key) }});
     window.parent.document.getElementById('tool').contentWindow.postMessage({{
       subject: asked.subject + '.response', message_id: asked.message_id, key: asked.key, value: {bogus}
     }}, gatewayOrigin);
     return;
   }}
   window.addEventListener('message', function (event) {{
     const data = event.data;
     if (!data || typeof data !== 'object' || typeof data.subject !== 'string') return;
     home.__lmsMessages.push({{ at: 'forwarder', subject: data.subject, origin: event.origin, fromTool: false,
                                key: data.key === undefined ? null : String(data.key) }});
     if (scenario === 'silent') return;
     if (event.origin !== gatewayOrigin) return;
     const asked = {{ subject: data.subject, message_id: data.message_id, key: data.key }};
     if (scenario === 'cloud-impostor-put' && data.subject === 'lti.put_data') {{
       window.parent.postMessage({{ subject: 'browser-tests.relay', message: asked }}, courseOrigin);
       return;
     }}
     if (scenario === 'cloud-impostor-get' && data.subject === 'lti.get_data') {{
       location.replace(courseOrigin + '/forwarder?scenario=impostor#' + encodeURIComponent(JSON.stringify(asked)));
       return;
     }}
     const reply = function (message) {{ event.source.postMessage(message, event.origin); }};
     const slot = event.origin + ' ' + data.key;
     if (data.subject === 'lti.put_data') {{
       if (typeof data.key !== 'string' || typeof data.value !== 'string' || data.key === '') {{
         reply({{ subject: 'lti.put_data.response', message_id: data.message_id, key: data.key,
                  error: {{ code: 'bad_request', message: 'key and value must be strings' }} }});
         return;
       }}
       home.__lmsStore[slot] = data.value;
       reply({{ subject: 'lti.put_data.response', message_id: data.message_id, key: data.key, value: data.value }});
     }} else if (data.subject === 'lti.get_data') {{
       if (!Object.prototype.hasOwnProperty.call(home.__lmsStore, slot)) {{
         reply({{ subject: 'lti.get_data.response', message_id: data.message_id, key: data.key,
                  error: {{ code: 'bad_request', message: 'no value stored under this key' }} }});
         return;
       }}
       reply({{ subject: 'lti.get_data.response', message_id: data.message_id, key: data.key,
                value: home.__lmsStore[slot] }});
     }}
   }});
 }})();
</script>
</body></html>
"""

AUTOPOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test LMS: signing you in</title>
<style>body {{ font-family: Arial, sans-serif; padding: 24px; color: #2d3b45; }}</style></head>
<body>
<h1>Test LMS</h1>
<p>{message}</p>
<form id="launch" method="post" action="{action}">
<input type="hidden" name="id_token" value="{id_token}">
<input type="hidden" name="state" value="{state}">
<button type="submit" id="continue">Continue</button>
</form>
{script}
</body></html>
"""

FOREIGN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Free prizes</title>
<style>body {{ font-family: Arial, sans-serif; padding: 24px; color: #2d3b45; }}</style></head>
<body>
<h1>Somebody else's page</h1>
<p>This page posts a launch it obtained elsewhere to the activity, in this browser.</p>
<form id="launch" method="post" action="{action}">
{inputs}
<button type="submit">Continue</button>
</form>
<script>document.getElementById('launch').submit();</script>
</body></html>
"""

COURSE_RETURN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test LMS: Networking 101</title>
<style>body {{ font-family: Arial, sans-serif; padding: 24px; color: #2d3b45; }}</style></head>
<body><h1 id="course-return">Networking 101: back in the course</h1></body></html>
"""

RETURN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test LMS: items added</title>
<style>body {{ font-family: Arial, sans-serif; padding: 24px; color: #2d3b45; }}</style></head>
<body>
<h1 id="result">Deep linking response received: {count} item(s)</h1>
<p id="verification">{verification}</p>
<ul id="titles">{titles}</ul>
</body></html>
"""

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test LMS: error</title></head>
<body><h1>Test LMS refused the request</h1><p id="problem">{problem}</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    platform: TestLMS
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        self.platform.log(f"[{self.role}] {self.command} {self.path.split('?')[0]} {format % args}")

    # ------------------------------------------------------------- plumbing

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, problem: str) -> None:
        self.platform.error(f"{self.command} {self.path.split('?')[0]}: {problem}")
        self._send(400, ERROR_PAGE.format(problem=html.escape(problem)))

    def _query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query,
                                                          keep_blank_values=True).items()}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        return {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def _signed_in_user(self) -> str | None:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except Exception:
            return None
        morsel = cookie.get(SIGN_IN_COOKIE)
        return morsel.value if morsel else None

    # ------------------------------------------------------------- routes

    @property
    def role(self) -> str:
        """Which of the LMS's origins this request came to: ``main``, ``cloud`` or ``foreign``."""
        return getattr(self.server, "lms_role", "main")

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        path = urllib.parse.urlsplit(self.path).path
        role = self.role
        if role == "foreign":
            page = self.platform.foreign_page(self._query().get("case", "")) if path == "/evil" else None
            if page is None:
                self._send(404, "not found", "text/plain")
            else:
                self._send(200, page)
        elif path == "/jwks":
            self._send(200, json.dumps(self.platform.jwks()), "application/json")
        elif path == "/course" and role == "main":
            self._course()
        elif path == "/forwarder":
            self._send(200, self.platform.forwarder_page(self._query().get("scenario", "storage")))
        elif path == "/auth":
            self._auth(self._query())
        elif path == RETURN_PATH and role == "main":
            self._send(200, COURSE_RETURN_PAGE.format())
        elif path == "/blank" and role == "main":
            self._send(200, "<!doctype html><title>Test LMS</title><p>Test LMS</p>")
        else:
            self._send(404, "not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if self.role == "foreign":
            self._send(404, "not found", "text/plain")
        elif path == "/auth":
            self._auth(self._form())
        elif path == "/deep-link-return" and self.role == "main":
            self._deep_link_return(self._form())
        else:
            self._send(404, "not found", "text/plain")

    def _course(self) -> None:
        query = self._query()
        scenario = query.get("scenario", "")
        user = query.get("user", "")
        if scenario not in SCENARIOS or not user:
            self._refuse(f"course: unknown scenario {scenario!r} or no user")
            return
        page = self.platform.course_page(scenario, user, pause=query.get("pause") == "1")
        # The LMS's own sign-in: first-party to the LMS page, also on the LMS's auth endpoint inside the frame.
        cookie = f"{SIGN_IN_COOKIE}={user}; Path=/; HttpOnly; Secure; SameSite=None"
        self._send(200, page, headers={"Set-Cookie": cookie})

    def _auth(self, params: dict[str, str]) -> None:
        """The OIDC authorization endpoint (LTI 1.3 launch, step 2): checks the request, signs the id_token."""
        lms = self.platform
        record = dict(params)
        record["_method"] = self.command
        record["_cookie_user"] = self._signed_in_user() or ""
        record["_origin"] = lms.origin_of(self.role)
        with lms._lock:
            lms.auth_requests.append(record)
        # Each auth endpoint serves its own registration: CLIENT_ID on the main origin, CLOUD_CLIENT_ID on the
        # cloud origin.
        client_id = CLOUD_CLIENT_ID if self.role == "cloud" else CLIENT_ID
        expected = {"response_type": "id_token", "response_mode": "form_post", "scope": "openid",
                    "prompt": "none", "client_id": client_id, "redirect_uri": lms.launch_url}
        for name, value in expected.items():
            if params.get(name) != value:
                self._refuse(f"auth: {name} is {params.get(name)!r}, expected {value!r}")
                return
        for name in ("state", "nonce", "login_hint"):
            if not params.get(name):
                self._refuse(f"auth: {name} missing")
                return
        signed_in = self._signed_in_user()
        if signed_in is None:
            self._refuse("auth: nobody is signed in to the LMS (no sign-in cookie)")
            return
        if params["login_hint"] != signed_in:
            self._refuse(f"auth: login_hint {params['login_hint']!r} is not the signed-in user {signed_in!r}")
            return
        hint = params.get("lti_message_hint", "")
        token = lms.id_token(signed_in, params["nonce"], hint, client_id=client_id)
        pause = "pause" in hint.split()
        script = "" if pause else "<script>document.getElementById('launch').submit();</script>"
        message = ("Signed in. Press Continue to open the activity." if pause
                   else "Signing you in to the activity&hellip;")
        self._send(200, AUTOPOST_PAGE.format(
            action=html.escape(params["redirect_uri"]), id_token=html.escape(token),
            state=html.escape(params["state"]), script=script, message=message))

    def _deep_link_return(self, form: dict[str, str]) -> None:
        lms = self.platform
        jwt = form.get("JWT")
        if not jwt:
            self._refuse("deep-link-return: no JWT field")
            return
        try:
            result = lms.verify_deep_link_response(jwt)
        except Exception as error:  # the gateway's key set could not be read
            result = DeepLinkResult(False, f"verification failed: {error!r}")
        with lms._lock:
            lms.deep_link_results.append(result)
        if not result.verified or result.problem:
            lms.error(f"deep-link-return: {result.problem}")
        verification = ("Signature verified with the tool's key set." if result.verified and not result.problem
                        else f"Not accepted: {result.problem}")
        titles = "".join(f"<li>{html.escape(str(item.get('title', '(untitled)')))}</li>" for item in result.items)
        self._send(200, RETURN_PAGE.format(count=len(result.items), verification=html.escape(verification),
                                           titles=titles))
