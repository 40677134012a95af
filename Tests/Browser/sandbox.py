"""The stand-alone Skillable sandbox (``lti-gateway sandbox``) for a gateway whose labs are on another origin than
its own, as Skillable's are (``*.labondemand.com``), and whose answers can be scripted (``POST control``, e.g.
``results=3``: no capacity). The sandbox inside ``serve`` has a random key and serves its labs on the gateway's own
origin."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from gateway import GatewayProcess, ServerProcess, free_port, wait_until_ready

PREFIX = "/sandbox/skillable"


class SandboxProcess(ServerProcess):
    """``lti-gateway sandbox`` on a free port of 127.0.0.1 with a key of its own."""

    def __init__(self, binary: Path, log_path: Path) -> None:
        super().__init__(log_path)
        self.binary = binary
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.key = "browser-tests-" + uuid.uuid4().hex[:12]

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
        process = self._spawn([str(self.binary), "sandbox", "--host", "127.0.0.1", "--port", str(self.port)],
                              env=dict(os.environ, SKILLABLE_API_KEY=self.key))

        def answering() -> None:
            self.control(reset="1")

        wait_until_ready(process, answering, "lti-gateway sandbox", self.log_path, deadline_seconds)

    def control(self, **fields: str) -> None:
        """``POST control`` with ``fields`` (``results=3``, ``reset=1``…)."""
        request = urllib.request.Request(f"{self.origin}{PREFIX}/control",
                                         data=urllib.parse.urlencode(fields).encode(),
                                         headers={"api_key": self.key}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.load(answer)
        if body.get("Status") != 1:
            raise RuntimeError(f"sandbox control {fields}: {body}")
