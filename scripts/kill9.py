#!/usr/bin/env python3
"""Bounded black-box crash-consistency check of the LTI Gateway: SIGKILL under launch load.

    python3 scripts/kill9.py --binary .build/debug/lti-gateway [--rounds 5] [--seconds 4]
                             [--postgres URL] [--json OUT]

Acts as an LMS itself (an RSA-2048 key, its JWKS served on 127.0.0.1, the platform registered through
`BINARY platforms add`), starts `BINARY serve` on 127.0.0.1 in a fresh temporary folder (SQLite there, or
the PostgreSQL database of --postgres) and, in every round, drives full LTI resource-link launches
(GET /lti/login -> 302, POST /lti/launch with a signed id_token -> 303 into the sandbox lab) from 8 client
threads, sends the gateway SIGKILL after a random 40-80 % of the round while requests are in flight,
restarts it on the same database and checks:

  * every launch answered 303 before the kill is in the launch records, under its reference id
    (X-Request-Id); read from SQLite directly (read-only), or on PostgreSQL with `psql` when it is
    installed (the CLI has no command that lists launches; without psql this one check is skipped);
  * replaying each such launch (same id_token, state and cookie) after the restart is refused (4xx);
  * SQLite only: PRAGMA integrity_check answers ok;
  * how long the restart took until GET /healthz = 200, and how many launches stayed `pending`.

Prints one line per round and a summary line
`PASS|FAIL kill9: rounds=N launches_303=X recorded=Y missing=Z replays_accepted=R integrity=ok pending=P
restart_s_max=T`, and with --json writes the figures to OUT. Exits 0 only when no 303 launch is missing, no
replay was accepted and integrity is ok in every round, and every round ran (1 when a check failed, 2 on a
setup error or a failed restart, 130 on Ctrl-C, 143 on SIGTERM). A round also fails when it got no 303 at all,
or when a launch the killed gateway had recorded (its answer cut off by the kill) is accepted again on replay.

Also reported, not failed: what became of the launches the kill cut short (their records by learner, and
their replays: a 303 is fine when the gateway died before consuming the state), logins answered 302 whose
launch could only be posted after the restart (they should still launch), and error lines in the log.

On PostgreSQL the gateway seals its signing keys with GATEWAY_KEY_ENCRYPTION_KEY: taken from this
script's environment when set there (needed to reuse a database that already holds keys), otherwise 32
random bytes. The run's platform, learners and launch records stay in that database. Python 3 standard
library plus `cryptography` (and `psql`, when present, for PostgreSQL); Linux only (PR_SET_PDEATHSIG).
Every wait is bounded and the run has a time budget (30 s + rounds x (seconds + 38 s); no round starts
without 60 s of it left); the defaults take about 25 s with a debug build. The gateway (which also dies
with this script), the LMS server and the temporary folder are removed on every path, Ctrl-C included.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from blackbox import HOST, clean_environment, die_with_parent, format_value, free_port, rounded, write_json

CLIENTS = 8                  # client threads per round
START_SECONDS = 30           # deadline for GET /healthz = 200 after a start
CLI_SECONDS = 60             # deadline of one `platforms add`
HTTP_SECONDS = 10            # deadline of one HTTP exchange (the sandbox answers a launch in milliseconds)
DRAIN_SECONDS = HTTP_SECONDS + 5  # how long the clients may take to notice the kill
REPLAY_SECONDS = 60          # all replays of one round
BUDGET_BASE, BUDGET_PER_ROUND = 30, 38  # the run's time budget: BASE + rounds * (seconds + PER_ROUND); 250 s by default
ROUND_RESERVE = 60           # a round starts only with this much (plus its load) left of the budget
PSQL_SECONDS = 30
KILL_BETWEEN = (0.4, 0.8)    # the kill comes after this fraction of the round
CLIENT_ID = "kill9-tool"
DEPLOYMENT_ID = "kill9-deployment"
LAB_ID = "1001"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
STATE_COOKIE_PREFIX = "__Host-lti_gw_state_"


class SetupError(Exception):
    """The gateway or the LMS could not be set up (or the gateway not restarted)."""


#: Set when the run ends (Ctrl-C, SIGTERM, an error): client threads start no new flow.
STOP = threading.Event()
#: Client threads of the current round, joined on the way out.
CLIENT_THREADS = []


# --------------------------------------------------------------------------------------------- the LMS


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_to_b64url(value):
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Platform:
    """The LMS side: an RSA key, its JWKS served over HTTP on 127.0.0.1, and an id_token signer."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "kill9-" + uuid.uuid4().hex[:12]
        self.server = None
        self.thread = None
        self._origin = None
        self.jwks_requests = 0

    def start(self):
        platform = self
        numbers = self.key.public_key().public_numbers()
        body = json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                                     "n": int_to_b64url(numbers.n), "e": int_to_b64url(numbers.e)}]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 (stdlib signature); quiet
                pass

            def do_GET(self):  # noqa: N802 (stdlib naming)
                if urllib.parse.urlsplit(self.path).path == "/jwks":
                    platform.jwks_requests += 1
                    status, data, kind = 200, body, "application/json"
                else:
                    status, data, kind = 404, b"not found", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self._origin = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.2,), name="kill9-lms", daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    @property
    def origin(self):
        return self._origin

    @property
    def issuer(self):
        return self.origin

    def sign(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def id_token(self, subject, nonce, launch_url):
        """A resource-link launch of lab LAB_ID for learner `subject`."""
        now = int(time.time())
        return self.sign({
            "iss": self.issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": subject,
            "iat": now, "exp": now + 300, "nonce": nonce, "name": f"Learner {subject}",
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": DEPLOYMENT_ID,
            LTI + "target_link_uri": launch_url,
            LTI + "resource_link": {"id": "kill9-link", "title": "Crash lab"},
            LTI + "roles": [LEARNER_ROLE],
            LTI + "context": {"id": "kill9-course", "title": "Crash course"},
            LTI + "custom": {"labid": LAB_ID},
        })


# --------------------------------------------------------------------------------------------- the gateway


def prepare_child():
    """Runs in the child before exec: it dies with this script, even when this script is killed."""
    die_with_parent()


class Gateway:
    """`lti-gateway serve` (and its CLI) on 127.0.0.1, with one database, keys folder and log in `folder`."""

    def __init__(self, binary, folder, postgres_url=None):
        self.binary = binary
        self.folder = folder
        self.postgres_url = postgres_url
        self.sqlite_path = os.path.join(folder, "gw.sqlite")
        self.port = free_port()
        self.process = None
        self.log_path = os.path.join(folder, "serve.log")
        self.encryption_key = (os.environ.get("GATEWAY_KEY_ENCRYPTION_KEY")
                               or base64.b64encode(os.urandom(32)).decode("ascii"))

    @property
    def origin(self):
        return f"http://{HOST}:{self.port}"

    def environment(self):
        env = clean_environment()
        env.update({
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_HOST": HOST,
            "GATEWAY_PUBLIC_URL": self.origin,
            "GATEWAY_DATABASE_URL": self.postgres_url or ("sqlite:" + self.sqlite_path),
            "GATEWAY_KEYS_DIR": os.path.join(self.folder, "keys"),
            "GATEWAY_METRICS_TOKEN": "kill9-metrics-" + uuid.uuid4().hex[:8],
            "GATEWAY_LOG_LEVEL": "warning",
        })
        if self.postgres_url:
            env["GATEWAY_KEY_ENCRYPTION_KEY"] = self.encryption_key
        return env

    def cli(self, *arguments):
        """Runs `BINARY arguments...` with the serve environment; returns its stdout, raises SetupError on failure."""
        try:
            done = subprocess.run([self.binary, *arguments], cwd=self.folder, env=self.environment(),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=CLI_SECONDS,
                                  preexec_fn=prepare_child)
        except subprocess.TimeoutExpired:
            raise SetupError(f"`{arguments[0]} {arguments[1]}` took longer than {CLI_SECONDS} s") from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            raise SetupError(f"`{' '.join(arguments[:2])}` exited with status {done.returncode}: "
                             f"{message[-1] if message else '(no output)'}")
        return done.stdout.decode("utf-8", "replace")

    def start(self):
        """Starts `serve` and waits (at most START_SECONDS) for GET /healthz = 200; returns the seconds it took."""
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- kill9: serve started at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [self.binary, "serve"], cwd=self.folder, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=prepare_child, start_new_session=True)
        deadline = started + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(f"`serve` exited with status {self.process.returncode} during start")
            if healthz(self.port):
                return time.monotonic() - started
            time.sleep(0.05)
        raise SetupError(f"GET /healthz did not answer 200 within {START_SECONDS} s")

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL, and waits for the process to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """SIGTERM (a graceful stop), then SIGKILL after 15 s."""
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_errors(self, since):
        """Lines logged at level error or critical from byte `since` on: (count, the first few distinct messages)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return 0, []
        count, messages = 0, []
        for line in text.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[1] in ("error", "critical"):
                count += 1
                message = parts[3][:200]
                if message not in messages and len(messages) < 5:
                    messages.append(message)
        return count, messages

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as log:
                tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            tail = []
        return f"--- serve log (last {len(tail)} lines)\n" + "\n".join(tail) if tail else "--- serve log: empty"


def healthz(port):
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False


# --------------------------------------------------------------------------------------------- launches


@dataclass
class Flow:
    """One learner's login and launch, and what the gateway answered."""
    subject: str
    login_status: object = None    # int, or an error name
    id_token: str = ""
    state: str = ""
    cookie: str = ""
    status: object = None          # the launch's status, or an error name; None when it was not posted
    reference: str = ""            # X-Request-Id of the launch
    location: str = ""
    replay_status: object = None


def exchange(port, method, path, body=None, headers=None):
    """One HTTP exchange on its own connection: (status, headers as a list of pairs, body) or raises OSError."""
    connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_SECONDS)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheaders(), data
    finally:
        connection.close()


def error_name(error):
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(error, http.client.RemoteDisconnected):
        return "closed"
    return type(error).__name__


def header(headers, name):
    name = name.lower()
    return next((value for key, value in headers if key.lower() == name), "")


def login(gateway, platform, flow):
    """GET /lti/login; fills in state, nonce-signed id_token and the state cookie. False when it did not work."""
    launch_url = gateway.origin + "/lti/launch"
    query = urllib.parse.urlencode({"iss": platform.issuer, "login_hint": flow.subject, "target_link_uri": launch_url,
                                    "client_id": CLIENT_ID, "lti_deployment_id": DEPLOYMENT_ID})
    try:
        status, headers, _ = exchange(gateway.port, "GET", "/lti/login?" + query)
    except (OSError, http.client.HTTPException) as error:
        flow.login_status = error_name(error)
        return False
    flow.login_status = status
    if status != 302:
        return False
    location = urllib.parse.urlsplit(header(headers, "Location"))
    params = dict(urllib.parse.parse_qsl(location.query))
    state, nonce = params.get("state", ""), params.get("nonce", "")
    cookies = []
    for key, value in headers:
        if key.lower() == "set-cookie":
            pair = value.split(";", 1)[0].strip()
            if pair.startswith(STATE_COOKIE_PREFIX):
                cookies.append(pair)
    if not (state and nonce and cookies and location.geturl().startswith(platform.origin + "/auth")):
        flow.login_status = "302_incomplete"
        return False
    flow.state = state
    flow.cookie = "; ".join(cookies)
    flow.id_token = platform.id_token(flow.subject, nonce, launch_url)
    return True


def post_launch(gateway, flow):
    """POST /lti/launch with the flow's id_token, state and cookie: (status or error name, reference, location)."""
    body = urllib.parse.urlencode({"id_token": flow.id_token, "state": flow.state}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": flow.cookie}
    try:
        status, answer, _ = exchange(gateway.port, "POST", "/lti/launch", body, headers)
    except (OSError, http.client.HTTPException) as error:
        return error_name(error), "", ""
    return status, header(answer, "X-Request-Id"), header(answer, "Location")


# --------------------------------------------------------------------------------------------- the records


def sqlite_records(path, subject_prefix):
    """(id, subject, outcome) of every launch record of learners whose subject starts with `subject_prefix`,
    read from the SQLite file opened read-only."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute("SELECT id, subject, outcome FROM launches WHERE substr(subject, 1, ?) = ?",
                                  (len(subject_prefix), subject_prefix)).fetchall()
    finally:
        connection.close()


def sqlite_integrity(path):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
        return "ok" if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:5])
    finally:
        connection.close()


def psql_url(url):
    """The gateway's PostgreSQL URL as psql takes it: only the query parameters libpq knows."""
    parts = urllib.parse.urlsplit(url)
    known = {"sslmode", "connect_timeout", "sslrootcert", "sslcert", "sslkey", "application_name"}
    query = urllib.parse.urlencode([(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k in known])
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def psql_records(url, subject_prefix):
    """Like sqlite_records, through `psql` (the prefix is ours: letters, digits and dashes)."""
    if not all(c.isalnum() or c == "-" for c in subject_prefix):
        raise ValueError(f"unexpected subject prefix {subject_prefix!r}")
    sql = (f"SELECT id, subject, outcome FROM launches "
           f"WHERE substr(subject, 1, {len(subject_prefix)}) = '{subject_prefix}'")
    done = subprocess.run(["psql", psql_url(url), "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=PSQL_SECONDS,
                          env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, preexec_fn=prepare_child)
    if done.returncode != 0:
        raise SetupError("psql: " + done.stderr.decode("utf-8", "replace").strip())
    return [tuple(line.split("\t")) for line in done.stdout.decode("utf-8", "replace").splitlines() if line]


# --------------------------------------------------------------------------------------------- a round


@dataclass
class Round:
    number: int
    figures: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def passed(self):
        return not self.problems

    def line(self):
        figures = " ".join(f"{key}={format_value(value)}" for key, value in self.figures.items()
                           if key not in ("missing_ids", "log_error_messages"))
        extra = "".join(f" | {problem}" for problem in self.problems)
        return f"{'PASS' if self.passed else 'FAIL'} round {self.number}: {figures}{extra}"


def run_load(gateway, platform, subject_prefix, seconds):
    """Drives flows from CLIENTS threads and SIGKILLs the gateway after a random 40-80 % of `seconds`; after
    the kill the clients finish the flow they are in (against a dead gateway) and start no new one.

    Returns (flows, seconds until the kill, launches posted and not yet answered at the kill)."""
    flows = []
    lock = threading.Lock()
    killed = threading.Event()
    counter = iter(range(10 ** 9))
    posting = [0]

    def client():
        while not (killed.is_set() or STOP.is_set()):
            with lock:
                flow = Flow(subject=f"{subject_prefix}{next(counter)}")
                flows.append(flow)
            try:
                if login(gateway, platform, flow) and not STOP.is_set():
                    with lock:
                        posting[0] += 1
                    try:
                        flow.status, flow.reference, flow.location = post_launch(gateway, flow)
                    finally:
                        with lock:
                            posting[0] -= 1
            except Exception as error:  # a bug of this script: noted in the flow, the round goes on
                flow.status = f"client_error:{type(error).__name__}"

    threads = [threading.Thread(target=client, name=f"kill9-client-{i}", daemon=True) for i in range(CLIENTS)]
    CLIENT_THREADS[:] = threads
    started = time.monotonic()
    for thread in threads:
        thread.start()
    STOP.wait(seconds * random.uniform(*KILL_BETWEEN))
    # Kill while a launch is posted and unanswered: wait for one a little longer if none is (at most 1 s).
    waited_until = time.monotonic() + 1
    while True:
        with lock:
            in_flight = posting[0]
            if in_flight or time.monotonic() >= waited_until or STOP.is_set():
                gateway.process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.001)
    kill_offset = time.monotonic() - started
    killed.set()
    gateway.kill()  # waits until the process is gone
    deadline = time.monotonic() + DRAIN_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    if stuck:
        raise SetupError(f"{stuck} client threads still running {DRAIN_SECONDS} s after the kill")
    return flows, kill_offset, in_flight


def replay(gateway, flows, deadline):
    """Posts each flow's launch (id_token, state, cookie) again; keeps the answers in replay_status."""
    for flow in flows:
        if time.monotonic() > deadline:
            flow.replay_status = "skipped"
        else:
            flow.replay_status, _, _ = post_launch(gateway, flow)


def count_by(values):
    counts = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def is_4xx(status):
    return isinstance(status, int) and 400 <= status < 500


def run_round(gateway, platform, run_tag, number, seconds, run_deadline):
    """One round: load, SIGKILL, restart on the same database, checks. Returns its Round."""
    result = Round(number)
    subject_prefix = f"learner-{run_tag}-{number}-"
    log_start = gateway.log_size()
    flows, kill_offset, in_flight = run_load(gateway, platform, subject_prefix, seconds)
    restart_s = gateway.start()

    # Every 303 came from the killed process before it died (the clients stop before the restart).
    launched = [f for f in flows if f.status == 303]
    # Launches posted but never answered: the kill cut them short somewhere in the gateway (a launch posted after
    # the kill finds the port closed: "refused", not counted here).
    cut = [f for f in flows
           if isinstance(f.status, str) and f.status != "refused" and not f.status.startswith("client_error")]

    if gateway.postgres_url is None:
        rows = sqlite_records(gateway.sqlite_path, subject_prefix)
    elif shutil.which("psql"):
        rows = psql_records(gateway.postgres_url, subject_prefix)
    else:
        rows = None

    f = result.figures
    f["flows"] = len(flows)
    f["launches_303"] = len(launched)
    if rows is not None:
        by_id = {row[0]: (row[1], row[2]) for row in rows}
        by_subject = {}
        for _, subject, outcome in rows:
            by_subject.setdefault(subject, []).append(outcome)
        recorded = [x for x in launched if x.reference in by_id and by_id[x.reference][0] == x.subject]
        missing = [x for x in launched if not (x.reference in by_id and by_id[x.reference][0] == x.subject)]
        f["recorded"] = len(recorded)
        f["missing"] = len(missing)
        f["pending"] = sum(1 for row in rows if row[2] == "pending")
        f["recorded_outcomes"] = count_by(by_id[x.reference][1] for x in recorded)
        if missing:
            f["missing_ids"] = [x.reference or "(no X-Request-Id)" for x in missing][:20]
            result.problems.append(f"{len(missing)} launches answered 303 without a record under their X-Request-Id")
        completed = [x for x in recorded if by_id[x.reference][1] == "pending"]
        if completed:
            f["answered_303_but_pending"] = len(completed)
            result.problems.append(f"{len(completed)} launches answered 303 but their record stayed pending (a lost completion)")
        cut_records = {x.subject: by_subject.get(x.subject, []) for x in cut}
    else:
        f["recorded"] = f["missing"] = f["pending"] = "skipped"
        cut_records = None

    # Replays after the restart: the successful launches (must all be refused), then the ones cut short (a 303
    # is fine when the state was never consumed, but not when the killed gateway had recorded the launch).
    deadline = min(time.monotonic() + REPLAY_SECONDS, run_deadline)
    replay(gateway, launched, deadline)
    replay(gateway, cut, deadline)
    # Logins the killed gateway answered (302) whose launch was not posted before it died: their state was
    # stored before the answer, so the launch must still work after the restart.
    resumable = [x for x in flows if x.login_status == 302 and x.status in (None, "refused")]
    replay(gateway, resumable, deadline)
    accepted = [x for x in launched if x.replay_status == 303]
    f["replays_accepted"] = len(accepted)
    if accepted:
        result.problems.append(f"{len(accepted)} replays of successful launches answered 303")
    untried = [x for x in launched if x.replay_status == "skipped"]
    if untried:
        result.problems.append(f"{len(untried)} successful launches not replayed (time budget spent)")
    odd = [x for x in launched if not is_4xx(x.replay_status) and x.replay_status not in (303, "skipped")]
    if odd:
        f["replays_neither_303_nor_4xx"] = len(odd)
    f["replay_statuses"] = count_by(x.replay_status for x in launched)

    f["integrity"] = sqlite_integrity(gateway.sqlite_path) if gateway.postgres_url is None else "n/a"
    if f["integrity"] not in ("ok", "n/a"):
        result.problems.append(f"integrity_check: {f['integrity']}")

    f["in_flight_at_kill"] = in_flight
    f["cut_at_kill"] = len(cut)
    if cut:
        f["cut_records"] = (count_by(",".join(v) or "none" for v in cut_records.values())
                            if cut_records is not None else "skipped")
        f["cut_replays"] = count_by(x.replay_status for x in cut)
        if cut_records is not None:
            twice = [x for x in cut if cut_records[x.subject] and x.replay_status == 303]
            if twice:
                f["cut_recorded_then_replayed_303"] = len(twice)
                result.problems.append(f"{len(twice)} launches recorded by the killed gateway were accepted again")
    if resumable:
        f["logins_resumed"] = count_by(x.replay_status for x in resumable)
        lost = [x for x in resumable if x.replay_status != 303]
        if lost:
            f["logins_lost"] = len(lost)  # reported, not failed: the learner starts again from the LMS
    f["kill_s"] = kill_offset
    f["restart_s"] = restart_s
    f["log_errors"], messages = gateway.log_errors(log_start)
    if messages:
        f["log_error_messages"] = messages
    f["statuses"] = count_by(x.status if x.status is not None
                             else "login_only" if x.login_status == 302 else f"login_{x.login_status}" for x in flows)
    off_host = [x for x in launched if not x.location.startswith(gateway.origin + "/")]
    if off_host:
        f["off_host_303"] = len(off_host)
    if not launched:
        result.problems.append("no launch answered 303 this round (the load did not work)")
    return result


# --------------------------------------------------------------------------------------------- main


def summarize(results, error):
    """(passed, the summary line, the totals as a dict)."""
    def total(name):
        values = [r.figures.get(name) for r in results]
        numbers = [v for v in values if isinstance(v, int)]
        return "skipped" if values and not numbers else sum(numbers)

    integrity = "n/a"
    checks = [r.figures.get("integrity") for r in results if r.figures.get("integrity") != "n/a"]
    if checks:
        integrity = "ok" if all(c == "ok" for c in checks) else "FAILED"
    restarts = [r.figures["restart_s"] for r in results if "restart_s" in r.figures]
    passed = error is None and bool(results) and all(r.passed for r in results)
    totals = {"rounds": len(results), "launches_303": total("launches_303"), "recorded": total("recorded"),
              "missing": total("missing"), "replays_accepted": total("replays_accepted"), "integrity": integrity,
              "pending": total("pending"), "restart_s_max": round(max(restarts), 3) if restarts else None}
    line = (f"{'PASS' if passed else 'FAIL'} kill9: "
            + " ".join(f"{key}={f'{value:.2f}' if isinstance(value, float) else 'n/a' if value is None else value}"
                       for key, value in totals.items())
            + (f" error={error!r}" if error else ""))
    return passed, line, totals


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: stop like on Ctrl-C."""

    def __init__(self, signum):
        super().__init__(signum)
        self.status = 128 + signum


def interrupt(signum, frame):
    raise Interrupted(signum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the lti-gateway executable")
    parser.add_argument("--rounds", type=int, default=5, help="kill/restart rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=4, help="load per round in seconds (default 4)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database URL instead of SQLite")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 50 or not 0.5 <= args.seconds <= 60:
        parser.error("--rounds must be 1..50 and --seconds 0.5..60")
    binary = os.path.abspath(args.binary)
    backend = "postgres" if args.postgres else "sqlite"
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    interrupted_status = None

    document = {"binary": binary, "backend": backend, "rounds": [], "error": None}
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        error = f"not an executable file: {binary}"
        print(f"FAIL setup: {error}")
        document["error"] = error
        if args.json:
            write_json(args.json, document)
        return 2
    if backend == "postgres" and not shutil.which("psql"):
        print("note: psql not found; the check that every 303 launch is recorded is skipped on PostgreSQL",
              file=sys.stderr)

    folder = tempfile.mkdtemp(prefix="lti-kill9-")
    platform = Platform()
    gateway = Gateway(binary, folder, args.postgres)
    results, error = [], None
    run_started = time.monotonic()
    budget = BUDGET_BASE + args.rounds * (args.seconds + BUDGET_PER_ROUND)
    run_deadline = run_started + budget
    try:
        platform.start()
        gateway.cli("platforms", "add", "--issuer", platform.issuer, "--client-id", CLIENT_ID,
                    "--auth-url", platform.origin + "/auth", "--token-url", platform.origin + "/token",
                    "--jwks-url", platform.origin + "/jwks", "--deployment", DEPLOYMENT_ID)
        first_start = gateway.start()
        print(f"kill9: {backend}, gateway pid {gateway.process.pid} on port {gateway.port} up in {first_start:.2f} s, "
              f"LMS at {platform.origin}", file=sys.stderr)
        run_tag = uuid.uuid4().hex[:8]  # learners of this run: learner-TAG-ROUND-N (a reused database has others)
        for number in range(1, args.rounds + 1):
            if run_deadline - time.monotonic() < args.seconds + ROUND_RESERVE:
                raise SetupError(f"time budget of {budget:.0f} s spent before round {number}")
            result = run_round(gateway, platform, run_tag, number, args.seconds, run_deadline)
            results.append(result)
            print(result.line(), flush=True)
            if not result.passed:
                print(gateway.log_tail(), file=sys.stderr)
    except (SetupError, sqlite3.Error, subprocess.TimeoutExpired, OSError, ValueError) as failure:
        error = str(failure)
        print(f"FAIL setup: {error}")
        print(gateway.log_tail(), file=sys.stderr)
    except (KeyboardInterrupt, Interrupted) as stop:
        interrupted_status = getattr(stop, "status", 130)
        print("interrupted; cleaning up", file=sys.stderr)
        error = "interrupted"
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        STOP.set()
        gateway.stop()
        deadline = time.monotonic() + 5  # the clients' requests fail at once with the gateway gone
        for thread in CLIENT_THREADS:
            thread.join(max(0.0, deadline - time.monotonic()))
        platform.stop()
        shutil.rmtree(folder, ignore_errors=True)

    passed, line, totals = summarize(results, error)
    print(line, flush=True)
    if args.json:
        document.update({
            "passed": passed, "error": error, "seconds_total": round(time.monotonic() - run_started, 2),
            "summary": line, "totals": totals, "jwks_fetches": platform.jwks_requests,
            "rounds": [{"round": r.number, "passed": r.passed, "problems": r.problems, "figures": rounded(r.figures)}
                       for r in results],
        })
        if not write_json(args.json, document):
            return 2
    if interrupted_status is not None:
        return interrupted_status
    if error is not None:
        return 2
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
