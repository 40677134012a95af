"""Steps and checks of the learner's and instructor's pages (picker, too-many-labs, confirm-end, error pages) for
``test_pages.py`` and ``scripts/screenshots.py``: launches as a whole window (first-party cookies, like a phone's
LMS app opening the tool), the layout rules of a phone (no sideways scroll, buttons at least 44 px high), and the
times the too-many-labs page shows in the browser's time zone."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, Response

from harness import LAB_TIMEOUT_MS, Journey
from lms import LAB_ID, TestLMS

#: A phone (an iPhone 14's CSS size), at device scale 1 so that screenshots stay small.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
                         "device_scale_factor": 1, "locale": "en-US"}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1, "locale": "en-US"}
#: The smallest height of a button a finger can hit (WCAG 2.5.5, Apple's and Google's guidelines).
MIN_TARGET_PX = 44
PICKER_HEADING = "Add Skillable labs"
TOO_MANY_HEADING = "You have too many labs running"
NONE_CHOSEN = "Choose at least one lab"


def sign_in(journey: Journey, learner: str, page: Page | None = None) -> None:
    """Signs ``learner`` in to the test LMS (its course page sets the sign-in cookie)."""
    (page or journey.page).goto(journey.lms.course_url("toplevel", learner), wait_until="domcontentloaded")


def launch(journey: Journey, learner: str, lab: str | None = LAB_ID, deep_link: bool = False,
           script: bool = True, page: Page | None = None) -> Response:
    """Opens the gateway's login as the whole window (``lti_storage_target=_parent``) for the LMS link to ``lab``
    (``None``: a link without labid), or a deep-linking request; returns the gateway's answer to the launch post.
    Without script the LMS's sign-in page does not post by itself: its Continue button is pressed."""
    page = page or journey.page
    hint = "deeplink" if deep_link else TestLMS.lab_hint(lab)
    launch_url = f"{journey.gateway.origin}/lti/launch"
    with page.expect_response(lambda r: r.url == launch_url and r.request.method == "POST",
                              timeout=LAB_TIMEOUT_MS) as answer:
        page.goto(journey.lms.login_url(learner, storage_target="_parent", message_hint=hint),
                  wait_until="domcontentloaded")
        if not script:
            page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("domcontentloaded")
    return answer.value


def launch_into_lab(journey: Journey, learner: str, lab: str, page: Page | None = None,
                    lab_url: re.Pattern[str] | None = None) -> None:
    """A launch that lands in the sandbox's lab page (``lab_url``: where the sandbox's labs are, by default the
    gateway's built-in sandbox)."""
    page = page or journey.page
    answer = launch(journey, learner, lab, page=page)
    assert answer.status == 303, f"the launch of lab {lab} should go to the lab (303), got {answer.status}"
    page.wait_for_url(lab_url or journey.lab_url(), timeout=LAB_TIMEOUT_MS)


def fill_the_lab_quota(journey: Journey, learner: str, page: Page | None = None,
                       lab_url: re.Pattern[str] | None = None) -> Response:
    """Launches labs 1001 and 1002 (the sandbox allows 2 running labs per learner), then 1003: Skillable answers
    Result 2 and the gateway the too-many-labs page, whose response this returns."""
    launch_into_lab(journey, learner, "1001", page, lab_url)
    launch_into_lab(journey, learner, "1002", page, lab_url)
    return launch(journey, learner, "1003", page=page)


LAYOUT_SCRIPT = """(minHeight) => {
  const root = document.documentElement;
  const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const targets = [...document.querySelectorAll('button, input[type=submit], input[type=button], a.button')]
    .filter(visible);
  const name = (e) => (e.getAttribute('aria-label') || e.textContent || e.value || '').trim().replace(/\\s+/g, ' ');
  return {
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, buttons: targets.length,
    small: targets.map((e) => [name(e), e.getBoundingClientRect().height])
                  .filter(([, height]) => height < minHeight),
    wide: [...document.body.querySelectorAll('*')].filter(visible)
            .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 0.5)
            .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')),
  };
}"""


def layout(page: Page) -> dict[str, Any]:
    """How the page fits its window: document and window widths, the buttons lower than 44 px, elements
    sticking out on the right."""
    return page.evaluate(LAYOUT_SCRIPT, MIN_TARGET_PX)


def assert_fits_a_phone(page: Page, what: str) -> dict[str, Any]:
    """No sideways scroll, and every visible button at least 44 px high."""
    found = layout(page)
    assert found["scrollWidth"] <= found["clientWidth"], (
        f"{what}: the page scrolls sideways ({found['scrollWidth']} px in {found['clientWidth']} px; "
        f"sticking out: {found['wide']})")
    assert not found["small"], f"{what}: buttons lower than {MIN_TARGET_PX} px: {found['small']}"
    return found


def computed(page: Page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate("(e, p) => getComputedStyle(e).getPropertyValue(p)", prop)


def rgb(color: str) -> tuple[int, int, int]:
    match = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", color)
    assert match, f"not an rgb() colour: {color!r}"
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def is_red(color: str) -> bool:
    red, green, blue = rgb(color)
    return red >= 150 and green <= 100 and blue <= 100


def local_text(iso: str, zone: str) -> str:
    """What ``Intl.DateTimeFormat('en-US', {dateStyle: 'medium', timeStyle: 'short'})`` shows for ``iso`` in
    ``zone``, computed here (not by the browser): ``Nov 30, 2026, 4:57 PM``."""
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    hour = moment.hour % 12 or 12
    return f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


def utc_text(iso: str) -> str:
    """The server's own rendering of a time: ``30 Nov 2026, 21:57 UTC``."""
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    return f"{moment.day} {moment:%b} {moment.year}, {moment:%H:%M} UTC"


def spaces(text: str) -> str:
    """Text with the narrow and no-break spaces ICU puts before AM/PM as plain spaces."""
    return re.sub(r"[\u00a0\u202f\u2009]", " ", text).strip()
