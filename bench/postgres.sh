#!/usr/bin/env bash
# Launches per second on PostgreSQL with one and with two gateway instances sharing the database, on this
# machine, as deployed (release build, default log level, Skillable and SkyPrep answered by `lti-gateway sandbox`
# in another process, load generator over loopback). BIN=folder with lti-gateway and lti-bench runs those
# instead of building. Run it through
# the throwaway server of scripts/with-postgres.sh:
#   scripts/with-postgres.sh bash bench/postgres.sh
# Not used by the tests. Every server listens on 127.0.0.1 and every run is bounded by COUNT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
COUNT=${COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-32}
OUT=${OUT:-$ROOT/bench-results/postgres-$(date -u +%Y%m%dT%H%M%SZ)}
: "${GATEWAY_TEST_POSTGRES_URL:?run through scripts/with-postgres.sh}"
WORK=$(mktemp -d)
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)
fi
"$BIN/lti-bench" keygen --key "$OUT/platform-key.pem" --jwks "$OUT/platform-jwks.json" >/dev/null
python3 -m http.server --bind 127.0.0.1 18070 --directory "$OUT" >/dev/null 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18070/platform-jwks.json

# A fresh database on the throwaway server.
DB="bench_$(date +%s)"
ADMIN_URL=${GATEWAY_TEST_POSTGRES_URL%%\?*}
PGPASSWORD=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).password)' "$ADMIN_URL") \
  psql -q "$(python3 -c 'import sys, urllib.parse; u=urllib.parse.urlparse(sys.argv[1]); print(f"host={u.hostname} port={u.port} user={u.username} dbname=postgres")' "$ADMIN_URL")" \
  -c "CREATE DATABASE $DB"
export GATEWAY_DATABASE_URL="${ADMIN_URL%/*}/$DB?sslmode=disable&pool=20"
export GATEWAY_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export GATEWAY_PUBLIC_URL=http://127.0.0.1:18080
export SKILLABLE_BASE_URL=http://127.0.0.1:18191/sandbox/skillable/api/v3 SKILLABLE_API_KEY=sandbox-key \
  SKYPREP_BASE_URL=http://127.0.0.1:18191/sandbox/skyprep/admin/api SKYPREP_ACCT_KEY=sandbox.skyprepapp.com SKYPREP_API_KEY=sandbox-key
(cd "$WORK" && exec "$BIN/lti-gateway" sandbox --port 18191 >"$OUT/vendors.log" 2>&1) & PIDS+=($!)
wait_for "http://127.0.0.1:18191/sandbox/skillable/api/v3/catalog?api_key=x" || true

start_instance() { # port
  (cd "$WORK" && GATEWAY_PORT=$1 exec "$BIN/lti-gateway" serve >"$OUT/gateway-$1.log" 2>&1) & PIDS+=($!)
  LAST_PID=$!
  wait_for "http://127.0.0.1:$1/healthz"
}
bench() { "$BIN/lti-bench" run --key "$OUT/platform-key.pem" --json "$OUT/results.jsonl" --scenario launch "$@"; }

start_instance 18080
A_PID=$LAST_PID
(cd "$WORK" && "$BIN/lti-gateway" platforms add --issuer https://bench-lms.example --client-id bench-client \
  --auth-url http://127.0.0.1:18070/auth --token-url http://127.0.0.1:18070/token \
  --jwks-url http://127.0.0.1:18070/platform-jwks.json --deployment bench-deployment --max-active-labs 100 >/dev/null)

echo "== one instance on PostgreSQL (count $COUNT, concurrency $CONCURRENCY)"
bench --label "postgres 1 instance" --target http://127.0.0.1:18080 --count "$COUNT" --concurrency "$CONCURRENCY" --pid "$A_PID"

echo "== two instances on PostgreSQL, the same load split between them"
start_instance 18081
B_PID=$LAST_PID
bench --label "postgres 2 instances: a" --target http://127.0.0.1:18080 --count $((COUNT / 2)) --concurrency $((CONCURRENCY / 2)) --pid "$A_PID" &
ONE=$!
bench --label "postgres 2 instances: b" --target http://127.0.0.1:18081 --public-url http://127.0.0.1:18080 --count $((COUNT / 2)) --concurrency $((CONCURRENCY / 2)) --pid "$B_PID" &
TWO=$!
wait $ONE $TWO
echo "results: $OUT/results.jsonl"
