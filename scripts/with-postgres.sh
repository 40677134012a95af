#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: installs PostgreSQL from Debian's packages when absent,
# creates a cluster in a temporary folder, starts it on 127.0.0.1 on a free port, exports
# GATEWAY_TEST_POSTGRES_URL (a superuser URL; tests create and drop their own databases), runs the
# command, and always stops the server and removes the folder.
#
#   scripts/with-postgres.sh swift test
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

folder=$(mktemp -d /tmp/gw-postgres.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

# initdb and postgres refuse to run as root: run them as the postgres user when we are root.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$folder"; fi

stop() {
  as_owner "$bindir/pg_ctl" -D "$folder/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$folder"
}
trap stop EXIT

printf '%s\n' "$password" > "$folder/pw"
if [ "$(id -u)" = 0 ]; then chown postgres "$folder/pw"; fi
as_owner "$bindir/initdb" -D "$folder/data" -U gateway --pwfile="$folder/pw" -A scram-sha-256 >"$folder/initdb.log" 2>&1 \
  || { cat "$folder/initdb.log" >&2; exit 1; }
rm -f "$folder/pw"
as_owner "$bindir/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $folder -c max_connections=300 -c fsync=off -c synchronous_commit=off" start >/dev/null \
  || { cat "$folder/server.log" >&2; exit 1; }

export GATEWAY_TEST_POSTGRES_URL="postgres://gateway:${password}@127.0.0.1:${port}/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
