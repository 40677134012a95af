"""Runs the real ``lti-gateway`` binary for the browser tests: registers the test LMS, starts ``serve`` on a
free port of 127.0.0.1 in a temporary folder, and reads its metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

METRICS_TOKEN = "browser-test-metrics-token"  # GATEWAY_METRICS_TOKEN of the gateway under test
CHANNELS = ("cookie", "partitioned_cookie", "storage", "new_window")
_BINDING_LINE = re.compile(r"^lti_launch_binding_total\{([^}]*)\}\s+([-+0-9.eE]+)\s*$")
_CHANNEL_LABEL = re.compile(r'(?:^|,)\s*channel="([^"]*)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (stdlib signature)
        return None


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, probe: Callable[[], str | None], name: str, log_path: Path,
                     deadline_seconds: float) -> None:
    """Polls ``probe`` (None when ready, else what is wrong so far) until it is ready, within ``deadline_seconds``;
    fails at once when ``process`` exits. Network errors count as not ready yet."""
    deadline = time.monotonic() + deadline_seconds
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        try:
            problem = probe()
            if problem is None:
                return
            last_problem = problem
        except (urllib.error.URLError, OSError) as error:
            last_problem = str(error)
        time.sleep(0.2)  # the interval between two looks, within the deadline above
    raise RuntimeError(f"{name} not ready within {deadline_seconds} s ({last_problem}); see {log_path}")


def stop_process(process: subprocess.Popen | None) -> None:
    """Stops a server process started by the tests: SIGTERM, then SIGKILL after 10 s; nothing when it has ended."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class ServerProcess:
    """A server the tests start: its process, whose output goes to ``log_path``, and how it ends."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        #: Runs in the child before exec (e.g. to end it together with the test process).
        self.preexec: Callable[[], None] | None = None
        self._log_file = None

    def _spawn(self, arguments: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Starts ``arguments`` with its output appended to the log."""
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(arguments, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        return self.process

    def stop(self) -> None:
        """Stops it (SIGTERM, then SIGKILL after 10 s) and closes its log."""
        stop_process(self.process)
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class GatewayProcess(ServerProcess):
    """One gateway: its environment, its command line, and its ``serve`` process."""

    def __init__(self, binary: Path, workdir: Path, port: int, log_path: Path) -> None:
        super().__init__(log_path)
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ)
        self.env.update({
            "GATEWAY_PUBLIC_URL": self.origin,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_DATABASE_URL": f"sqlite:{workdir / 'gateway.sqlite'}",
            "GATEWAY_KEYS_DIR": str(workdir / "keys"),
            "GATEWAY_REGISTRATION_CACHE_SECONDS": "0.1",
            "GATEWAY_METRICS_TOKEN": METRICS_TOKEN,
        })

    # ------------------------------------------------------------- command line

    def cli(self, *args: str, timeout: float = 60) -> str:
        """Runs ``lti-gateway ARGS`` (in the temporary folder) and returns its standard output."""
        result = subprocess.run([str(self.binary), *args], cwd=self.workdir, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"$ lti-gateway {' '.join(args)}\n{result.stdout}{result.stderr}(exit {result.returncode})\n")
        if result.returncode != 0:
            raise RuntimeError(f"lti-gateway {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def add_platform(self, issuer: str, client_id: str, lms_origin: str, deployment: str) -> str:
        """Registers a platform and returns its id (the last line ``platforms add`` prints)."""
        output = self.cli("platforms", "add", "--issuer", issuer, "--client-id", client_id,
                          "--auth-url", f"{lms_origin}/auth", "--token-url", f"{lms_origin}/token",
                          "--jwks-url", f"{lms_origin}/jwks", "--deployment", deployment)
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if not lines:
            raise RuntimeError("platforms add printed no platform id")
        platform_id = lines[-1]
        if platform_id not in self.cli("platforms", "list"):
            raise RuntimeError(f"platforms list does not show {platform_id}")
        return platform_id

    # ------------------------------------------------------------- serve

    def start(self, deadline_seconds: float = 60) -> None:
        """Starts ``serve`` and waits until ``GET /healthz`` answers ``ok``."""
        process = self._spawn([str(self.binary), "serve"], env=self.env, cwd=self.workdir)

        def healthy() -> str | None:
            with urllib.request.urlopen(f"{self.origin}/healthz", timeout=2) as response:
                if response.status == 200 and response.read().decode().strip() == "ok":
                    return None
                return f"status {response.status}"

        wait_until_ready(process, healthy, "lti-gateway serve", self.log_path, deadline_seconds)

    # ------------------------------------------------------------- observation

    def get(self, path: str, timeout: float = 10, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(f"{self.origin}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode("utf-8", "replace")

    def post_form(self, path: str, fields: dict[str, str], timeout: float = 10) -> tuple[int, dict[str, str], str]:
        """A form POST from outside any browser: no ``Origin``, no ``Sec-Fetch-*`` headers, no redirects
        followed."""
        request = urllib.request.Request(f"{self.origin}{path}", data=urllib.parse.urlencode(fields).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                                         method="POST")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode("utf-8", "replace")

    def log_lines(self, reference: str) -> list[str]:
        """The lines of the gateway's log that carry request id ``reference``."""
        needle = f"gw.request.id={reference} "
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if needle in line]

    def binding_counts(self) -> dict[str, float]:
        """``lti_launch_binding_total`` by channel from ``GET /metrics`` (a missing line counts as 0)."""
        status, _, text = self.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        if status != 200:
            raise RuntimeError(f"GET /metrics answered {status}")
        counts = {channel: 0.0 for channel in CHANNELS}
        for line in text.splitlines():
            match = _BINDING_LINE.match(line.strip())
            if not match:
                continue
            label = _CHANNEL_LABEL.search(match.group(1))
            if label:
                counts[label.group(1)] = counts.get(label.group(1), 0.0) + float(match.group(2))
        return counts
