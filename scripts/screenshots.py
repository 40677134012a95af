#!/usr/bin/env python3
"""Retakes the README's screenshots (docs/images/*.png) in headless Chromium:

    python3 scripts/screenshots.py

(builds the gateway with `swift build --product lti-gateway` first; `--no-build` skips that, `--out DIR` writes
elsewhere, `--only NAME…` retakes some). Needs what scripts/browser-tests.sh installs: chromium, playwright,
cryptography.

It runs the browser tests' LMS (Tests/Browser/lms.py) and the real gateway on loopback like the tests do (with
the Skillable sandbox inside `serve`), and for "no capacity" a second gateway whose Skillable is the stand-alone
sandbox (`lti-gateway sandbox`, Tests/Browser/sandbox.py), whose control endpoint scripts Result 3. Every page is
taken at a desktop size (1280×800: NAME.png) and a phone's (390×844, touch, device scale 1: NAME-phone.png), as
the window's viewport, not the whole page, so that each file stays small. Times show in America/New_York, in English (en-US).
For the phone shots of a launch inside the LMS page the course page's frame is made as wide as the screen (as an
LMS's phone layout does); the gateway's own pages open as the whole window (as an LMS's phone app opens a tool).

Reference codes and times differ on every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "Browser"))
os.environ.setdefault("BROWSER_TEST_TRACE", "0")  # no Playwright trace per browser

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from gateway import GatewayProcess, free_port  # noqa: E402
from harness import FALLBACK_HEADING, LAB_TIMEOUT_MS, CookiePolicy, Journey  # noqa: E402
from lms import CLIENT_ID, DEPLOYMENT_ID, TestLMS  # noqa: E402
from sandbox import SandboxProcess  # noqa: E402
from pagecheck import (DESKTOP, PHONE, PICKER_HEADING, TOO_MANY_HEADING, fill_the_lab_quota, launch,  # noqa: E402
                       sign_in)

ZONE = "America/New_York"
SIZES = {"": DESKTOP, "-phone": PHONE}
#: On a phone, the test LMS's course page as an LMS's phone layout shows a tool: no side menu, the frame as wide
#: as the screen.
PHONE_COURSE_STYLE = ("nav{display:none} .wrap{display:block} main{padding:8px} "
                      "iframe#tool{width:100%;height:680px;box-sizing:border-box}")
#: The largest file wanted in docs/images.
MAX_BYTES = 150_000


class Scene:
    """One picture: ``take(journey, learner)`` brings the browser to it; ``policy`` is the browser's cookie rule."""

    def __init__(self, name: str, take: Callable[["Shooter", Journey, str, bool], Page],
                 policy: CookiePolicy = CookiePolicy.CHROMIUM_DEFAULT, scripted: bool = False) -> None:
        #: ``scripted``: on the gateway whose Skillable is the stand-alone sandbox (its answers scripted).
        self.name, self.take, self.policy, self.scripted = name, take, policy, scripted


class Servers:
    """A test LMS and a gateway registered with it (and the stand-alone sandbox it uses, if any)."""

    def __init__(self, binary: Path, work: Path, scripted: bool) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.lms = TestLMS(port, str(work / "lms.log"))
        self.gateway = GatewayProcess(binary, work, port, work / "gateway.log")
        self.sandbox = SandboxProcess(binary, work / "sandbox.log") if scripted else None
        try:
            if self.sandbox is not None:
                self.sandbox.configure(self.gateway)
                self.sandbox.start()
            self.lms.start()
            self.gateway.add_platform(self.lms.issuer, CLIENT_ID, self.lms.origin, DEPLOYMENT_ID)
            self.gateway.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.gateway.stop()
        self.lms.stop()
        if self.sandbox is not None:
            self.sandbox.stop()


class Shooter:
    def __init__(self, binary: Path, playwright, chromium: str, work: Path) -> None:
        self.binary, self.playwright, self.chromium, self.work = binary, playwright, chromium, work
        self.servers: dict[bool, Servers] = {}
        self.current: Servers | None = None

    def stop(self) -> None:
        for servers in self.servers.values():
            servers.stop()

    @property
    def sandbox(self) -> SandboxProcess:
        assert self.current is not None and self.current.sandbox is not None, "a scene without scripted: True"
        return self.current.sandbox

    def shoot(self, scene: Scene, out: Path) -> list[Path]:
        if scene.scripted not in self.servers:
            self.servers[scene.scripted] = Servers(self.binary, self.work / ("scripted" if scene.scripted else "main"),
                                                   scene.scripted)
        self.current = servers = self.servers[scene.scripted]
        written = []
        for suffix, size in SIZES.items():
            learner = f"{scene.name}-{uuid.uuid4().hex[:6]}"
            profile = Path(tempfile.mkdtemp(dir=self.work))
            journey = Journey(self.playwright, self.chromium, scene.policy, servers.gateway, servers.lms,
                              self.work / f"{scene.name}{suffix}", profile,
                              context_options={**size, "timezone_id": ZONE})
            try:
                page = scene.take(self, journey, learner, suffix == "-phone")
                page.wait_for_load_state("load")
                path = out / f"{scene.name}{suffix}.png"
                page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
                written.append(path)
            finally:
                journey.close()
        return written


# ------------------------------------------------------------------------------------------------- scenes

def picker(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    sign_in(journey, learner)
    launch(journey, learner, deep_link=True)
    expect(journey.page.get_by_role("heading", name=PICKER_HEADING)).to_be_visible()
    return journey.page


def picker_problem(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    page = picker(shooter, journey, learner, phone)
    page.get_by_role("button", name="Add to course").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    return page


def too_many_labs(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    sign_in(journey, learner)
    fill_the_lab_quota(journey, learner)
    expect(journey.page.get_by_role("heading", name=TOO_MANY_HEADING)).to_be_visible()
    expect(journey.page.locator("main li time").first).not_to_contain_text("UTC")
    return journey.page


def confirm_end(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    page = too_many_labs(shooter, journey, learner, phone)
    page.locator("main li button.destructive").first.click()
    expect(page.get_by_role("heading", name="End ")).to_be_visible()
    return page


def no_capacity(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    sign_in(journey, learner)
    shooter.sandbox.control(results="3")  # the next Launch answers Result 3
    answer = launch(journey, learner, "1001")
    if answer.status != 503:
        raise RuntimeError(f"no capacity: expected 503, got {answer.status}")
    expect(journey.page.get_by_role("heading")).to_contain_text("capacity")
    return journey.page


def no_labid(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    sign_in(journey, learner)
    answer = launch(journey, learner, lab=None)
    if answer.status != 400:
        raise RuntimeError(f"a link without labid: expected 400, got {answer.status}")
    expect(journey.page.get_by_role("link", name="Back to your course")).to_be_visible()
    return journey.page


def course_in_frame(journey: Journey, learner: str, scenario: str, phone: bool) -> Page:
    page = journey.page
    page.goto(journey.lms.course_url(scenario, learner), wait_until="domcontentloaded")
    if phone:  # the test LMS's page is made for desktops: give it a phone's viewport and layout
        page.evaluate("""() => { const meta = document.createElement('meta'); meta.name = 'viewport';
            meta.content = 'width=device-width, initial-scale=1'; document.head.appendChild(meta); }""")
        page.add_style_tag(content=PHONE_COURSE_STYLE)
    return page


def new_window(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    page = course_in_frame(journey, learner, "plain", phone)
    expect(journey.tool_view().get_by_role("heading", name=FALLBACK_HEADING)).to_be_visible()
    return page


def storage_launch(shooter: Shooter, journey: Journey, learner: str, phone: bool) -> Page:
    page = course_in_frame(journey, learner, "storage", phone)
    # The frame goes through the launch's pages to the sandbox's lab page.
    expect(journey.tool_view().get_by_text("This page stands in for a Skillable lab")).to_be_visible(
        timeout=LAB_TIMEOUT_MS)
    assert journey.lab_url().match(journey.tool().url), journey.tool().url
    return page


SCENES = [
    Scene("lab-picker", picker),
    Scene("lab-picker-problem", picker_problem),
    Scene("too-many-labs", too_many_labs),
    Scene("confirm-end", confirm_end),
    Scene("no-capacity", no_capacity, scripted=True),
    Scene("no-labid", no_labid),
    Scene("new-window", new_window, CookiePolicy.SAFARI_LIKE),
    Scene("storage-launch", storage_launch, CookiePolicy.SAFARI_LIKE),
]


# ------------------------------------------------------------------------------------------------- servers

def build() -> None:
    env = dict(os.environ)
    if not shutil.which("swift") and Path("/opt/swift/usr/bin/swift").exists():
        env["PATH"] = "/opt/swift/usr/bin:" + env.get("PATH", "")
    subprocess.run(["swift", "build", "--product", "lti-gateway"], cwd=REPO, env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="use the gateway binary as it is")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SCENES], help="retake only these")
    args = parser.parse_args()
    if not args.no_build:
        build()
    binary = Path(os.environ.get("LTI_GATEWAY_BINARY") or REPO / ".build/debug/lti-gateway")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not binary.is_file() or not chromium:
        print(f"needs {binary} and chromium (see scripts/browser-tests.sh)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = [s for s in SCENES if not args.only or s.name in args.only]

    work = Path(tempfile.mkdtemp(prefix="lti-screenshots-"))
    failed = False
    with sync_playwright() as playwright:
        shooter = Shooter(binary, playwright, chromium, work)
        try:
            for scene in scenes:
                for path in shooter.shoot(scene, args.out):
                    size = path.stat().st_size
                    flag = "" if size <= MAX_BYTES else f"  (over {MAX_BYTES // 1000} KB)"
                    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                    print(f"{shown}  {size / 1024:.0f} KB{flag}")
        except BaseException:
            failed = True
            print(f"failed; logs in {work}", file=sys.stderr)
            raise
        finally:
            shooter.stop()
            if not failed:
                shutil.rmtree(work, ignore_errors=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
