"""The gateway's own pages in the browser: the deep-linking lab picker (with and without script), the too-many-labs
page (Skillable Result 2) in the learner's time zone, its confirm-end page, and an error page after a validated
launch, at desktop and phone sizes.

Launches here open the gateway as the whole window (``lti_storage_target=_parent``, first-party cookies: the way a
phone's LMS app opens a tool), so the page's own layout is what the window shows. The sandbox allows 2 running
labs per learner: a learner who launches labs 1001, 1002 and 1003 gets the too-many-labs page.

Tests 24 and 25 run on a second gateway (``offsite_stack``) whose Skillable is the stand-alone sandbox, so that
its labs are on another origin than the gateway, as Skillable's are: the posts of the gateway's own pages that are
answered with a 303 to the lab (the storage launch's relay, the too-many-labs page's Launch and Resume) must reach
it. They are expected to fail (strict) while those pages allow their forms only ``form-action 'self'``.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from harness import LAB_TIMEOUT_MS, CookiePolicy, Stack, wait_until
from lms import LAB_ID, LINK_TITLES
from pagecheck import (DESKTOP, NONE_CHOSEN, PHONE, PICKER_HEADING, TOO_MANY_HEADING, MIN_TARGET_PX,
                       assert_fits_a_phone, fill_the_lab_quota, is_red, launch, local_text, sign_in,
                       spaces, utc_text)

ZONE = "America/New_York"


def finish(journey, stack: Stack) -> None:
    journey.assert_request_ids()
    assert stack.lms.take_errors() == [], "the test LMS refused a request (see lms.log)"


def test_20_picker_checks_a_choice_in_the_page(stack: Stack, open_browser, learner: str) -> None:
    """With script: "Add to course" with no lab chosen sends nothing to ``/lti/deep-link/select``; the page shows
    its problem in ``#problem`` (role alert) and stays the picker. Once a lab is chosen, "Add to course" returns a
    signed deep-linking response with that lab to the LMS."""
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT, **DESKTOP)
    page = journey.page
    sign_in(journey, learner)
    answer = launch(journey, learner, deep_link=True)
    assert answer.status == 200, answer.status
    expect(page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()
    problem = page.locator("#problem")
    expect(problem).to_be_hidden()
    picker_url = page.url
    journey.shot("picker")

    page.get_by_role("button", name="Add to course").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(problem).to_have_attribute("role", "alert")
    expect(problem).to_contain_text(NONE_CHOSEN)
    journey.shot("picker-nothing-chosen")
    assert journey.gateway_requests("/lti/deep-link/select") == [], "the picker posted with no lab chosen"
    assert page.url == picker_url
    expect(page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()

    results_before = len(stack.lms.deep_link_results)
    page.locator(f'input[name=lab][value="{LAB_ID}"]').check()
    page.get_by_role("button", name="Add to course").click()
    page.wait_for_url(f"{stack.lms.origin}/deep-link-return", timeout=LAB_TIMEOUT_MS)
    expect(page.locator("#result")).to_have_text("Deep linking response received: 1 item(s)")
    journey.shot("lms-items-added")
    selects = journey.gateway_requests("/lti/deep-link/select", "POST")
    assert len(selects) == 1, [r.url for r in selects]
    results = stack.lms.deep_link_results[results_before:]
    assert len(results) == 1 and results[0].verified and results[0].problem is None, results
    assert [item.get("custom", {}).get("labid") for item in results[0].items] == [LAB_ID], results[0].items
    finish(journey, stack)


def test_21_picker_without_script(stack: Stack, open_browser, learner: str) -> None:
    """Without script, on a phone: "Add to course" with no lab chosen reaches the server, which answers the picker
    again (422) with the problem shown, the labs listed and its Cancel button; the page fits the phone. Cancel
    returns a signed response with no item to the LMS (through the page's Continue button, as nothing posts by
    itself)."""
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT, java_script_enabled=False, **PHONE)
    page = journey.page
    sign_in(journey, learner)
    answer = launch(journey, learner, deep_link=True, script=False)
    assert answer.status == 200, answer.status
    expect(page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()
    labs = page.locator("input[name=lab]")
    offered = labs.count()
    assert offered >= 3, f"the sandbox offers labs 1001-1003, the picker lists {offered}"
    assert_fits_a_phone(page, "the picker without script")

    select_url = f"{stack.gateway.origin}/lti/deep-link/select"
    with page.expect_response(lambda r: r.url == select_url and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Add to course").click()
    assert posted.value.status == 422, f"nothing chosen: the picker comes back with 422, got {posted.value.status}"
    page.wait_for_load_state("domcontentloaded")
    expect(page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(NONE_CHOSEN)
    expect(labs).to_have_count(offered)
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    assert_fits_a_phone(page, "the picker with its problem, without script")
    journey.shot("picker-problem-no-script")

    results_before = len(stack.lms.deep_link_results)
    cancel.click()
    # No script: the page that returns to the LMS waits for its button.
    page.get_by_role("button", name="Continue to the course").click()
    page.wait_for_url(f"{stack.lms.origin}/deep-link-return", timeout=LAB_TIMEOUT_MS)
    expect(page.locator("#result")).to_have_text("Deep linking response received: 0 item(s)")
    results = stack.lms.deep_link_results[results_before:]
    assert len(results) == 1 and results[0].verified and results[0].items == [], results
    finish(journey, stack)


def test_22_too_many_labs_in_the_learners_time_zone(stack: Stack, open_browser, learner: str) -> None:
    """A learner with two running labs launches a third, on a phone in New York: the too-many-labs page names
    the link it launches, shows each time in the browser's zone (not the server's UTC text), says when each lab
    ends in words, has a red End button and a secondary Resume at least 44 px high, a way back to the course, and
    no sideways scroll. End… → the confirm page (fits the phone) → End <name> → "<name> has ended", and the
    launch button then starts the new lab."""
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT, timezone_id=ZONE, **PHONE)
    page = journey.page
    sign_in(journey, learner)
    answer = fill_the_lab_quota(journey, learner)
    assert answer.status == 200, f"a third lab: the too-many-labs page (200), got {answer.status}"
    expect(page.get_by_role("heading", name=TOO_MANY_HEADING)).to_be_visible()
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == ZONE
    title = LINK_TITLES["1003"]
    launch_button = page.get_by_role("button", name=f"Launch {title}")
    expect(launch_button).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"launch {title}")

    labs = page.locator("main li")
    expect(labs).to_have_count(2)
    names = [labs.nth(i).locator("strong").inner_text().strip() for i in range(2)]
    times = page.locator("main li time")
    expect(times).to_have_count(4)
    for index in range(4):
        time = times.nth(index)
        iso = time.get_attribute("datetime")
        assert iso, "a <time> without datetime"
        shown = spaces(time.inner_text())
        assert "UTC" not in shown and shown != utc_text(iso), f"{iso} still shows the server's UTC text {shown!r}"
        assert shown == local_text(iso, ZONE), f"{iso} in {ZONE}: expected {local_text(iso, ZONE)!r}, shown {shown!r}"
    for name in names:
        expect(labs.filter(has_text=name)).to_contain_text(re.compile(r"ends in \d+ (minutes?|hours?|days?)"))

    end = page.get_by_role("button", name=f"End {names[0]}", exact=True)
    resume = page.get_by_role("button", name=f"Resume {names[0]}", exact=True)
    expect(end).to_have_class(re.compile(r"\bdestructive\b"))
    expect(resume).to_have_class(re.compile(r"\bsecondary\b"))
    background = end.evaluate("e => getComputedStyle(e).backgroundColor")
    assert is_red(background), f"the End button's background is {background}, not red"
    assert not is_red(resume.evaluate("e => getComputedStyle(e).backgroundColor"))
    for button in (end, resume, launch_button):
        height = button.bounding_box()["height"]
        assert height >= MIN_TARGET_PX, f"{button} is {height} px high"
    back = page.get_by_role("link", name="Back to your course")
    expect(back).to_have_attribute("href", stack.lms.return_url)
    assert_fits_a_phone(page, "the too-many-labs page")
    journey.shot("too-many-labs")

    end.click()
    expect(page.get_by_role("heading", name=f"End {names[0]}?")).to_be_visible()
    confirm = page.get_by_role("button", name=f"End {names[0]}", exact=True)
    expect(confirm).to_have_class(re.compile(r"\bdestructive\b"))
    assert is_red(confirm.evaluate("e => getComputedStyle(e).backgroundColor"))
    expect(page.get_by_role("button", name="Keep it")).to_be_visible()
    assert_fits_a_phone(page, "the confirm-end page")
    journey.shot("confirm-end")

    confirm.click()
    expect(page.get_by_role("heading", name=f"{names[0]} has ended")).to_be_visible()
    expect(page.locator("main li")).to_have_count(1)
    expect(page.locator("main li")).to_contain_text(names[1])
    assert "UTC" not in page.locator("main li").inner_text()
    expect(page.get_by_role("link", name="Back to your course")).to_have_attribute("href", stack.lms.return_url)
    assert_fits_a_phone(page, "the too-many-labs page after an end")
    journey.shot("lab-ended")

    page.get_by_role("button", name=f"Launch {title}").click()
    page.wait_for_url(journey.lab_url(), timeout=LAB_TIMEOUT_MS)
    expect(page.locator("h1")).to_have_text("Kubernetes Basics")
    journey.shot("new-lab")
    finish(journey, stack)


def test_23_learner_pages_fit_a_phone(stack: Stack, open_browser, learner: str) -> None:
    """At phone size with script: the picker (fresh and with its problem), the page of a link without labid
    (with its way back to the course, which leads to the LMS) and the too-many-labs page in Tokyo fit the
    window: no sideways scroll, every button at least 44 px high."""
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT, timezone_id="Asia/Tokyo", **PHONE)
    page = journey.page
    sign_in(journey, learner)

    launch(journey, learner, deep_link=True)
    expect(page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()
    assert_fits_a_phone(page, "the picker")
    page.get_by_role("button", name="Add to course").click()
    expect(page.get_by_role("alert")).to_contain_text(NONE_CHOSEN)
    assert_fits_a_phone(page, "the picker with its problem")
    journey.shot("picker-problem")

    answer = launch(journey, learner, lab=None)
    assert answer.status == 400, f"a link without labid: 400, got {answer.status}"
    expect(page.get_by_role("heading", name=re.compile("labid|lab", re.IGNORECASE))).to_be_visible()
    expect(page.locator("main")).to_contain_text("labid")
    back = page.get_by_role("link", name="Back to your course")
    expect(back).to_have_attribute("href", stack.lms.return_url)
    height = back.bounding_box()["height"]
    assert height >= MIN_TARGET_PX, f"Back to your course is {height} px high"
    assert_fits_a_phone(page, "the page of a link without labid")
    journey.shot("no-labid")
    back.click()
    page.wait_for_url(stack.lms.return_url)
    expect(page.locator("#course-return")).to_be_visible()

    answer = fill_the_lab_quota(journey, learner)
    assert answer.status == 200, answer.status
    expect(page.get_by_role("heading", name=TOO_MANY_HEADING)).to_be_visible()
    times = page.locator("main li time")
    expect(times).to_have_count(4)
    for index in range(4):
        iso = times.nth(index).get_attribute("datetime")
        assert spaces(times.nth(index).inner_text()) == local_text(iso, "Asia/Tokyo")
    assert_fits_a_phone(page, "the too-many-labs page in Tokyo")
    journey.shot("too-many-labs-tokyo")
    finish(journey, stack)


# --------------------------------------------------------------------------------------------- labs on another origin

#: What Chromium says when a page's ``form-action`` refuses where its form's post is redirected.
FORM_ACTION_REFUSED = re.compile(r"Content Security Policy directive: \"form-action")


def console_lines(journey) -> list[str]:
    lines: list[str] = []
    journey.context.on("console", lambda message: lines.append(message.text))
    return lines


def lab_or_refusal(journey, where, lab_url, console: list[str], since: int, what: str) -> str:
    """Waits until ``where()`` (a URL) is a lab's, or the browser has refused a form's post since console line
    ``since``; returns ``"lab"`` or the browser's words."""
    def outcome():
        if lab_url.match(where()):
            return "lab"
        refusals = [line for line in console[since:] if FORM_ACTION_REFUSED.search(line)]
        return refusals[0].strip() if refusals else None
    return wait_until(journey.page, outcome, LAB_TIMEOUT_MS / 1000, what)


def test_24_storage_launch_reaches_a_lab_on_another_origin(offsite_stack: Stack, open_browser,
                                                             learner: str) -> None:
    """A storage launch (no cookie in the LMS frame) with Skillable's labs on another origin than the gateway,
    as in production (``*.labondemand.com``; here the stand-alone sandbox on another port): the launch page's
    relay post (with ``lti_storage_secret``) is answered 303 to the lab, and the frame must land there. The
    built-in sandbox serves its labs on the gateway's own origin, which hides a ``form-action 'self'`` refusal."""
    stack = offsite_stack
    journey = open_browser(CookiePolicy.SAFARI_LIKE, on=stack)
    console = console_lines(journey)
    journey.page.goto(stack.lms.course_url("storage", learner), wait_until="domcontentloaded")
    outcome = lab_or_refusal(journey, lambda: journey.tool().url, stack.sandbox.lab_url(), console, 0,
                             "the lab in the frame, or the browser's refusal")
    journey.shot("storage-launch")
    launches = journey.gateway_responses("/lti/launch", "POST")
    assert [r.status for r in launches][:1] == [200], [r.status for r in launches]
    assert outcome == "lab", f"the frame stayed at {journey.tool().url}: {outcome}"
    finish(journey, stack)


def test_25_too_many_labs_buttons_reach_a_lab_on_another_origin(offsite_stack: Stack, open_browser,
                                                                  learner: str) -> None:
    """The too-many-labs page with Skillable's labs on another origin: after End… → End <name>, "Launch <link>"
    lands in the new lab, and "Resume" in a running one (both posts are answered 303 to the lab)."""
    stack = offsite_stack
    lab_url = stack.sandbox.lab_url()
    journey = open_browser(CookiePolicy.CHROMIUM_DEFAULT, on=stack, **DESKTOP)
    page = journey.page
    console = console_lines(journey)
    sign_in(journey, learner)
    assert fill_the_lab_quota(journey, learner, lab_url=lab_url).status == 200
    expect(page.get_by_role("heading", name=TOO_MANY_HEADING)).to_be_visible()
    page.locator("main li button.destructive").first.click()
    page.locator("form button.destructive").click()
    expect(page.get_by_role("heading", name=re.compile("has ended$"))).to_be_visible()
    outcomes = {}
    since = len(console)
    page.get_by_role("button", name=f"Launch {LINK_TITLES['1003']}").click()
    outcomes["launch"] = lab_or_refusal(journey, lambda: page.url, lab_url, console, since, "Launch: lab or refusal")
    journey.shot("after-launch")
    if outcomes["launch"] == "lab":  # two labs run again: a third launch shows the page once more
        assert launch(journey, learner, "1001").status == 200
    expect(page.get_by_role("button", name=re.compile("^Resume ")).first).to_be_visible()
    since = len(console)
    page.get_by_role("button", name=re.compile("^Resume ")).first.click()
    outcomes["resume"] = lab_or_refusal(journey, lambda: page.url, lab_url, console, since, "Resume: lab or refusal")
    journey.shot("after-resume")
    assert outcomes == {"launch": "lab", "resume": "lab"}, outcomes
    finish(journey, stack)
