"""Fixtures of the browser tests: the test LMS and the real gateway (once per run), a fresh Chromium
profile per test, the output folder with screenshots and logs, and a time limit per test.

Environment:
  LTI_GATEWAY_BINARY     the gateway binary (default: .build/debug/lti-gateway of the repository)
  BROWSER_TEST_OUTPUT    output folder (default: browser-test-output/ at the repository root)
  CHROMIUM               the Chromium binary (default: `chromium` on PATH)
  BROWSER_TEST_LIMIT     seconds one test may take (default: 120)
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import GatewayProcess, free_port  # noqa: E402
from harness import CookiePolicy, Journey, Stack  # noqa: E402
from lms import CLIENT_ID, CLOUD_CLIENT_ID, DEPLOYMENT_ID, TestLMS  # noqa: E402
from sandbox import SandboxProcess  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_LIMIT_SECONDS = int(os.environ.get("BROWSER_TEST_LIMIT", "120"))


def output_root() -> Path:
    return Path(os.environ.get("BROWSER_TEST_OUTPUT") or REPO_ROOT / "browser-test-output").resolve()


# --------------------------------------------------------------------------------------------- run limits

class TimeLimitExceeded(Exception):
    """A test ran longer than BROWSER_TEST_LIMIT seconds."""


def _on_alarm(signum, frame):
    raise TimeLimitExceeded(f"test exceeded {TEST_LIMIT_SECONDS} s")


def _on_terminate(signum, frame):
    # An outer time limit (or CI) stops the run: let the fixtures stop the gateway and the browsers.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TEST_LIMIT_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


OUTPUT_MARKER = ".lti-gateway-browser-tests"


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _on_terminate)
    out = output_root()
    if out.exists() and any(out.iterdir()):
        if not (out / OUTPUT_MARKER).exists():
            raise pytest.UsageError(f"{out} is not empty and is not an earlier output of these tests; "
                                    "choose another BROWSER_TEST_OUTPUT")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text("Screenshots and logs of Tests/Browser; replaced on every run.\n")


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"Screenshots and logs: {output_root()}")


try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # resolved here, not in the forked child
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM when the test process dies (no orphaned gateway)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------------------------- the servers

@pytest.fixture(scope="session")
def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
    return path


def gateway_binary() -> Path:
    binary = Path(os.environ.get("LTI_GATEWAY_BINARY") or REPO_ROOT / ".build/debug/lti-gateway")
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `swift build --product lti-gateway` first", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    binary = gateway_binary()
    out = output_root()
    workdir = Path(tempfile.mkdtemp(prefix="lti-browser-gateway-"))
    gateway_port = free_port()
    lms = TestLMS(gateway_port, str(out / "lms.log"))
    lms.start()
    gateway = GatewayProcess(binary, workdir, gateway_port, out / "gateway.log")
    gateway.preexec = _die_with_parent
    try:
        platform_id = gateway.add_platform(lms.issuer, CLIENT_ID, lms.origin, DEPLOYMENT_ID)
        # Canvas cloud: the same issuer, another registration whose auth endpoint (and so its storage origin)
        # is on another origin than the course page.
        cloud_platform_id = gateway.add_platform(lms.issuer, CLOUD_CLIENT_ID, lms.cloud_origin, DEPLOYMENT_ID)
        gateway.start()
        print(f"\ngateway {gateway.origin} (platforms {platform_id}, {cloud_platform_id}), test LMS {lms.origin} "
              f"(cloud auth and storage {lms.cloud_origin}, another site {lms.foreign_origin}), output {out}")
        yield Stack(gateway, lms, platform_id, out, cloud_platform_id)
    finally:
        gateway.stop()
        lms.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def offsite_stack() -> Iterator[Stack]:
    """A second gateway (and test LMS) whose Skillable is the stand-alone sandbox: its labs are on another origin
    than the gateway's, as Skillable's are, and its answers can be scripted (``Stack.sandbox.control``). Started
    only for the tests that ask for it; its logs are in ``offsite/`` of the output."""
    binary = gateway_binary()
    out = output_root() / "offsite"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lti-browser-offsite-"))
    sandbox = SandboxProcess(binary, out / "sandbox.log")
    sandbox.preexec = _die_with_parent
    gateway_port = free_port()
    lms = TestLMS(gateway_port, str(out / "lms.log"))
    gateway = GatewayProcess(binary, workdir, gateway_port, out / "gateway.log")
    gateway.preexec = _die_with_parent
    sandbox.configure(gateway)
    try:
        sandbox.start()
        lms.start()
        platform_id = gateway.add_platform(lms.issuer, CLIENT_ID, lms.origin, DEPLOYMENT_ID)
        gateway.start()
        print(f"\noffsite gateway {gateway.origin}, its sandbox {sandbox.origin}, test LMS {lms.origin}")
        yield Stack(gateway, lms, platform_id, out, sandbox=sandbox)
    finally:
        gateway.stop()
        lms.stop()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def profiles_root() -> Iterator[Path]:
    """The folder of all browser profiles of the run; removed after the last browser has stopped."""
    root = Path(tempfile.mkdtemp(prefix="lti-browser-profiles-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def playwright_driver(profiles_root: Path):
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


# --------------------------------------------------------------------------------------------- per test

@pytest.fixture
def output_dir(request, stack: Stack) -> Path:
    path = stack.out_dir / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def learner(request) -> str:
    """A learner id of its own for each test (labs of one learner do not mix between tests)."""
    return f"learner-{request.node.name.split('_')[1]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def open_browser(request, stack: Stack, chromium: str, playwright_driver, profiles_root: Path, output_dir: Path
                 ) -> Iterator[Callable[..., Journey]]:
    """Opens a fresh Chromium profile with a cookie policy; every browser opened is closed after the test
    (after a failure, every open window is photographed first)."""
    journeys: list[Journey] = []
    profiles = Path(tempfile.mkdtemp(dir=profiles_root))
    stack.lms.take_errors()

    def open_one(policy: CookiePolicy, label: str | None = None, on: Stack | None = None,
                 **context_options) -> Journey:
        """``on``: another stack than ``stack`` (``offsite_stack``); ``context_options``: Playwright's options of
        the browser (``viewport``, ``is_mobile``, ``timezone_id``, ``java_script_enabled``…), none by default."""
        out = output_dir / (label or policy.value)
        profile = Path(tempfile.mkdtemp(dir=profiles))
        servers = on or stack
        journey = Journey(playwright_driver, chromium, policy, servers.gateway, servers.lms, out, profile,
                          context_options=context_options)
        journeys.append(journey)
        return journey

    try:
        yield open_one
    finally:
        failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
        try:
            for journey in journeys:
                if failed:
                    journey.shot_all("at-failure")
                journey.close()
        finally:
            shutil.rmtree(profiles, ignore_errors=True)
        print(f"\nscreenshots: {output_dir}")
