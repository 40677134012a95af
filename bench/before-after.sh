#!/usr/bin/env bash
# Two gateway builds side by side in one run, as deployed: default log level, Skillable and SkyPrep answered by
# `lti-gateway sandbox` in another process. Alternates BEFORE and AFTER for ROUNDS rounds, a fresh gateway, database
# and vendor process per run; each run drives COUNT full login+launch flows, then COUNT forged launches, with
# lti-bench at concurrency 32. Every server listens on 127.0.0.1; every loop is bounded.
#   BEFORE=/path/to/release-bin AFTER=/path/to/release-bin bench/before-after.sh
# (each folder holds lti-gateway and lti-bench, e.g. copied from `swift build -c release --show-bin-path`).
set -euo pipefail
: "${BEFORE:?folder with the lti-gateway and lti-bench of the code before}" "${AFTER:?folder of the code after}"
ROUNDS=${ROUNDS:-3}; COUNT=${COUNT:-3000}
OUT=${OUT:-$(pwd)/bench-results/before-after-$(date -u +%Y%m%dT%H%M%SZ)}
WORK=$(mktemp -d); mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
for port in 18070 18185 18191; do  # a server left on one of these would answer instead of ours
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port on 127.0.0.1 is in use; stop what listens there" >&2; exit 1; fi
done
wait_for() { for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

"$AFTER/lti-bench" keygen --key "$WORK/platform-key.pem" --jwks "$WORK/platform-jwks.json" >/dev/null
python3 -m http.server --bind 127.0.0.1 18070 --directory "$WORK" >/dev/null 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18070/platform-jwks.json

for round in $(seq 1 "$ROUNDS"); do
  for variant in before after; do
    bin=$BEFORE; [ "$variant" = after ] && bin=$AFTER
    run="$WORK/$variant-$round"; mkdir -p "$run"
    (cd "$run" && exec "$bin/lti-gateway" sandbox --port 18191 >sandbox.log 2>&1) & vendors=$!
    wait_for http://127.0.0.1:18191/sandbox/skillable/api/v3/catalog?api_key=x || true
    (cd "$run" && SKILLABLE_BASE_URL=http://127.0.0.1:18191/sandbox/skillable/api/v3 SKILLABLE_API_KEY=sandbox-key \
      SKYPREP_BASE_URL=http://127.0.0.1:18191/sandbox/skyprep/admin/api SKYPREP_ACCT_KEY=sandbox.skyprepapp.com \
      SKYPREP_API_KEY=sandbox-key GATEWAY_PORT=18185 GATEWAY_PUBLIC_URL=http://127.0.0.1:18185 \
      exec "$bin/lti-gateway" serve >gateway.log 2>&1) & gateway=$!
    wait_for http://127.0.0.1:18185/healthz
    (cd "$run" && "$bin/lti-gateway" platforms add --issuer https://bench-lms.example --client-id bench-client \
      --auth-url http://127.0.0.1:18070/auth --token-url http://127.0.0.1:18070/token \
      --jwks-url http://127.0.0.1:18070/platform-jwks.json --deployment bench-deployment --max-active-labs 100 >/dev/null)
    echo "round $round $variant, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for scenario in launch forged; do
      "$AFTER/lti-bench" run --key "$WORK/platform-key.pem" --label "$variant $scenario #$round" --target http://127.0.0.1:18185 \
        --scenario "$scenario" --count "$COUNT" --concurrency 32 --pid "$gateway" --json "$OUT/results.jsonl"
    done
    kill "$gateway" "$vendors"; wait "$gateway" "$vendors" 2>/dev/null || true
  done
done
echo "results: $OUT/results.jsonl"
