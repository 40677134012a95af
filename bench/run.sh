#!/usr/bin/env bash
# Side-by-side launch benchmark, in one run on this machine:
#   - the gateway as deployed (release build, SQLite, default log level, Skillable and SkyPrep answered by
#     `lti-gateway sandbox` in another process, SkyPrep configured), and as measured before (the built-in sandbox
#     in the gateway's process, log level warning) as a second row; then with the vendors at 150 ms,
#   - pylti1p3 (from PyPI, in a throwaway virtualenv) on Flask under gunicorn with 2 workers, its platform
#     key set configured inline (no JWKS fetch per launch),
# both driven over loopback by the same load generator (lti-bench). Results: $OUT/results.jsonl and a summary.
# Not used by the tests. Every server listens on 127.0.0.1 and every loop is bounded by COUNT (and SOAK seconds).
# SOAK=300 adds a 5-minute launch run against the first gateway, watching its memory. Learners carry no email (as
# in runs 1-22) except in the row "learners with email", where the gateway provisions each new one in SkyPrep.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
COUNT=${COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-32}
OUT=${OUT:-$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
WORK=$(mktemp -d)
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then  # BIN=folder with lti-gateway and lti-bench: use those instead of building
  echo "== building (release)"
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)
fi
for port in 18070 18080 18081 18082 18090 18191; do  # a server left on one of these would answer instead of ours
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port on 127.0.0.1 is in use; stop what listens there" >&2; exit 1; fi
done

echo "== bench platform key and JWKS"
"$BIN/lti-bench" keygen --key "$OUT/platform-key.pem" --jwks "$OUT/platform-jwks.json" >/dev/null
python3 -m http.server --bind 127.0.0.1 18070 --directory "$OUT" >/dev/null 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18070/platform-jwks.json

register_platform() { # port
  (cd "$WORK/gw-$1" && "$BIN/lti-gateway" platforms add --issuer https://bench-lms.example --client-id bench-client \
    --auth-url http://127.0.0.1:18070/auth --token-url http://127.0.0.1:18070/token \
    --jwks-url http://127.0.0.1:18070/platform-jwks.json --deployment bench-deployment --max-active-labs 100 >/dev/null)
}
start_vendors() { # latency-ms: Skillable and SkyPrep fakes in a process of their own, as the real ones are elsewhere
  mkdir -p "$WORK/vendors"
  (cd "$WORK/vendors" && GATEWAY_SANDBOX_LATENCY_MS=$1 exec "$BIN/lti-gateway" sandbox --port 18191 >"$OUT/vendors.log" 2>&1) & PIDS+=($!)
  VENDORS_PID=$!
  wait_for "http://127.0.0.1:18191/sandbox/skillable/api/v3/catalog?api_key=x" || true
}
start_deployed_gateway() { # port: default log level, the vendors in their own process, SkyPrep configured
  mkdir -p "$WORK/gw-$1"
  (cd "$WORK/gw-$1" && SKILLABLE_BASE_URL=http://127.0.0.1:18191/sandbox/skillable/api/v3 SKILLABLE_API_KEY=sandbox-key \
    SKYPREP_BASE_URL=http://127.0.0.1:18191/sandbox/skyprep/admin/api SKYPREP_ACCT_KEY=sandbox.skyprepapp.com \
    SKYPREP_API_KEY=sandbox-key GATEWAY_PORT=$1 GATEWAY_PUBLIC_URL=http://127.0.0.1:$1 \
    exec "$BIN/lti-gateway" serve >"$OUT/gateway-$1.log" 2>&1) & PIDS+=($!)
  GATEWAY_PID=$!
  wait_for "http://127.0.0.1:$1/healthz"
  register_platform "$1"
}
start_gateway() { # port latency-ms: the configuration of runs 1-10 (built-in sandbox, log level warning)
  mkdir -p "$WORK/gw-$1"
  (cd "$WORK/gw-$1" && GATEWAY_PORT=$1 GATEWAY_PUBLIC_URL=http://127.0.0.1:$1 GATEWAY_LOG_LEVEL=warning \
    GATEWAY_SANDBOX_LATENCY_MS=$2 exec "$BIN/lti-gateway" serve >"$OUT/gateway-$1.log" 2>&1) & PIDS+=($!)
  GATEWAY_PID=$!
  wait_for "http://127.0.0.1:$1/healthz"
  register_platform "$1"
}

echo "== pylti1p3 on gunicorn (2 workers)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "pylti1p3==2.0.0" flask gunicorn cryptography
python3 - "$OUT/platform-jwks.json" "$WORK/tool.json" <<'PY'
import json, sys
jwks = json.load(open(sys.argv[1]))
conf = {"https://bench-lms.example": [{"default": True, "client_id": "bench-client",
        "auth_login_url": "http://127.0.0.1:18070/auth", "auth_token_url": "http://127.0.0.1:18070/token",
        "key_set_url": None, "key_set": jwks, "deployment_ids": ["bench-deployment"]}]}
json.dump(conf, open(sys.argv[2], "w"))
PY
BENCH_TOOL_CONF="$WORK/tool.json" BENCH_FLASK_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
  "$WORK/venv/bin/gunicorn" -w 2 -b 127.0.0.1:18090 --chdir "$ROOT/bench/pylti1p3" --log-level warning app:app \
  >"$OUT/pylti1p3.log" 2>&1 & PIDS+=($!)
PYLTI_PID=$!
wait_for http://127.0.0.1:18090/healthz

start_vendors 0
start_deployed_gateway 18080
FIRST_GATEWAY_PID=$GATEWAY_PID
bench() { "$BIN/lti-bench" run --key "$OUT/platform-key.pem" --json "$OUT/results.jsonl" "$@"; }

echo "== side by side (count $COUNT, concurrency $CONCURRENCY)"
bench --label "gateway launch" --target http://127.0.0.1:18080 --scenario launch --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$GATEWAY_PID"
bench --label "pylti1p3 launch" --target http://127.0.0.1:18090 --scenario launch --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$PYLTI_PID"
bench --label "gateway forged" --target http://127.0.0.1:18080 --scenario forged --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$GATEWAY_PID"
bench --label "pylti1p3 forged" --target http://127.0.0.1:18090 --scenario forged --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$PYLTI_PID"
for round in 1 2; do
  bench --label "gateway static #$round" --target http://127.0.0.1:18080 --scenario static --count $((COUNT * 10)) --concurrency "$CONCURRENCY" \
    --pid "$GATEWAY_PID"
  bench --label "gateway jwks #$round" --target http://127.0.0.1:18080 --scenario jwks --count $((COUNT * 10)) --concurrency "$CONCURRENCY" \
    --pid "$GATEWAY_PID"
done
# Most LMSs share the learner's email: then every new learner is also provisioned in SkyPrep (a job, a SkyPrep call, the account).
bench --label "gateway launch, learners with email" --target http://127.0.0.1:18080 --scenario launch --count "$COUNT" \
  --concurrency "$CONCURRENCY" --email --pid "$GATEWAY_PID"
bench --label "gateway launch c256" --target http://127.0.0.1:18080 --scenario launch --count "$COUNT" --concurrency 256 --pid "$GATEWAY_PID"

echo "== the configuration of runs 1-10 (built-in sandbox in the gateway's process, log level warning)"
start_gateway 18082 0
bench --label "gateway launch, runs 1-10 configuration" --target http://127.0.0.1:18082 --scenario launch --count "$COUNT" \
  --concurrency "$CONCURRENCY" --pid "$GATEWAY_PID"
bench --label "gateway forged, runs 1-10 configuration" --target http://127.0.0.1:18082 --scenario forged --count "$COUNT" \
  --concurrency "$CONCURRENCY" --pid "$GATEWAY_PID"

echo "== vendors at 150 ms"
start_gateway 18081 150
bench --label "gateway launch 150ms" --target http://127.0.0.1:18081 --scenario launch --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$GATEWAY_PID"

if [ "${SOAK:-0}" -gt 0 ]; then
  echo "== soak: launches for $SOAK s"
  bench --label "gateway soak" --target http://127.0.0.1:18080 --scenario launch --count "$COUNT" --concurrency "$CONCURRENCY" \
    --duration "$SOAK" --pid "$FIRST_GATEWAY_PID"
fi

echo "== unavoidable parts (one RS256 verify, one durable SQLite commit; CPU time on this machine)"
"$WORK/venv/bin/python" "$ROOT/bench/parts.py" 2000 | tee "$OUT/parts.json"

echo "== summary"
python3 - "$OUT/results.jsonl" "$OUT/parts.json" <<'PY'
import json, sys
rows = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
parts = json.load(open(sys.argv[2]))
g, p = rows["gateway launch"], rows["pylti1p3 launch"]
gf, pf = rows["gateway forged"], rows["pylti1p3 forged"]
print(f"full login+launch flows/s: gateway {g['flowsPerSecond']:.0f} vs pylti1p3 {p['flowsPerSecond']:.0f} = {g['flowsPerSecond']/p['flowsPerSecond']:.1f}x (target >= 5x)")
print(f"forged launches refused/s: gateway {gf['requestsPerSecond']:.0f} vs pylti1p3 {pf['requestsPerSecond']:.0f} = {gf['requestsPerSecond']/pf['requestsPerSecond']:.1f}x (target >= 10x)")
print(f"server CPU per flow: gateway {g['serverCPUMicroseconds']:.0f} µs vs pylti1p3 {p['serverCPUMicroseconds']:.0f} µs = {p['serverCPUMicroseconds']/g['serverCPUMicroseconds']:.1f}x less; "
      f"per refused launch {gf['serverCPUMicroseconds']:.0f} µs vs {pf['serverCPUMicroseconds']:.0f} µs = {pf['serverCPUMicroseconds']/gf['serverCPUMicroseconds']:.1f}x less")
print(f"launch POSTs/s: gateway {g['requestsPerSecond']:.0f} vs pylti1p3 {p['requestsPerSecond']:.0f} = {g['requestsPerSecond']/p['requestsPerSecond']:.1f}x (target >= 3x)")
print(f"server CPU per launch POST: gateway {g['phaseCPUMicroseconds']:.0f} µs vs pylti1p3 {p['phaseCPUMicroseconds']:.0f} µs; "
      f"cores busy during launches: gateway {g['serverCores']:.2f}, pylti1p3 {p['serverCores']:.2f} (target: gateway >= 1.8 at saturation)")
print(f"gateway launch p99 at {g['concurrency']}: {g['p99']:.1f} ms, p50 {g['p50']:.1f} ms (target p99 <= 25 ms); errors {g['errors']}")
for label in ("gateway launch", "gateway forged"):
    print(f"{label}, threads (cores busy · waiting for a core · blocking waits/s):")
    for t in rows[label].get("serverThreads") or []:
        sec = rows[label]["phaseSeconds"]
        print(f"    {t['name']} x{t['threads']}: {t['cpuSeconds']/sec:.2f} · {t['runQueueSeconds']/sec:.2f} · {t['voluntarySwitches']/sec:.0f}")
trivial = sum(rows[f"gateway static #{i}"]["serverCPUMicroseconds"] for i in (1, 2)) / 2
floor = parts["rs256_verify_us"] + 3 * trivial + parts["sqlite_commit_us"]
print(f"unavoidable parts of a flow: RS256 verify {parts['rs256_verify_us']:.0f} µs + 3 HTTP exchanges on a trivial route "
      f"(login, launch, the vendor's round trip) {3 * trivial:.0f} µs + one durable commit {parts['sqlite_commit_us']:.0f} µs = {floor:.0f} µs; "
      f"the gateway's CPU per flow {g['serverCPUMicroseconds']:.0f} µs = {g['serverCPUMicroseconds'] / floor:.1f}x (target <= 2x)")
e = rows["gateway launch, learners with email"]
print(f"learners with email (each new one provisioned in SkyPrep): flows/s {e['flowsPerSecond']:.0f} ({e['flowsPerSecond']/p['flowsPerSecond']:.1f}x pylti1p3), "
      f"server CPU per flow {e['serverCPUMicroseconds']:.0f} µs, p99 {e['p99']:.1f} ms")
o, of = rows["gateway launch, runs 1-10 configuration"], rows["gateway forged, runs 1-10 configuration"]
print(f"runs 1-10 configuration: flows/s {o['flowsPerSecond']:.0f} ({o['flowsPerSecond']/p['flowsPerSecond']:.1f}x pylti1p3), "
      f"launch POSTs/s {o['requestsPerSecond']:.0f}, forged/s {of['requestsPerSecond']:.0f} ({of['requestsPerSecond']/pf['requestsPerSecond']:.1f}x), p99 {o['p99']:.1f} ms")
c = rows["gateway launch c256"]; print(f"gateway at 256 concurrent: errors {c['errors']}, login errors {c.get('loginErrors', 0)}, p99 {c['p99']:.1f} ms")
s = [rows[f"gateway static #{i}"]["requestsPerSecond"] for i in (1, 2)]; j = [rows[f"gateway jwks #{i}"]["requestsPerSecond"] for i in (1, 2)]
print(f"JWKS {sum(j)/2:.0f} req/s vs static {sum(s)/2:.0f} req/s = {sum(j)/sum(s)*100:.0f}% (target >= 90%)")
print(f"gateway peak RSS: {max(r.get('peakRSSMiB') or 0 for label, r in rows.items() if label.startswith('gateway')):.0f} MiB (target <= 150); "
      f"pylti1p3 (master and workers summed): {max(p.get('peakRSSMiB') or 0, pf.get('peakRSSMiB') or 0):.0f} MiB")
if "gateway soak" in " ".join(rows):
    k = next(r for label, r in rows.items() if label.startswith("gateway soak"))
    print(f"soak: {k['label']}: RSS after round 1 {k['rssAfterFirstRoundMiB']:.0f} MiB, at end {k['rssAtEndMiB']:.0f} MiB, peak {k['peakRSSMiB']:.0f} MiB, errors {k['errors']}")
l = rows["gateway launch 150ms"]; print(f"vendors at 150 ms: launch p50 {l['p50']:.0f} ms p99 {l['p99']:.0f} ms, {l['requestsPerSecond']:.0f} launches/s")
PY
echo "results: $OUT"
