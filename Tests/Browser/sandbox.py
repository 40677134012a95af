"""The stand-alone Skillable sandbox (``lti-gateway sandbox``) for a gateway whose labs are on another origin than
its own, as Skillable's are (``*.labondemand.com``), and whose answers can be scripted (``POST control``, e.g.
``results=3``: no capacity). The sandbox inside ``serve`` has a random key and serves its labs on the gateway's own
origin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

from gateway import GatewayProcess, free_port, stop_process, wait_until_ready

PREFIX = "/sandbox/skillable"


class SandboxProcess:
    """``lti-gateway sandbox`` on a free port of 127.0.0.1 with a key of its own."""

    def __init__(self, binary: Path, log_path: Path) -> None:
        self.binary = binary
        self.log_path = log_path
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.key = "browser-tests-" + uuid.uuid4().hex[:12]
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file = None
        #: Runs in the child before exec (e.g. to end it together with the test process).
        self.preexec: Callable[[], None] | None = None

    @property
    def api_url(self) -> str:
        return f"{self.origin}{PREFIX}/api/v3"

    def lab_url(self) -> re.Pattern[str]:
        """Where its labs are."""
        return re.compile(rf"^{re.escape(self.origin)}{PREFIX}/lab/\d+")

    def configure(self, gateway: GatewayProcess) -> None:
        """Points ``gateway`` (before its start) at this sandbox."""
        gateway.env.update({"SKILLABLE_BASE_URL": self.api_url, "SKILLABLE_API_KEY": self.key})

    def start(self, deadline_seconds: float = 30) -> None:
        """Starts it and waits until its control endpoint answers."""
        self._log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.binary), "sandbox", "--host", "127.0.0.1", "--port", str(self.port)],
            env=dict(os.environ, SKILLABLE_API_KEY=self.key), stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, preexec_fn=self.preexec)

        def answering() -> None:
            self.control(reset="1")

        wait_until_ready(self.process, answering, "lti-gateway sandbox", self.log_path, deadline_seconds)

    def control(self, **fields: str) -> None:
        """``POST control`` with ``fields`` (``results=3``, ``reset=1``…)."""
        request = urllib.request.Request(f"{self.origin}{PREFIX}/control",
                                         data=urllib.parse.urlencode(fields).encode(),
                                         headers={"api_key": self.key}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.load(answer)
        if body.get("Status") != 1:
            raise RuntimeError(f"sandbox control {fields}: {body}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
