"""LTI Gateway launched inside an LMS page's iframe, in headless Chromium, under the cookie policies browsers
apply to third-party frames.

The LMS page is on ``http://localhost:LMS`` and the gateway on ``http://127.0.0.1:GW`` (two sites), so the
gateway's frame is a third-party frame. Three cookie policies (``harness.CookiePolicy``): Chromium's default
(third-party cookies blocked, partitioned ones kept), a Safari-like rule (no gateway cookie at all in the LMS
page), and third-party cookies allowed. Each test proves one way a launch is tied to the browser, and reads
``lti_launch_binding_total`` to check which channel the gateway used.

A second registration of the same LMS has its auth endpoint and storage frame on ``http://localhost:LMS2``
while the course page stays on ``http://localhost:LMS`` (the Canvas cloud layout), and a page of somebody
else's site is on ``http://localhost:OTHER`` (see ``lms.py``).
"""

from __future__ import annotations

import collections
import re
import urllib.parse

from playwright.sync_api import Page, Request, expect

from harness import (DEFAULT_TIMEOUT_MS, FALLBACK_BUTTON, FALLBACK_HEADING, LAB_TIMEOUT_MS, BindingCounter,
                     CookiePolicy, Journey, RecordedMessage, Stack, wait_until)
from lms import IMPOSTOR_VALUE, LAB_ID, STORAGE_FRAME

#: The gateway waits about 2 s for each storage answer; the fallback must show well before this.
FALLBACK_LIMIT_MS = 8_000


# --------------------------------------------------------------------------------------------- steps

def open_course(journey: Journey, scenario: str, learner: str, pause: bool = False) -> None:
    """The learner opens the course page, which shows the gateway in its iframe."""
    journey.page.goto(journey.lms.course_url(scenario, learner, pause), wait_until="domcontentloaded")


def stop_at_lms_sign_in(journey: Journey, scenario: str, learner: str) -> None:
    """Opens the course page with a link whose LMS sign-in waits for a click on Continue (so the browser's
    cookies can be inspected between the gateway's login and its launch)."""
    open_course(journey, scenario, learner, pause=True)
    expect(journey.tool_view().get_by_role("button", name="Continue")).to_be_visible()
    journey.shot("lms-sign-in-waiting")


def continue_sign_in(journey: Journey) -> None:
    journey.tool_view().get_by_role("button", name="Continue").click()


def expect_lab_in_frame(journey: Journey) -> None:
    """The tool iframe ends in the sandbox's lab page."""
    journey.tool().wait_for_url(journey.lab_url(), timeout=LAB_TIMEOUT_MS)
    journey.shot("lab-in-course")


def expect_fallback(journey: Journey, timeout_ms: float = DEFAULT_TIMEOUT_MS) -> None:
    """The "Open this activity in a new window" page (or section) shows, with its one button: the Storage
    Access button ("Allow and continue here") is gone."""
    view = journey.tool_view()
    expect(view.get_by_role("heading", name=FALLBACK_HEADING)).to_be_visible(timeout=timeout_ms)
    expect(view.get_by_role("button", name=FALLBACK_BUTTON)).to_be_visible()
    expect(view.get_by_role("button")).to_have_count(1)
    expect(view.get_by_text(re.compile("Allow and continue", re.IGNORECASE))).to_have_count(0)


def open_in_new_window(journey: Journey, auth_origin: str | None = None) -> Page:
    """Clicks the fallback page's button: a new top-level window posts to ``/lti/login/restart``, which
    sends it to the LMS's auth endpoint (at ``auth_origin``, default the course page's) with a new state; the
    window must land in the lab."""
    auth_origin = auth_origin or journey.lms.origin
    states_before = auth_states(journey, auth_origin)
    with journey.context.expect_page(timeout=DEFAULT_TIMEOUT_MS) as new_page:
        journey.tool_view().get_by_role("button", name=FALLBACK_BUTTON).click()
    window = new_page.value
    window.wait_for_url(journey.lab_url(), timeout=LAB_TIMEOUT_MS)
    journey.shot("new-window-lab", window)
    restarts = journey.gateway_responses("/lti/login/restart", "POST")
    assert [r.status for r in restarts] == [303], [r.status for r in restarts]
    assert restarts[0].frame.page == window, "the restart ran in the new window"
    location = restarts[0].headers.get("location", "")
    assert location.startswith(auth_origin + "/auth?"), f"restart went to {location!r}"
    new_states = auth_states(journey, auth_origin)[len(states_before):]
    assert len(new_states) == 1 and new_states[0] not in states_before, (states_before, new_states)
    return window


def auth_states(journey: Journey, auth_origin: str | None = None) -> list[str]:
    """The ``state`` of every GET the browser made to the LMS's auth endpoint (at ``auth_origin``, default the
    course page's origin), in order."""
    prefix = (auth_origin or journey.lms.origin) + "/auth?"
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(r.url).query).get("state", [""])[0]
            for r in journey.requests if r.url.startswith(prefix)]


def form_fields(post_data: str | None) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(post_data or "", keep_blank_values=True).items()}


StateCookie = collections.namedtuple("StateCookie", "name value partitioned")


def login_state_cookies(journey: Journey) -> list[StateCookie]:
    """The cookies the gateway's login set (from the raw response headers): a normal and a Partitioned one."""
    logins = journey.gateway_responses("/lti/login")
    assert logins, "no response from /lti/login"
    cookies = []
    for header in Journey.set_cookie_headers(logins[-1]):
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        flags = {a.strip().split("=", 1)[0].lower() for a in attributes.split(";")}
        cookies.append(StateCookie(name, value, "partitioned" in flags))
    assert len(cookies) == 2 and sorted(c.partitioned for c in cookies) == [False, True], (
        f"the login should set a normal and a Partitioned state cookie, it set: {cookies}")
    return cookies


def sent_state_cookies(request: Request, state_cookies: list[StateCookie]) -> collections.Counter:
    """The state cookies (name, value) a request really carried, counted (a name may come twice)."""
    names = {c.name for c in state_cookies}
    return collections.Counter(pair for pair in Journey.sent_cookies(request) if pair[0] in names)


def assert_no_cookie_in_frame(journey: Journey) -> None:
    """Proof that the Safari-like rule held for this journey: the browser keeps no gateway cookie and sent
    none with any request made inside the LMS page's frames."""
    assert journey.policy is CookiePolicy.SAFARI_LIKE
    sent = [(r.method, r.url.split("?")[0], Journey.sent_cookies(r)) for r in journey.requests
            if r.url.startswith(journey.gateway.origin + "/") and r.frame.parent_frame is not None
            and Journey.sent_cookies(r)]
    assert sent == [], f"gateway cookies were sent from inside the LMS page: {sent}"
    assert journey.gateway_cookies() == [], f"the browser kept gateway cookies: {journey.gateway_cookies()}"


def subjects(messages: list[dict], at: str) -> list[str]:
    """The LTI message subjects received by the course page (``at="course"``) or its forwarding frame."""
    return [m["subject"] for m in messages if m["at"] == at and m["subject"].startswith("lti.")]


def finish(journey: Journey, stack: Stack) -> None:
    """Checks that hold for every journey: request ids on every gateway response, no LMS-side refusal."""
    journey.assert_request_ids()
    assert stack.lms.take_errors() == [], "the test LMS refused a request (see lms.log)"


def page_path(message: RecordedMessage) -> str:
    """The path of the page a recorded message reached (``/lti/login``, ``/lti/launch``, ``/forwarder``…)."""
    return urllib.parse.urlsplit(message.href).path


def answers_to_gateway(journey: Journey) -> list[tuple[str, str, str, str]]:
    """Every answer to a storage message that reached a gateway page: (subject, the page's path, origin of
    the answer, the window that sent it), in order."""
    return [(m.subject, page_path(m), m.origin, m.source) for m in journey.messages
            if m.kind == "received" and m.href.startswith(journey.gateway.origin + "/")
            and m.subject.endswith(".response")]


def received_by_storage_frame(journey: Journey, origin: str, subject: str) -> list[RecordedMessage]:
    """The messages with ``subject`` that reached the forwarding frame while it was on ``origin``."""
    return [m for m in journey.messages if m.kind == "received" and m.subject == subject
            and m.href.startswith(origin + "/forwarder")]


def reference_of(text: str) -> str:
    match = re.search(r"Reference:\s*(\S+)", text)
    assert match, f"no reference on the page: {text!r}"
    return match.group(1)


def logged_error(stack: Stack, page: Page, reference: str) -> str:
    """The ``gw.error`` the gateway logged for the response with request id ``reference`` (waits up to 5 s
    for the line)."""
    lines = wait_until(page, lambda: [l for l in stack.gateway.log_lines(reference) if "gw.error=" in l], 5,
                       f"a gw.error line for {reference} in the gateway's log")
    assert len(lines) == 1, lines
    return re.search(r"gw\.error=(\S+)", lines[0]).group(1)


POST_FORM_SCRIPT = """([action, fields]) => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = action;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.type = 'hidden'; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def post_launch_from(page: Page, stack: Stack, fields: dict[str, str]):
    """Submits ``fields`` as a form to the gateway's launch from the page ``page`` shows now; returns the
    launch's response."""
    launch_url = f"{stack.gateway.origin}/lti/launch"
    with page.expect_response(lambda r: r.url == launch_url and r.request.method == "POST") as answer:
        page.evaluate(POST_FORM_SCRIPT, [launch_url, fields])
    return answer.value


def storage_launch(journey: Journey, stack: Stack, learner: str, scenario: str = "storage") -> dict[str, str]:
    """A launch in the LMS iframe tied to the browser by Platform Storage alone; returns the fields of the
    final launch post (id_token, state, lti_storage_secret). ``scenario`` ``cloud``: the platform whose auth
    endpoint and storage frame are on another origin than the course page."""
    gateway = stack.gateway.origin
    lms = stack.lms
    storage_origin = lms.auth_origin_for(scenario)
    counter = BindingCounter(stack.gateway)
    open_course(journey, scenario, learner)
    expect_lab_in_frame(journey)
    counter.assert_one("storage")

    login = journey.gateway_responses("/lti/login")[-1]
    assert login.status == 200, f"a login with lti_storage_target answers the storage page, got {login.status}"
    assert journey.gateway_requests("/lti/login/check", "POST"), "the login page in a frame checks the cookie first"

    messages = journey.lms_messages()
    to_course = [m for m in messages if m["at"] == "course"]
    assert subjects(messages, "course") and set(subjects(messages, "course")) == {"lti.capabilities"}, messages
    assert all(m["fromTool"] and m["origin"] == gateway for m in to_course), messages
    assert subjects(messages, "forwarder") == ["lti.put_data", "lti.get_data"], messages
    forwarded = [m for m in messages if m["at"] == "forwarder" and m["subject"].startswith("lti.")]
    assert all(m["origin"] == gateway for m in forwarded), messages
    assert forwarded[0]["key"] and forwarded[0]["key"] == forwarded[1]["key"], messages

    launches = journey.gateway_responses("/lti/launch", "POST")
    assert [r.status for r in launches] == [200, 303], (
        f"the LMS's post answers the storage page (200), its re-post the lab (303): {[r.status for r in launches]}")
    first, final = (form_fields(r.request.post_data) for r in launches)
    assert set(first) == {"id_token", "state"}, sorted(first)
    assert set(final) == {"id_token", "state", "lti_storage_secret"}, sorted(final)
    assert final["id_token"] == first["id_token"] and final["state"] == first["state"]

    # Who answered what: lti.capabilities by the course page (the gateway page's parent, on the course page's
    # origin), put and get by the forwarding frame on the storage origin -- each with its request's message_id.
    assert answers_to_gateway(journey) == [
        ("lti.capabilities.response", "/lti/login", lms.origin, "parent"),
        ("lti.put_data.response", "/lti/login", storage_origin, f"frame:{STORAGE_FRAME}"),
        ("lti.capabilities.response", "/lti/launch", lms.origin, "parent"),
        ("lti.get_data.response", "/lti/launch", storage_origin, f"frame:{STORAGE_FRAME}"),
    ], answers_to_gateway(journey)
    for subject in ("lti.put_data", "lti.get_data"):
        asked = received_by_storage_frame(journey, storage_origin, subject)
        answered = journey.gateway_received(subject + ".response")
        assert [m.origin for m in asked] == [gateway], asked
        assert [m.message_id for m in asked] == [m.message_id for m in answered], (asked, answered)
    auths = [a for a in lms.auth_requests if a.get("login_hint") == learner and a.get("state") == first["state"]]
    assert [(a["_origin"], a["client_id"], a["_cookie_user"]) for a in auths] == [
        (storage_origin, lms.client_id_for(scenario), learner)], auths
    assert_no_cookie_in_frame(journey)
    finish(journey, stack)
    return final


# --------------------------------------------------------------------------------------------- scenarios

def test_1_blocking_is_in_effect(stack: Stack, open_browser, learner: str) -> None:
    """Proves that the browser really refuses the gateway's cookies in the LMS frame, so that the other
    scenarios test something.

    Safari-like rule: the login sets its two state cookies (normal and Partitioned), the browser keeps
    neither and sends none back, and a launch without storage does not reach the lab: the fallback page.
    Chromium's default alone: the normal state cookie is neither kept nor sent, the Partitioned one is both
    (and that launch lands by it, channel ``partitioned_cookie``)."""
    counter = BindingCounter(stack.gateway)
    safari = open_browser(CookiePolicy.SAFARI_LIKE)
    stop_at_lms_sign_in(safari, "plain", learner)
    state_cookies = login_state_cookies(safari)
    assert safari.gateway_requests("/lti/login")[-1].frame == safari.tool(), "the login ran in the tool iframe"
    assert safari.gateway_cookies() == [], f"Safari-like rule: the browser kept {safari.gateway_cookies()}"
    continue_sign_in(safari)
    expect_fallback(safari)
    safari.shot("fallback")
    launch = safari.gateway_requests("/lti/launch", "POST")
    assert len(launch) == 1 and launch[0].response().status == 401
    assert sent_state_cookies(launch[0], state_cookies) == collections.Counter(), "a state cookie was sent"
    assert not safari.lab_url().match(safari.tool().url)
    counter.assert_none()
    finish(safari, stack)
    safari.close()

    counter = BindingCounter(stack.gateway)
    default = open_browser(CookiePolicy.CHROMIUM_DEFAULT)
    stop_at_lms_sign_in(default, "plain", learner)
    state_cookies = login_state_cookies(default)
    normal = next(c for c in state_cookies if not c.partitioned)
    partitioned = next(c for c in state_cookies if c.partitioned)
    jar = default.gateway_cookies()
    assert not [c for c in jar if not c.get("partitionKey")], f"an unpartitioned gateway cookie was kept: {jar}"
    kept = [(c["name"], c["value"]) for c in jar if c.get("partitionKey")]
    assert kept == [(partitioned.name, partitioned.value)], jar
    continue_sign_in(default)
    expect_lab_in_frame(default)
    launch = default.gateway_requests("/lti/launch", "POST")
    assert len(launch) == 1
    sent = sent_state_cookies(launch[0], state_cookies)
    assert sent == collections.Counter([(partitioned.name, partitioned.value)]), (
        f"only the Partitioned state cookie should come back (normal one: {normal.name}); sent: {dict(sent)}")
    counter.assert_one("partitioned_cookie")
    finish(default, stack)


def test_2_platform_storage_saves_the_launch(stack: Stack, open_browser, learner: str) -> None:
    """With no cookie at all in the frame (Safari-like rule), LTI Platform Storage ties the launch to the
    browser: capabilities, put_data and get_data are exchanged with the LMS (from the gateway's origin) and the
    frame lands in the lab (channel ``storage``)."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    storage_launch(journey, stack, learner)


def test_3_partitioned_cookie_in_chromium(stack: Stack, open_browser, learner: str) -> None:
    """Chromium's default policy keeps the Partitioned state cookie: the login page finds it at once, no
    storage message is needed, and the frame lands in the lab (channel ``partitioned_cookie``)."""
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT)
    counter = BindingCounter(stack.gateway)
    open_course(journey, "storage", learner)
    expect_lab_in_frame(journey)
    counter.assert_one("partitioned_cookie")
    state_cookies = login_state_cookies(journey)
    partitioned = next(c for c in state_cookies if c.partitioned)
    launch = journey.gateway_requests("/lti/launch", "POST")
    assert len(launch) == 1
    sent = sent_state_cookies(launch[0], state_cookies)
    assert sent == collections.Counter([(partitioned.name, partitioned.value)]), (
        f"Chromium's default: only the Partitioned state cookie comes back; sent: {dict(sent)}")
    assert journey.gateway_requests("/lti/login/check", "POST"), "the login page in a frame checks the cookie first"
    assert journey.lms_messages() == [], journey.lms_messages()
    assert not [m for m in journey.messages if m.subject.startswith("lti.")], journey.messages
    finish(journey, stack)


def test_4_silent_platform_falls_back_to_a_new_window(stack: Stack, open_browser, learner: str) -> None:
    """A platform that announces storage (``lti_storage_target``) but never answers, with no cookie in the
    frame: the learner gets the "Open this activity in a new window" page within a bounded time (about 2 s
    of waiting; fails above 8 s from the frame's first load), and its button opens a window that lands in the
    lab (channel ``new_window``)."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    counter = BindingCounter(stack.gateway)
    open_course(journey, "silent", learner)
    view = journey.tool_view()
    try:
        expect(view.get_by_text("Connecting to your course").first).to_be_visible(timeout=1_500)
        journey.shot("connecting")
    except AssertionError:
        journey.note("the connecting page was not seen before the fallback")
    view.get_by_role("heading", name=FALLBACK_HEADING).wait_for(state="visible", timeout=FALLBACK_LIMIT_MS + 4_000)
    elapsed_ms = journey.page.evaluate("Date.now() - window.__toolLoads[0]")
    journey.shot("fallback")
    (journey.out_dir / "timing.txt").write_text(f"fallback shown {elapsed_ms} ms after the frame's first load\n")
    print(f"\nfallback shown {elapsed_ms} ms after the frame's first load")
    assert elapsed_ms <= FALLBACK_LIMIT_MS, f"the fallback took {elapsed_ms} ms (limit {FALLBACK_LIMIT_MS} ms)"
    expect_fallback(journey)
    messages = journey.lms_messages()
    assert "lti.capabilities" in subjects(messages, "course"), messages
    assert not journey.lab_url().match(journey.tool().url)
    assert_no_cookie_in_frame(journey)
    counter.assert_none()

    open_in_new_window(journey)
    counter.assert_one("new_window")
    finish(journey, stack)


def test_5_no_storage_no_cookie_gets_the_fallback_page(stack: Stack, open_browser, learner: str) -> None:
    """A platform without storage and a browser without cookies in the frame: the launch post is refused
    with the 401 fallback page (reference id, rule Launch 1, the new-window button), and the button's window
    lands in the lab (channel ``new_window``)."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    counter = BindingCounter(stack.gateway)
    open_course(journey, "plain", learner)
    expect_fallback(journey)
    journey.shot("fallback")
    launches = journey.gateway_responses("/lti/launch", "POST")
    assert [r.status for r in launches] == [401], [r.status for r in launches]
    body = journey.tool_view().locator("body")
    expect(body).to_contain_text(re.compile(r"Reference:\s*\S+"))
    expect(body).to_contain_text("rule Launch 1")
    text = body.inner_text()
    journey.note(f"fallback page: {text!r}")
    reference = re.search(r"Reference:\s*(\S+)", text).group(1)
    wait_until(journey.page, lambda: reference in stack.gateway.log_path.read_text(errors="replace"), 5,
               f"reference {reference} in the gateway's log")
    assert_no_cookie_in_frame(journey)
    counter.assert_none()

    open_in_new_window(journey)
    counter.assert_one("new_window")
    finish(journey, stack)


def test_6_top_level_launch_needs_no_storage(stack: Stack, open_browser, learner: str) -> None:
    """A launch in a top-level window (the page itself navigates to the login, ``lti_storage_target=_parent``)
    has first-party cookies: it lands in the lab by the cookie (channel ``cookie``) without checking for it
    (no ``/lti/login/check``) and without any postMessage."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    counter = BindingCounter(stack.gateway)
    open_course(journey, "toplevel", learner)
    journey.shot("course-page")
    journey.page.goto(journey.lms.login_url(learner, storage_target="_parent"))
    journey.page.wait_for_url(journey.lab_url(), timeout=LAB_TIMEOUT_MS)
    journey.shot("lab")
    counter.assert_one("cookie")
    assert journey.gateway_requests("/lti/login/check") == [], "a top-level login must not check the cookie"
    paths = [urllib.parse.urlsplit(r.url).path for r in journey.requests
             if r.url.startswith(stack.gateway.origin + "/") and not r.url.endswith("/favicon.ico")]
    assert len(paths) >= 3 and paths[:2] == ["/lti/login", "/lti/launch"], (
        f"a top-level login goes straight to the LMS, then the launch: {paths}")
    assert journey.lab_url().match(stack.gateway.origin + paths[2]), paths
    assert journey.messages == [], f"a top-level login must not post messages: {journey.messages}"
    finish(journey, stack)


def test_7_deep_linking_in_the_frame(stack: Stack, open_browser, learner: str) -> None:
    """Deep linking inside the LMS frame with no cookie (storage): the lab picker shows, one lab is chosen,
    and the LMS receives a deep-linking response with one item whose signature verifies against the
    gateway's key set (aud, iss, deployment and data checked by the LMS)."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    counter = BindingCounter(stack.gateway)
    open_course(journey, "deeplink", learner)
    view = journey.tool_view()
    labs = view.locator("input[name=lab]")
    expect(labs.first).to_be_attached(timeout=LAB_TIMEOUT_MS)
    journey.shot("lab-picker")
    preferred = view.locator(f'input[name=lab][value="{LAB_ID}"]')
    choice = preferred if preferred.count() else labs.first
    chosen = choice.get_attribute("value")
    choice.check()
    journey.shot("lab-picker-chosen")
    view.get_by_role("button", name="Add to course").click()
    journey.tool().wait_for_url(f"{stack.lms.origin}/deep-link-return", timeout=LAB_TIMEOUT_MS)
    expect(view.locator("#result")).to_have_text("Deep linking response received: 1 item(s)")
    expect(view.locator("#verification")).to_contain_text("Signature verified")
    journey.shot("lms-items-added")

    result = stack.lms.deep_link_results[-1]
    assert result.verified and result.problem is None, result
    assert len(result.items) == 1, result.items
    item = result.items[0]
    assert item.get("type") == "ltiResourceLink" and item.get("custom", {}).get("labid") == chosen, item
    counter.assert_one("storage")
    messages = journey.lms_messages()
    assert subjects(messages, "forwarder") == ["lti.put_data", "lti.get_data"], messages
    assert_no_cookie_in_frame(journey)
    finish(journey, stack)


def test_8_third_party_cookies_allowed(stack: Stack, open_browser, learner: str) -> None:
    """With third-party cookies allowed, the normal state cookie is kept in the frame (checked in the
    browser's cookie store), the login page finds it at once, no storage message is sent, and the frame
    lands in the lab (channel ``cookie``)."""
    journey = open_browser(CookiePolicy.ALLOWED)
    counter = BindingCounter(stack.gateway)
    stop_at_lms_sign_in(journey, "storage", learner)
    normal = next(c for c in login_state_cookies(journey) if not c.partitioned)
    jar = journey.gateway_cookies()
    assert [c for c in jar if not c.get("partitionKey") and c["name"] == normal.name], (
        f"third-party cookies allowed, yet the normal state cookie {normal.name} was not kept: {jar}")
    continue_sign_in(journey)
    expect_lab_in_frame(journey)
    counter.assert_one("cookie")
    assert journey.lms_messages() == [], journey.lms_messages()
    assert not [m for m in journey.messages if m.subject.startswith("lti.")], journey.messages
    finish(journey, stack)


def test_9_replayed_storage_launch_is_refused(stack: Stack, open_browser, learner: str) -> None:
    """The final post of a storage launch (id_token, state, lti_storage_secret), taken from a launch that
    succeeded and posted again from another browser, is refused (401, "refused") and binds nothing. It is
    posted from a page of the gateway's own origin (``Sec-Fetch-Site: same-origin``), so that the rule
    against secrets posted from other sites (test 13) does not decide: the log says ``state_unknown``, the
    state was used."""
    first = open_browser(CookiePolicy.SAFARI_LIKE, label="launch")
    fields = storage_launch(first, stack, learner)
    first.close()

    replay = open_browser(CookiePolicy.SAFARI_LIKE, label="replay")
    counter = BindingCounter(stack.gateway)
    replay.page.goto(f"{stack.gateway.origin}/")
    answer = post_launch_from(replay.page, stack, fields)
    assert answer.request.all_headers().get("sec-fetch-site") == "same-origin", answer.request.all_headers()
    assert answer.status == 401, f"a replayed launch must be refused with 401, got {answer.status}"
    replay.page.wait_for_load_state()
    body = replay.page.locator("body")
    expect(body).to_contain_text(re.compile("refused", re.IGNORECASE))
    replay.shot("replay-refused")
    assert logged_error(stack, replay.page, reference_of(body.inner_text())) == "state_unknown"
    counter.assert_none()
    finish(replay, stack)


def test_10_platform_storage_turned_off(stack: Stack, open_browser, learner: str) -> None:
    """``platforms set-options --platform-storage off`` is taken without a restart: a login that announces
    storage redirects at once and no storage message is sent, so with no cookie in the frame the learner gets
    the fallback page. Set back to ``auto``, the next launch is saved by storage again."""
    stack.gateway.cli("platforms", "set-options", stack.platform_id, "--platform-storage", "off")
    try:
        journey = open_browser(CookiePolicy.SAFARI_LIKE, label="storage-off")
        counter = BindingCounter(stack.gateway)
        open_course(journey, "storage", learner)
        expect_fallback(journey)
        journey.shot("fallback")
        login = journey.gateway_responses("/lti/login")[-1]
        assert login.status == 302, f"storage off: the login redirects at once, got {login.status}"
        assert journey.lms_messages() == [], journey.lms_messages()
        assert_no_cookie_in_frame(journey)
        counter.assert_none()
        finish(journey, stack)
        journey.close()
    finally:
        stack.gateway.cli("platforms", "set-options", stack.platform_id, "--platform-storage", "auto")

    storage_launch(open_browser(CookiePolicy.SAFARI_LIKE, label="storage-auto"), stack, learner)


def test_11_canvas_cloud_layout(stack: Stack, open_browser, learner: str) -> None:
    """Canvas cloud: the course page on one origin (``school.instructure.com``), the platform's auth endpoint
    and ``post_message_forwarding`` frame on another (``sso.canvaslms.com``) -- here ``localhost:LMS`` and
    ``localhost:LMS2``, registered with ``--auth-url http://localhost:LMS2/auth``. With no cookie in the
    frame (Safari-like rule), the course page answers ``lti.capabilities`` (sent to it with target ``*``),
    the forwarder on LMS2 answers put and get (sent only to LMS2), and the frame lands in the lab (channel
    ``storage``)."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE)
    storage_launch(journey, stack, learner, scenario="cloud")
    assert stack.lms.cloud_origin != stack.lms.origin
    # The course page's frame of another origin: it holds the stored secret, the course page does not.
    forwarder = next(f for f in journey.page.frames if f.name == STORAGE_FRAME)
    assert forwarder.url.startswith(stack.lms.cloud_origin + "/forwarder"), forwarder.url
    assert journey.page.evaluate("Object.keys(window.__lmsStore).length") == 0
    stored = forwarder.evaluate("Object.keys(window.__lmsStore)")
    assert stored and all(slot.startswith(stack.gateway.origin + " ") for slot in stored), stored


def test_12_storage_answers_from_another_origin_are_ignored(stack: Stack, open_browser, learner: str) -> None:
    """On the Canvas-cloud platform (storage origin ``localhost:LMS2``), storage answers that carry the right
    ``message_id`` but come from the course page's origin ``localhost:LMS`` are ignored; the learner gets the
    new-window page and nothing is bound by storage.

    1. ``lti.put_data``: the forwarder on LMS2 does not answer but hands the request to the course page,
       which answers it (value ``not-the-secret``) -- another window, another origin. The login page offers
       the new window after its 2 s wait; it never goes on to the LMS.
    2. ``lti.get_data``: the forwarder answers put; on get, the storage frame itself moves to a page of
       LMS and answers from there -- the very window asked, only its origin is wrong. The launch page posts
       ``lti_storage_error=timeout`` (no secret), the 401 new-window page shows, and its button opens the lab
       in a new window (channel ``new_window``, restarting at LMS2's auth endpoint)."""
    lms = stack.lms
    gateway = stack.gateway.origin
    journey = open_browser(CookiePolicy.SAFARI_LIKE, label="put-answered-by-course-page")
    counter = BindingCounter(stack.gateway)
    open_course(journey, "cloud-impostor-put", learner)
    expect_fallback(journey, timeout_ms=FALLBACK_LIMIT_MS + 4_000)
    journey.shot("fallback")
    logins = journey.gateway_responses("/lti/login")
    assert [r.status for r in logins] == [200], [r.status for r in logins]
    asked = received_by_storage_frame(journey, lms.cloud_origin, "lti.put_data")
    assert [m.origin for m in asked] == [gateway], asked
    assert answers_to_gateway(journey) == [
        ("lti.capabilities.response", "/lti/login", lms.origin, "parent"),
        ("lti.put_data.response", "/lti/login", lms.origin, "parent"),
    ], answers_to_gateway(journey)
    bogus = journey.gateway_received("lti.put_data.response")
    assert [m.message_id for m in bogus] == [asked[0].message_id], (bogus, asked)
    assert auth_states(journey, lms.cloud_origin) == [], "the login went on to the LMS after a foreign answer"
    assert journey.gateway_requests("/lti/launch") == []
    assert_no_cookie_in_frame(journey)
    counter.assert_none()
    finish(journey, stack)
    journey.close()

    journey = open_browser(CookiePolicy.SAFARI_LIKE, label="get-answered-from-course-origin")
    counter = BindingCounter(stack.gateway)
    open_course(journey, "cloud-impostor-get", learner)
    expect_fallback(journey, timeout_ms=FALLBACK_LIMIT_MS + 4_000)
    journey.shot("fallback")
    launches = journey.gateway_responses("/lti/launch", "POST")
    assert [r.status for r in launches] == [200, 401], [r.status for r in launches]
    relay = form_fields(launches[1].request.post_data)
    assert "lti_storage_secret" not in relay and relay.get("lti_storage_error") == "timeout", sorted(relay)
    assert IMPOSTOR_VALUE not in (launches[1].request.post_data or "")
    asked = received_by_storage_frame(journey, lms.cloud_origin, "lti.get_data")
    assert [m.origin for m in asked] == [gateway], asked
    assert answers_to_gateway(journey) == [
        ("lti.capabilities.response", "/lti/login", lms.origin, "parent"),
        ("lti.put_data.response", "/lti/login", lms.cloud_origin, f"frame:{STORAGE_FRAME}"),
        ("lti.capabilities.response", "/lti/launch", lms.origin, "parent"),
        ("lti.get_data.response", "/lti/launch", lms.origin, f"frame:{STORAGE_FRAME}"),
    ], answers_to_gateway(journey)
    bogus = journey.gateway_received("lti.get_data.response")
    assert [m.message_id for m in bogus] == [asked[0].message_id], (bogus, asked)
    forwarder = next(f for f in journey.page.frames if f.name == STORAGE_FRAME)
    assert forwarder.url.startswith(lms.origin + "/forwarder?scenario=impostor"), forwarder.url
    assert [m["subject"] for m in journey.lms_messages() if m["at"] == "impostor-sent"] == ["lti.get_data.response"]
    assert_no_cookie_in_frame(journey)
    counter.assert_none()

    open_in_new_window(journey, auth_origin=lms.cloud_origin)
    counter.assert_one("new_window")
    finish(journey, stack)


def storage_launch_stopped_before_relay(journey: Journey, stack: Stack, learner: str) -> dict[str, str]:
    """A storage launch whose last step -- the launch page's post with ``lti_storage_secret`` -- is stopped
    in the browser (``route.abort()``); returns the fields it would have posted. Nothing is bound."""
    launch_url = f"{stack.gateway.origin}/lti/launch"
    captured: list[dict[str, str]] = []

    def stop_relay(route, request) -> None:
        fields = form_fields(request.post_data) if request.method == "POST" else {}
        if "lti_storage_secret" in fields:
            captured.append(fields)
            route.abort()
        else:
            route.continue_()

    pattern = re.compile("^" + re.escape(launch_url) + "$")
    counter = BindingCounter(stack.gateway)
    journey.context.route(pattern, stop_relay)
    try:
        open_course(journey, "storage", learner)
        wait_until(journey.page, lambda: captured, LAB_TIMEOUT_MS / 1000, "the launch page's post with its secret")
        wait_until(journey.page, lambda: journey.tool().url.startswith("chrome-error:"), 5,
                   "the stopped post's error page in the frame")
    finally:
        journey.context.unroute(pattern, stop_relay)
    journey.shot("relay-stopped")
    fields = captured[0]
    assert sorted(fields) == ["id_token", "lti_storage_secret", "state"], sorted(fields)
    launches = journey.gateway_responses("/lti/launch", "POST")
    assert [r.status for r in launches] == [200], f"only the LMS's post reached the gateway: {launches}"
    counter.assert_none()
    return fields


def test_13_storage_secret_from_another_site_is_refused(stack: Stack, open_browser, learner: str) -> None:
    """A valid (id_token, state, lti_storage_secret) taken from a storage launch (its last post stopped in
    the browser) and posted to the gateway by a page of another site in a fresh browser -- as a victim's
    browser would -- is refused: 401 "This launch was refused", ``gw.error=storage_secret_foreign`` logged
    for the page's reference, no lab, nothing bound. The same fields posted with no ``Origin`` and no
    ``Sec-Fetch-Site`` at all (not a browser) are refused with the same code. The state survived both: the
    same fields posted from a page of the gateway's own origin then land in the lab (channel ``storage``)."""
    attacker = open_browser(CookiePolicy.SAFARI_LIKE, label="launch-stopped")
    fields = storage_launch_stopped_before_relay(attacker, stack, learner)

    victim = open_browser(CookiePolicy.CHROMIUM_DEFAULT, label="victim")
    counter = BindingCounter(stack.gateway)
    foreign_url = stack.lms.foreign_post_url(fields)
    launch_url = f"{stack.gateway.origin}/lti/launch"
    with victim.page.expect_response(lambda r: r.url == launch_url and r.request.method == "POST") as answer:
        victim.page.goto(foreign_url, wait_until="commit")
    response = answer.value
    headers = response.request.all_headers()
    assert headers.get("sec-fetch-site") == "cross-site" and headers.get("origin") == stack.lms.foreign_origin, (
        f"the browser posted from another site: {headers.get('sec-fetch-site')!r}, {headers.get('origin')!r}")
    assert set(form_fields(response.request.post_data)) == set(fields)
    assert response.status == 401, f"a secret posted from another site must be refused, got {response.status}"
    victim.page.wait_for_load_state()
    body = victim.page.locator("body")
    expect(victim.page.get_by_role("heading", name=re.compile("refused", re.IGNORECASE))).to_be_visible()
    victim.shot("foreign-post-refused")
    reference = reference_of(body.inner_text())
    assert response.headers.get("x-request-id") == reference, (response.headers.get("x-request-id"), reference)
    assert logged_error(stack, victim.page, reference) == "storage_secret_foreign"
    assert not victim.lab_url().match(victim.page.url), victim.page.url
    assert [urllib.parse.urlsplit(r.url).path for r in victim.requests
            if r.url.startswith(stack.gateway.origin + "/")] == ["/lti/launch"], "the refusal led nowhere else"
    assert victim.gateway_cookies() == [], victim.gateway_cookies()
    counter.assert_none()
    finish(victim, stack)
    victim.close()

    status, response_headers, text = stack.gateway.post_form("/lti/launch", fields)
    reference = response_headers.get("X-Request-Id") or response_headers.get("x-request-id") or ""
    assert status == 401 and re.search("refused", text, re.IGNORECASE), (status, text[:300])
    assert logged_error(stack, attacker.page, reference) == "storage_secret_foreign"
    counter.assert_none()

    window = attacker.context.new_page()
    window.goto(f"{stack.gateway.origin}/")
    answer = post_launch_from(window, stack, fields)
    assert answer.request.all_headers().get("sec-fetch-site") == "same-origin", answer.request.all_headers()
    assert answer.status == 303, f"the state survived the refused posts, so this post launches; got {answer.status}"
    window.wait_for_url(attacker.lab_url(), timeout=LAB_TIMEOUT_MS)
    attacker.shot("same-origin-post-lab", window)
    counter.assert_one("storage")
    finish(attacker, stack)


def test_14_hostile_storage_frame_names_are_ignored(stack: Stack, open_browser, learner: str) -> None:
    """Frame names that are window properties are never used for storage, with no cookie in the frame:
    ``lti_storage_target=opener`` on the login offers no storage (the login redirects at once, no message,
    the 401 new-window page); an ``lti.capabilities`` answer naming the frame ``top`` for put and get gets no
    ``lti.put_data`` sent anywhere (``top`` would be the course page itself) and the new-window section shows
    at once."""
    journey = open_browser(CookiePolicy.SAFARI_LIKE, label="target-opener")
    counter = BindingCounter(stack.gateway)
    open_course(journey, "hostile-target", learner)
    expect_fallback(journey)
    journey.shot("fallback")
    login = journey.gateway_responses("/lti/login")[-1]
    assert "lti_storage_target=opener" in login.url
    assert login.status == 302, f"a storage target named opener is ignored: the login redirects, got {login.status}"
    assert [r.status for r in journey.gateway_responses("/lti/launch", "POST")] == [401]
    assert not [m for m in journey.messages if m.subject.startswith("lti.")], journey.messages
    assert_no_cookie_in_frame(journey)
    counter.assert_none()
    finish(journey, stack)
    journey.close()

    journey = open_browser(CookiePolicy.SAFARI_LIKE, label="frame-top")
    counter = BindingCounter(stack.gateway)
    open_course(journey, "hostile-frame", learner)
    expect_fallback(journey, timeout_ms=FALLBACK_LIMIT_MS)
    journey.shot("fallback")
    assert [r.status for r in journey.gateway_responses("/lti/login")] == [200]
    assert answers_to_gateway(journey) == [("lti.capabilities.response", "/lti/login", stack.lms.origin, "parent")]
    storage = [m for m in journey.messages if m.subject in ("lti.put_data", "lti.get_data")]
    assert storage == [], f"storage messages went to a frame named top: {storage}"
    assert auth_states(journey) == [] and journey.gateway_requests("/lti/launch") == []
    assert_no_cookie_in_frame(journey)
    counter.assert_none()
    finish(journey, stack)
