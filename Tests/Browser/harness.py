"""Browser side of the tests: Chromium profiles with the cookie policies under test, and a ``Journey`` that
records what one learner's browser did (requests, responses, postMessages, screenshots)."""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from playwright.sync_api import BrowserContext, Frame, FrameLocator, Page, Playwright, Request, Response

from gateway import CHANNELS, GatewayProcess
from lms import STORAGE_FRAME, TestLMS

DEFAULT_TIMEOUT_MS = 15_000
LAB_TIMEOUT_MS = 20_000
FALLBACK_HEADING = "Open this activity in a new window"
FALLBACK_BUTTON = "Open in a new window"
#: A Playwright trace per browser (trace.zip: a filmstrip of every page shown, also the ones that go on by
#: themselves; `playwright show-trace trace.zip`). BROWSER_TEST_TRACE=0 turns it off.
TRACE = os.environ.get("BROWSER_TEST_TRACE", "1") != "0"


class CookiePolicy(enum.Enum):
    """How the browser treats the gateway's cookies inside the LMS page's iframe."""

    #: A fresh Chromium profile: third-party cookies blocked, partitioned (CHIPS) cookies kept.
    CHROMIUM_DEFAULT = "chromium-default"
    #: Like Safari: no gateway cookie at all inside the LMS page, partitioned or not (a site exception of
    #: Chromium's own cookie settings: cookies of the gateway's origin are blocked when the top-level page is
    #: the LMS). The gateway keeps its cookies as a top-level page (a new window).
    SAFARI_LIKE = "safari-like"
    #: Third-party cookies allowed (the profile's cookie controls off).
    ALLOWED = "third-party-allowed"


def profile_preferences(policy: CookiePolicy, gateway_origin: str, lms_origin: str) -> dict[str, Any]:
    """The ``Default/Preferences`` a new Chromium profile starts with for ``policy``."""
    if policy is CookiePolicy.SAFARI_LIKE:
        # Content setting pattern pair "primary,secondary": the cookie's origin, the top-level page's origin.
        # 2 = CONTENT_SETTING_BLOCK.
        return {"profile": {"content_settings": {"exceptions": {"cookies": {
            f"{gateway_origin},{lms_origin}": {"setting": 2}}}}}}
    if policy is CookiePolicy.ALLOWED:
        # cookie_controls_mode 0 = third-party cookies allowed.
        return {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    return {}


# Records every postMessage that reaches a window (any frame), and every call of a window's own postMessage
# by a script of the same origin (a top-level page posting to `window.parent`, which is itself, is seen even
# when the message is never delivered). Installed before any page script runs. For a received message it
# also names the window that sent it, as the receiver sees it: `parent`, `frame:NAME` (a frame of the
# parent window, or of this one, looked up by name as the gateway's page does), `self`, `top`, or `other`.
RECORDER_SCRIPT = """
(() => {
  if (window.__browserTestsRecorderInstalled) return;
  window.__browserTestsRecorderInstalled = true;
  const names = %s;
  const sourceOf = (source) => {
    try {
      if (source === null || source === undefined) return 'none';
      if (source === window) return 'self';
      if (window.parent !== window && source === window.parent) return 'parent';
      for (const name of names) {
        try { if (window.parent.frames[name] === source) return 'frame:' + name; } catch (e) {}
      }
      if (source === window.top) return 'top';
      return 'other';
    } catch (e) { return 'unknown'; }
  };
  const record = (kind, data, origin, source) => {
    const object = data && typeof data === 'object';
    const subject = object && typeof data.subject === 'string' ? data.subject : typeof data;
    const key = object && data.key !== undefined ? String(data.key) : null;
    const id = object && data.message_id !== undefined ? String(data.message_id) : null;
    try { window.__browserTestsRecord(kind, String(location.href), String(origin), subject, key, id, source); } catch (e) {}
  };
  window.addEventListener('message', (event) => record('received', event.data, event.origin, sourceOf(event.source)), true);
  const post = window.postMessage;
  window.postMessage = function (message, targetOrigin) {
    record('posted-to-window', message, targetOrigin, 'self');
    return post.apply(this, arguments);
  };
})();
""" % json.dumps([STORAGE_FRAME, "tool"])


@dataclass
class RecordedMessage:
    kind: str
    href: str
    origin: str
    subject: str
    key: str | None
    #: The message's ``message_id`` (not secret: a random id per request).
    message_id: str | None = None
    #: For a received message, the window that sent it (see ``RECORDER_SCRIPT``).
    source: str = ""


class Journey:
    """One browser (a fresh Chromium profile with one cookie policy) and everything it did."""

    def __init__(self, playwright: Playwright, chromium: str, policy: CookiePolicy, gateway: GatewayProcess,
                 lms: TestLMS, out_dir: Path, profile_dir: Path, context_options: dict[str, Any] | None = None
                 ) -> None:
        self.policy = policy
        self.gateway = gateway
        self.lms = lms
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._profile = profile_dir
        (self._profile / "Default").mkdir(parents=True)
        prefs = profile_preferences(policy, gateway.origin, lms.origin)
        (self._profile / "Default" / "Preferences").write_text(json.dumps(prefs), encoding="utf-8")
        # ``context_options``: more options of the browser (a phone's viewport, a time zone, no script…).
        options: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, **(context_options or {})}
        self.context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(self._profile), executable_path=chromium, headless=True,
            # The gateway's frame stays in the LMS page's process: the browser's cookie rules are the same,
            # and Playwright follows the frame's fast cross-site navigations reliably (it lost track of them
            # with out-of-process frames on a busy machine).
            args=["--disable-site-isolation-trials"], **options)
        if TRACE:
            self.context.tracing.start(screenshots=True, snapshots=False, title=out_dir.name)
        self.context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.context.set_default_navigation_timeout(LAB_TIMEOUT_MS)
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.messages: list[RecordedMessage] = []
        self._shots = 0
        self._watched: list[Page] = []
        self._log = open(out_dir / "requests.log", "a", encoding="utf-8")
        self._log.write(f"# cookie policy: {policy.value}\n")
        self.context.expose_binding("__browserTestsRecord", self._record_message)
        self.context.add_init_script(RECORDER_SCRIPT)
        self.context.on("request", self._on_request)
        self.context.on("response", self._on_response)
        self._closed = False
        self.context.on("page", self._watch)
        self.page: Page = self.context.pages[0] if self.context.pages else self.context.new_page()
        if self.page not in self._watched:
            self._watch(self.page)

    # ------------------------------------------------------------- recording

    def _record_message(self, binding_source: dict[str, Any], kind: str, href: str, origin: str, subject: str,
                        key: str | None, message_id: str | None = None, source: str = "") -> None:
        self.messages.append(RecordedMessage(kind, href, origin, subject, key, message_id, source))
        self._write(f"postMessage {kind} at {_short(href)} origin={origin} from={source} subject={subject}")

    def _on_request(self, request: Request) -> None:
        self.requests.append(request)

    def _on_response(self, response: Response) -> None:
        self.responses.append(response)
        request = response.request
        request_id = response.headers.get("x-request-id", "-")
        self._write(f"{request.method} {_short(request.url)} -> {response.status} "
                    f"[{request.resource_type}] x-request-id={request_id}")

    def _watch(self, page: Page) -> None:
        self._watched.append(page)
        page.on("framenavigated", lambda frame: self._on_navigated(page, frame))

    def _on_navigated(self, page: Page, frame: Frame) -> None:
        """Logs every page the learner sees (the window's and its frames', not the LMS's hidden forwarder).
        Only records: a handler that waited on the browser here would hold up the test's own waits."""
        if frame != page.main_frame and (frame.parent_frame != page.main_frame or "/forwarder" in frame.url):
            return
        where = "window" if frame == page.main_frame else "frame"
        self._write(f"{where} shows {_short(frame.url)}")

    def _write(self, line: str) -> None:
        if not self._log.closed:
            self._log.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self._log.flush()

    def note(self, line: str) -> None:
        """Adds a line to this journey's log (``requests.log``)."""
        self._write("# " + line)

    # ------------------------------------------------------------- pages and frames

    def shot(self, label: str, page: Page | None = None, timeout_ms: float = DEFAULT_TIMEOUT_MS) -> Path:
        """A full-page screenshot of what the learner sees now."""
        self._shots += 1
        path = self.out_dir / f"{self._shots:02d}-{label}.png"
        (page or self.page).screenshot(path=str(path), full_page=True, timeout=timeout_ms)
        return path

    def shot_all(self, label: str) -> None:
        """Screenshots of every open window (after a failure); problems are only noted."""
        for index, page in enumerate(self.context.pages):
            try:
                self.shot(f"{label}-window{index + 1}", page)
            except Exception as error:  # a crashed or closing page
                self.note(f"screenshot of window {index + 1} failed: {error}")

    def tool(self) -> Frame:
        """The gateway's iframe (``id="tool"``) of the course page."""
        frame = self.page.wait_for_selector("iframe#tool", state="attached").content_frame()
        assert frame is not None, "the course page's tool iframe has no document"
        return frame

    def tool_view(self) -> FrameLocator:
        return self.page.frame_locator("#tool")

    def lab_url(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.gateway.origin)}/sandbox/skillable/lab/\d+")

    def lms_messages(self) -> list[dict[str, Any]]:
        """The storage messages the course page and its forwarding frame received (and, ``at`` ending in
        ``-sent``, the answers an impostor sent). A forwarding frame of another origin than the course page
        keeps its own records: they follow the course page's."""
        messages = list(self.page.evaluate("window.__lmsMessages || []"))
        for frame in self.page.frames:
            if frame.parent_frame == self.page.main_frame and frame.url.startswith(self.lms.cloud_origin + "/"):
                messages.extend(frame.evaluate("window.__lmsMessages || []"))
        return messages

    def gateway_received(self, subject: str) -> list[RecordedMessage]:
        """The messages with ``subject`` that reached one of the gateway's pages."""
        return [m for m in self.messages if m.kind == "received" and m.subject == subject
                and m.href.startswith(self.gateway.origin + "/")]

    # ------------------------------------------------------------- requests and cookies

    def gateway_requests(self, path: str, method: str | None = None) -> list[Request]:
        prefix = self.gateway.origin + path
        return [r for r in self.requests
                if (r.url == prefix or r.url.startswith(prefix + "?")) and (method is None or r.method == method)]

    def gateway_responses(self, path: str, method: str | None = None) -> list[Response]:
        prefix = self.gateway.origin + path
        return [r for r in self.responses
                if (r.url == prefix or r.url.startswith(prefix + "?"))
                and (method is None or r.request.method == method)]

    @staticmethod
    def set_cookie_headers(response: Response) -> list[str]:
        return [h["value"] for h in response.headers_array() if h["name"].lower() == "set-cookie"]

    @staticmethod
    def sent_cookies(request: Request) -> list[tuple[str, str]]:
        """The (name, value) pairs of the Cookie header the browser really sent."""
        header = request.all_headers().get("cookie", "")
        pairs = []
        for part in header.split(";"):
            if "=" in part:
                name, value = part.strip().split("=", 1)
                pairs.append((name, value))
        return pairs

    def gateway_cookies(self) -> list[dict[str, Any]]:
        """Cookies the browser keeps for the gateway's host (partitioned ones carry ``partitionKey``)."""
        return [c for c in self.context.cookies() if c.get("domain", "").lstrip(".") == "127.0.0.1"]

    def assert_request_ids(self) -> None:
        """Every gateway response this browser received carries ``X-Request-Id``."""
        missing = [f"{r.request.method} {_short(r.url)} ({r.status})" for r in self.responses
                   if r.url.startswith(self.gateway.origin + "/") and not r.headers.get("x-request-id")]
        assert not missing, f"gateway responses without X-Request-Id: {missing}"

    def _write_filmstrip(self, trace: Path) -> None:
        """Copies the trace's screencast frames to ``filmstrip/``: every page shown, also the ones that went on
        by themselves before a screenshot could be taken (viewport only, each change once)."""
        frame_name = re.compile(r"(page@[0-9a-f]+)-(\d+)\.jpe?g$")
        with zipfile.ZipFile(trace) as archive:
            frames = sorted((int(m.group(2)), m.group(1), name) for name in archive.namelist()
                            if (m := frame_name.search(name)))
            if not frames:
                return
            out = self.out_dir / "filmstrip"
            out.mkdir(exist_ok=True)
            windows: dict[str, int] = {}
            last: dict[str, bytes] = {}
            start = frames[0][0]
            written = 0
            for stamp, page_id, name in frames:
                data = archive.read(name)
                if last.get(page_id) == data:
                    continue
                last[page_id] = data
                written += 1
                window = windows.setdefault(page_id, len(windows) + 1)
                (out / f"{written:03d}-window{window}-{stamp - start:06d}ms.jpeg").write_bytes(data)

    def close(self) -> None:
        """Stops the trace (writing ``trace.zip`` and ``filmstrip/``) and closes the browser."""
        if self._closed:
            return
        self._closed = True
        try:
            if TRACE:
                try:
                    self.context.tracing.stop(path=str(self.out_dir / "trace.zip"))
                    self._write_filmstrip(self.out_dir / "trace.zip")
                except Exception as error:  # a browser that crashed has no trace to give
                    self.note(f"no trace: {error}")
            self.context.close()
        finally:
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)


@dataclass
class Stack:
    """The gateway and the test LMS registered with it."""

    gateway: GatewayProcess
    lms: TestLMS
    platform_id: str
    out_dir: Path
    #: The platform registered with ``lms.CLOUD_CLIENT_ID`` (auth endpoint on ``lms.cloud_origin``).
    cloud_platform_id: str = ""
    #: The stand-alone Skillable sandbox (``sandbox.SandboxProcess``) when the gateway uses one, else None (the
    #: sandbox inside ``serve``).
    sandbox: Any = None


class BindingCounter:
    """``lti_launch_binding_total`` before a scenario, to check which channel one launch used."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.before = gateway.binding_counts()

    def deltas(self) -> dict[str, float]:
        after = self.gateway.binding_counts()
        channels = set(CHANNELS) | set(after) | set(self.before)
        return {c: after.get(c, 0.0) - self.before.get(c, 0.0) for c in sorted(channels)}

    def assert_one(self, channel: str) -> None:
        deltas = self.deltas()
        expected = {c: (1.0 if c == channel else 0.0) for c in deltas}
        assert deltas == expected, (
            f"expected one launch bound by {channel!r}; lti_launch_binding_total moved by {deltas}")

    def assert_none(self) -> None:
        deltas = self.deltas()
        assert all(v == 0 for v in deltas.values()), (
            f"expected no bound launch; lti_launch_binding_total moved by {deltas}")


def wait_until(page: Page, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Checks ``condition`` until it returns something truthy, at most ``timeout_s`` seconds (the browser's
    events keep being delivered meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        page.wait_for_timeout(50)


def _short(url: str) -> str:
    """A URL for the log, without its query values (they carry states and nonces)."""
    base, _, query = url.partition("?")
    if not query:
        return base
    names = [part.split("=", 1)[0] for part in query.split("&")]
    return base + "?" + "&".join(f"{n}=…" for n in names)
