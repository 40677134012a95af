#!/usr/bin/env python3
"""Bounded black-box resource-exhaustion check of the LTI Gateway.

    python3 scripts/exhaustion.py --binary .build/release/lti-gateway [--json OUT]

Starts `BINARY serve` on 127.0.0.1 in a fresh temporary folder, with RLIMIT_NOFILE 1024 as on a
typical machine and short server timeouts, and tries the cheap ways a hostile client exhausts a
server: idle connections, request heads sent a byte at a time, stalled uploads, oversized and
malformed bodies, and a stalled upload during shutdown. Around each check it reads the process's
open descriptors and RSS from /proc and the kernel's TCP table, to see that nothing leaked.

Prints one `PASS|FAIL name: figures` line per check and, with --json, writes the same figures to
OUT. Exits 0 only when every check passed. Python 3 standard library only; Linux only (/proc).
Every wait is bounded and the whole run takes well under 4 minutes; the gateway and the temporary
folder are removed on every path, Ctrl-C included.
"""

import argparse
import concurrent.futures
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from blackbox import HOST, clean_environment, die_with_parent, format_value, free_port, rounded, write_json

CHILD_NOFILE = 1024          # the gateway's descriptor limit (soft = hard)
SHUTDOWN_SECONDS = 3         # GATEWAY_SHUTDOWN_SECONDS
SERVER_SETTINGS = {
    "GATEWAY_IDLE_TIMEOUT_SECONDS": "2",
    "GATEWAY_REQUEST_READ_SECONDS": "3",
    "GATEWAY_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
    "GATEWAY_MAX_CONNECTIONS": "4000",
    "GATEWAY_METRICS_TOKEN": "exhaustion-check-metrics",
}
FD_SLACK = 20                # descriptors allowed above the baseline once a check is over
RSS_SLACK_MB = 40            # RSS allowed above the baseline
HALF_CLOSED_LIMIT = 5        # gateway sockets allowed in FIN_WAIT2 or CLOSE_WAIT
START_SECONDS = 30           # deadline for GET /healthz = 200 after a start
CHECKS_STARTED_WITHIN = 120  # no check starts later into the run (a restart and a check take at most ~100 s)
FORM = "application/x-www-form-urlencoded"


class GatewayError(Exception):
    """The gateway could not be started (or restarted)."""


@dataclass
class Baseline:
    """The gateway's descriptors and RSS after a warm-up, when idle."""
    fds: int
    rss_mb: float


@dataclass
class Result:
    """The outcome of one check with the figures that decided it."""
    name: str
    passed: bool
    figures: dict = field(default_factory=dict)

    def line(self):
        figures = " ".join(f"{key}={format_value(value)}" for key, value in self.figures.items())
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {figures}"


class Gateway:
    """One `lti-gateway serve` child on 127.0.0.1, its database, keys and logs in `folder`.

    `serve` creates its signing keys on first start, so no `keys init` is needed, and with no Skillable
    or SkyPrep URL it serves its built-in sandbox: the gateway needs nothing outside this machine."""

    def __init__(self, binary, folder):
        self.binary = binary
        self.folder = folder
        self.port = None
        self.process = None
        self.stdout_path = os.path.join(folder, "serve.stdout.log")
        self.stderr_path = os.path.join(folder, "serve.stderr.log")
        self.overrides = {}  # settings of one check, over SERVER_SETTINGS

    def environment(self):
        """The child's environment: ours without gateway settings, plus the listen address, its own database
        and keys, and short timeouts."""
        env = clean_environment()
        env.update(SERVER_SETTINGS)
        env.update(self.overrides)
        env.update({
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_HOST": HOST,
            "GATEWAY_PUBLIC_URL": f"http://{HOST}:{self.port}",
            "GATEWAY_DATABASE_URL": "sqlite:" + os.path.join(self.folder, "gw.sqlite"),
            "GATEWAY_KEYS_DIR": os.path.join(self.folder, "keys"),
        })
        return env

    def start(self):
        """Starts `serve` on a free port and waits (at most START_SECONDS) for GET /healthz = 200."""
        self.port = free_port()
        with open(self.stdout_path, "ab") as stdout, open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [self.binary, "serve"], cwd=self.folder, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                preexec_fn=prepare_child, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GatewayError(f"`serve` exited with status {self.process.returncode} during start")
            status, _ = exchange(self.port, request("GET", "/healthz"), 1)
            if status == 200:
                return
            time.sleep(0.2)
        raise GatewayError(f"GET /healthz did not answer 200 within {START_SECONDS} s")

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def fd_count(self):
        """Open descriptors of the gateway process, or None when it is gone."""
        try:
            return len(os.listdir(f"/proc/{self.process.pid}/fd"))
        except OSError:
            return None

    def rss_mb(self):
        """Resident set size of the gateway process in MB, or None when it is gone."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self):
        """Ends the gateway: SIGTERM, then SIGKILL after 10 s."""
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines=15):
        """The last lines of the gateway's stdout and stderr."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            try:
                with open(path, "rb") as log:
                    tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                tail = []
            parts.append(f"--- {os.path.basename(path)} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)


def prepare_child():
    """Runs in the child before exec: the descriptor limit of a typical machine, and death with this script."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (CHILD_NOFILE, CHILD_NOFILE))
    die_with_parent()


def raise_own_descriptor_limit(needed=2048):
    """Lets this script hold more sockets than the gateway may (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def request(method, path, headers=(), body=b""):
    """A raw HTTP/1.1 request that asks the server to close afterwards; `headers` are `Name: value` strings or bytes."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    lines += [h if isinstance(h, bytes) else h.encode() for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def form_post(path, body, headers=None):
    """A form POST with a Content-Length that matches `body`, unless `headers` replaces the framing headers."""
    if headers is None:
        headers = [f"Content-Type: {FORM}", f"Content-Length: {len(body)}"]
    return request("POST", path, headers, body)


def parse_status(data):
    """The status code of a response that starts with `data`, or None."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def exchange(port, data, seconds):
    """Connects, sends `data` and reads the status line, all within `seconds`.

    Returns (status or None, outcome) with outcome one of response, closed (EOF without a response),
    reset, timeout, refused. A failed or unfinished send is ignored, since a server may answer and
    stop reading before it has everything (a 413): the answer is read all the same (for at least
    0.5 s, so the whole exchange takes at most `seconds` + 0.5).
    """
    deadline = time.monotonic() + seconds
    try:
        sock = socket.create_connection((HOST, port), timeout=seconds)
    except socket.timeout:
        return None, "timeout"
    except OSError:
        return None, "refused"
    with sock:
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock.sendall(data)
        except OSError:
            pass
        received = b""
        try:
            while b"\r\n" not in received:
                sock.settimeout(max(0.5, deadline - time.monotonic()))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except socket.timeout:
            return parse_status(received), "timeout"
        except OSError:
            status = parse_status(received)
            return status, "response" if status else "reset"
        status = parse_status(received)
        return status, "response" if status else "closed"


def open_connections(port, count, data, seconds):
    """Opens up to `count` connections within `seconds`, sends `data` on each, and returns them non-blocking."""
    deadline = time.monotonic() + seconds
    sockets = []
    try:
        while len(sockets) < count and time.monotonic() < deadline:
            sock = socket.create_connection((HOST, port), timeout=max(0.1, min(2, deadline - time.monotonic())))
            sockets.append(sock)
            sock.sendall(data)
            sock.setblocking(False)
    except OSError:
        pass
    return sockets


def watch_for_close(sockets, seconds, drip=None):
    """Waits at most `seconds` for the server to close each socket (EOF or reset), reading what it sends.

    With `drip`, sends those bytes on every open socket every 0.5 s meanwhile (a failed send means the
    server closed it). Returns, per socket, its close time in seconds (None while still open) and the
    status of any response the server sent first.
    """
    start = time.monotonic()
    end = start + seconds
    closed_after = {sock: None for sock in sockets}
    received = {sock: b"" for sock in sockets}
    open_sockets = set(sockets)

    def mark_closed(sock):
        closed_after[sock] = time.monotonic() - start
        open_sockets.discard(sock)
        selector.unregister(sock)

    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        next_drip = start + 0.5
        while open_sockets and time.monotonic() < end:
            if drip is not None and time.monotonic() >= next_drip:
                next_drip += 0.5
                for sock in list(open_sockets):
                    try:
                        sock.send(drip)
                    except BlockingIOError:
                        pass
                    except OSError:
                        mark_closed(sock)
            wake = min(end, next_drip) if drip is not None else end
            for key, _ in selector.select(max(0.0, wake - time.monotonic())):
                sock = key.fileobj
                try:
                    chunk = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    received[sock] = (received[sock] + chunk)[:256]  # enough for the status line
                else:
                    mark_closed(sock)
    return [closed_after[sock] for sock in sockets], [parse_status(received[sock]) for sock in sockets]


def close_all(sockets):
    """Closes every socket, ignoring errors."""
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


TCP_STATES = {"01": "ESTABLISHED", "05": "FIN_WAIT2", "08": "CLOSE_WAIT"}


def gateway_sockets(port):
    """Sockets whose local port is `port` (the gateway's side of its connections), counted by state
    (ESTABLISHED, FIN_WAIT2, CLOSE_WAIT; others are not counted), from /proc/net/tcp and tcp6."""
    counts = Counter({name: 0 for name in TCP_STATES.values()})
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] in TCP_STATES:
                        counts[TCP_STATES[fields[3]]] += 1
        except OSError:
            pass
    return counts


def wait_for(condition, seconds, interval=0.2):
    """Polls `condition()` until it is true or `seconds` have passed; returns (whether it became true, seconds)."""
    start = time.monotonic()
    while True:
        if condition():
            return True, time.monotonic() - start
        if time.monotonic() - start >= seconds:
            return False, time.monotonic() - start
        time.sleep(interval)


def warm_up(gateway):
    """About 50 ordinary requests (GET /healthz, /, /lti/config), then the idle gateway's descriptors and RSS."""
    deadline = time.monotonic() + 15
    for _ in range(17):
        for path in ("/healthz", "/", "/lti/config"):
            if time.monotonic() < deadline:
                exchange(gateway.port, request("GET", path), 2)
    time.sleep(1)
    fds, rss_mb = gateway.fd_count(), gateway.rss_mb()
    if fds is None or rss_mb is None:
        raise GatewayError(f"`serve` exited with status {gateway.process.returncode} during the warm-up")
    return Baseline(fds, rss_mb)


def fds_settled(gateway, baseline, seconds):
    """Waits up to `seconds` for the descriptors to come back within FD_SLACK of the baseline (and the process
    to live on); returns (ok, descriptors, seconds)."""
    limit = baseline.fds + FD_SLACK
    ok, waited = wait_for(lambda: (gateway.fd_count() or 0) <= limit and gateway.alive, seconds)
    return ok, gateway.fd_count(), waited


def check_idle_flood(gateway, baseline):
    """1,100 connections that send nothing: while they are open a fresh client gets GET /healthz = 200
    within 10 s, the process lives on, and once they are closed the descriptors come back within 10 s.

    The connects are paced (50 every 50 ms): a burst overflows the listen backlog, and the kernel then
    silently drops the surplus, which the gateway never sees."""
    idle = []
    try:
        for _ in range(1100):
            try:
                sock = socket.socket()
            except OSError:  # this script's own descriptor limit
                break
            idle.append(sock)
            sock.setblocking(False)
            sock.connect_ex((HOST, gateway.port))
            if len(idle) % 50 == 0:
                time.sleep(0.05)
        fds_during = gateway.fd_count()
        server_established = gateway_sockets(gateway.port)["ESTABLISHED"]
        start = time.monotonic()
        attempts, status = 0, None
        while time.monotonic() - start < 10 and status != 200:
            attempts += 1
            left = 10 - (time.monotonic() - start)
            status, _ = exchange(gateway.port, request("GET", "/healthz"), min(2, max(0.1, left)))
            if status != 200:
                time.sleep(0.1)
        healthz_seconds = time.monotonic() - start
        fds_during = max(fds_during or 0, gateway.fd_count() or 0)
        alive = gateway.alive
    finally:
        close_all(idle)
    fds_ok, fds_after, settle_seconds = fds_settled(gateway, baseline, 10)
    passed = len(idle) == 1100 and status == 200 and healthz_seconds <= 10 and alive and fds_ok
    return Result("idle_flood", passed, {
        "idle_connections": len(idle), "server_established": server_established, "fds_before": baseline.fds,
        "fds_during": fds_during, "fds_after": fds_after, "fds_settle_s": settle_seconds,
        "healthz_status": status, "healthz_s": healthz_seconds, "healthz_attempts": attempts, "alive": alive,
        "rss_before_mb": baseline.rss_mb, "rss_after_mb": gateway.rss_mb()})


def check_slowloris_head(gateway, baseline):
    """20 request heads that never end (one more header byte every 0.5 s): the server closes each within 10 s."""
    sockets = open_connections(gateway.port, 20, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 10)
    try:
        closed_after, statuses = watch_for_close(sockets, 12, drip=b"a")
    finally:
        close_all(sockets)
    return closing_result("slowloris_head", 20, sockets, closed_after, statuses)


def check_stalled_upload(gateway, baseline):
    """10 POSTs that declare 50,000 body bytes (within the launch form limit), send 10 and stall: the server closes each within 10 s."""
    head = form_post("/lti/launch", b"", [f"Content-Type: {FORM}", "Content-Length: 50000"])
    sockets = open_connections(gateway.port, 10, head + b"id_token=a", 10)
    try:
        closed_after, statuses = watch_for_close(sockets, 12)
    finally:
        close_all(sockets)
    return closing_result("stalled_upload", 10, sockets, closed_after, statuses)


def closing_result(name, wanted, sockets, closed_after, statuses):
    """PASS when all `wanted` connections were opened and the server closed every one within 10 s."""
    closed = [t for t in closed_after if t is not None]
    passed = len(sockets) == wanted and len(closed) == wanted and max(closed) <= 10
    return Result(name, passed, {
        "connections": len(sockets), "closed": len(closed), "still_open_after_12s": len(sockets) - len(closed),
        "first_close_s": min(closed) if closed else None, "last_close_s": max(closed) if closed else None,
        "statuses": dict(Counter(str(s) for s in statuses if s is not None))})


def check_oversized_bodies(gateway, baseline):
    """100 POSTs that declare and stream 2 MB each (413 expected): afterwards descriptors, half-closed
    sockets and RSS come back within 15 s."""
    body = b"id_token=" + b"A" * (2_000_000 - len("id_token="))
    data = form_post("/lti/launch", body)
    rss_start = gateway.rss_mb()
    outcomes = Counter()
    sent = 0
    start = time.monotonic()
    while sent < 100 and time.monotonic() - start < 25:
        status, outcome = exchange(gateway.port, data, 10)
        outcomes[str(status) if status else outcome] += 1
        sent += 1
    send_seconds = time.monotonic() - start

    def settled():
        states = gateway_sockets(gateway.port)
        return ((gateway.fd_count() or 0) <= baseline.fds + FD_SLACK and gateway.alive
                and states["FIN_WAIT2"] + states["CLOSE_WAIT"] <= HALF_CLOSED_LIMIT)

    settled_ok, settle_seconds = wait_for(settled, 15)
    states = gateway_sockets(gateway.port)
    rss_after = gateway.rss_mb()
    passed = (sent == 100 and settled_ok and rss_after is not None
              and rss_after <= baseline.rss_mb + RSS_SLACK_MB)
    return Result("oversized_bodies", passed, {
        "requests": sent, "send_s": send_seconds, "outcomes": dict(outcomes),
        "fds_before": baseline.fds, "fds_after": gateway.fd_count(), "settle_s": settle_seconds,
        "fin_wait2": states["FIN_WAIT2"], "close_wait": states["CLOSE_WAIT"],
        "rss_before_mb": baseline.rss_mb, "rss_start_mb": rss_start, "rss_after_mb": rss_after, "alive": gateway.alive})


def malformed_requests():
    """About 60 malformed POSTs: (label, path, raw request, whether its framing (chunked encoding) is broken)."""
    fields = b"iss=%s&login_hint=%s&target_link_uri=%s&id_token=%s&state=%s&session=%s&lab=%s&score_maximum=%s"
    chunked = [f"Content-Type: {FORM}", "Transfer-Encoding: chunked"]
    framing = {
        "chunk_bad_hex": (chunked, b"zz\r\nid_token=a\r\n0\r\n\r\n"),
        "chunk_missing_crlf": (chunked, b"5\r\nstateX0\r\n\r\n"),
        "chunk_size_overflow": (chunked, b"ffffffffffffffffff\r\nid_token=a\r\n0\r\n\r\n"),
        "chunk_longer_than_declared": (chunked, b"3\r\nid_token=abc\r\n0\r\n\r\n"),
        "chunk_negative_size": (chunked, b"-5\r\nstate\r\n0\r\n\r\n"),
        "chunked_with_content_length": (chunked + ["Content-Length: 15"], b"5\r\nstate\r\n0\r\n\r\n"),
    }
    bodies = {
        "bad_percent_encoding": fields % ((b"%zz", b"%4", b"%", b"%E0%A4%A", b"%G1", b"%%", b"%-1", b"%+9")),
        "nul_and_control_bytes":
            fields % ((b"a\x00b", b"\x01\x02", b"\x1b[0m", b"a\x00b", b"\x7f\x08", b"\r\n", b"\t", b"\x00")),
        "percent_encoded_control": fields % ((b"%00", b"%01%1F", b"%0D%0A", b"x%00y", b"%7F", b"%00", b"%1B", b"%00")),
        "garbage_id_token": b"id_token=abc.def.ghi&state=x",
        "non_utf8_bytes":
            fields % ((b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80", b"\x80", b"\xfe")),
        "percent_encoded_non_utf8":
            fields % ((b"%FF", b"%C3%28", b"%E2%82", b"%ED%A0%80", b"%C0%AF", b"%F8%88", b"%80", b"%FE")),
        "token_over_max_bytes": b"id_token=" + b"a." * 40000 + b"&state=x",
        "duplicate_fields": b"id_token=a.b.c&id_token=d.e.f&state=x&state=y&session=1&session=2&lab=1&lab=%zz",
        "empty_names_and_values": b"&&=&=x&id_token&state=&&&",
    }
    cases = []
    for path in ("/lti/launch", "/lti/login", "/lti/deep-link/select", "/lti/labs/launch"):
        for label, (headers, body) in framing.items():
            cases.append((label, path, form_post(path, body, headers), True))
        for label, body in bodies.items():
            cases.append((label, path, form_post(path, body), False))
    return cases


def check_malformed_bodies(gateway, baseline):
    """About 60 malformed POSTs: none gets a 5xx; only a broken chunked framing may be answered by just a
    close; afterwards RSS within RSS_SLACK_MB of the baseline and the process alive."""
    cases = malformed_requests()
    rss_start = gateway.rss_mb()
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda case: exchange(gateway.port, case[2], 5), cases))
    seen, failures = Counter(), []
    for (label, path, _, framing), (status, outcome) in zip(cases, answers):
        seen[str(status) if status else outcome] += 1
        acceptable = (status is not None and status < 500) or (framing and outcome in ("closed", "reset"))
        if not acceptable:
            failures.append(f"{path}:{label}={status or outcome}")
    rss_after = gateway.rss_mb()
    alive = gateway.alive
    passed = not failures and alive and rss_after is not None and rss_after <= baseline.rss_mb + RSS_SLACK_MB
    return Result("malformed_bodies", passed, {
        "requests": len(cases), "seen": dict(seen), "failures": failures,
        "rss_before_mb": baseline.rss_mb, "rss_start_mb": rss_start, "rss_after_mb": rss_after, "alive": alive})


def requests_reading(gateway):
    """The gateway's `gateway_requests_reading` gauge (requests whose body is being read), or None."""
    message = ("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               f"Authorization: Bearer {SERVER_SETTINGS['GATEWAY_METRICS_TOKEN']}\r\n\r\n").encode()
    try:
        with socket.create_connection((HOST, gateway.port), timeout=2) as connection:
            connection.sendall(message)
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
    except OSError:
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("gateway_requests_reading "):
            return float(line.split()[1])
    return None


def check_shutdown_with_stalled_upload(gateway, baseline):
    """SIGTERM while an upload stalls: the process exits within GATEWAY_SHUTDOWN_SECONDS + 5 s
    (it is killed after 15 s). The gateway is restarted for this check with request-read and idle timeouts of
    120 s, so that only the shutdown deadline can end the upload."""
    gateway.stop()
    gateway.overrides = {"GATEWAY_REQUEST_READ_SECONDS": "120", "GATEWAY_IDLE_TIMEOUT_SECONDS": "120"}
    gateway.start()
    head = form_post("/lti/launch", b"", [f"Content-Type: {FORM}", "Content-Length: 50000"])
    sockets = open_connections(gateway.port, 1, head + b"id_token=", 5)
    try:
        deadline = time.monotonic() + 10  # the server reads the head and waits for the body
        while time.monotonic() < deadline and requests_reading(gateway) != 1:
            time.sleep(0.05)
        reading = requests_reading(gateway)
        start = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(15)
            killed = False
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait(5)
            killed = True
        seconds = time.monotonic() - start
    finally:
        close_all(sockets)
    passed = len(sockets) == 1 and reading == 1 and not killed and seconds <= SHUTDOWN_SECONDS + 5
    return Result("shutdown_with_stalled_upload", passed, {
        "stalled_connections": len(sockets), "requests_reading": reading, "exit_s": seconds, "limit_s": SHUTDOWN_SECONDS + 5,
        "killed_after_15s": killed, "exit_status": gateway.process.returncode})


CHECKS = [
    ("idle_flood", check_idle_flood),
    ("slowloris_head", check_slowloris_head),
    ("stalled_upload", check_stalled_upload),
    ("oversized_bodies", check_oversized_bodies),
    ("malformed_bodies", check_malformed_bodies),
    ("shutdown_with_stalled_upload", check_shutdown_with_stalled_upload),
]


def run_checks(gateway):
    """Starts the gateway and runs every check in order. A check that finds the gateway gone (a crash in
    the check before) gets a freshly started one and a new baseline, noted in its figures."""
    run_start = time.monotonic()
    gateway.start()
    baseline = warm_up(gateway)
    print(f"gateway pid {gateway.process.pid} on port {gateway.port}: baseline fds={baseline.fds} "
          f"rss_mb={baseline.rss_mb:.1f}", file=sys.stderr)
    results = []
    for name, check in CHECKS:
        if time.monotonic() - run_start > CHECKS_STARTED_WITHIN:
            results.append(Result(name, False, {"skipped": "time budget spent"}))
            continue
        restarted = None
        if not gateway.alive:
            restarted = f"gateway had exited with status {gateway.process.returncode}; restarted"
            print(gateway.log_tail(), file=sys.stderr)
            try:
                gateway.start()
                baseline = warm_up(gateway)
            except GatewayError as failure:
                results.append(Result(name, False, {"error": f"restart failed: {failure}"}))
                print(results[-1].line(), flush=True)
                continue
        result = check(gateway, baseline)
        if restarted:
            result.figures["note"] = restarted
        print(result.line(), flush=True)
        results.append(result)
    return results


def write_results(path, binary, results, error=None):
    """Writes the figures of every check (and a setup error, if any) to `path`; False when it cannot."""
    return write_json(path, {
        "binary": binary, "passed": error is None and all(r.passed for r in results), "error": error,
        "checks": [{"name": r.name, "passed": r.passed, "figures": rounded(r.figures)} for r in results]})


def exit_on_sigterm(signum, frame):
    """Turns SIGTERM into an ordinary exit, so the clean-up below runs."""
    raise SystemExit(128 + signum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the lti-gateway executable to check")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    signal.signal(signal.SIGTERM, exit_on_sigterm)

    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        error = f"not an executable file: {binary}"
        print(f"FAIL setup: {error}")
        if args.json:
            write_results(args.json, binary, [], error)
        return 2

    raise_own_descriptor_limit()
    folder = tempfile.mkdtemp(prefix="lti-exhaustion-")
    gateway = Gateway(binary, folder)
    results, error = [], None
    try:
        results = run_checks(gateway)
    except GatewayError as failure:
        error = str(failure)
        print(f"FAIL setup: {error}")
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        error = "interrupted"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if error or not all(r.passed for r in results):
            print(gateway.log_tail(), file=sys.stderr)
        gateway.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if args.json and not write_results(args.json, binary, results, error):
        return 2
    if error == "interrupted":
        return 130
    return 0 if error is None and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
