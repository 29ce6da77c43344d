#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for the gradebook tests.
#
#   eval "$(.ci/postgres.sh)"      # start; prints: export BACKPROP_TEST_POSTGRES_URL=...
#   .ci/postgres.sh stop           # stop it and delete its data
#
# Installs Debian's postgresql if no server binaries are found, runs initdb in a temporary
# folder (as the postgres user when run as root), listens on 127.0.0.1 only, on a free port.
set -euo pipefail
STATE="${BACKPROP_PG_STATE:-${TMPDIR:-/tmp}/backprop-ci-postgres}"

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "${1:-start}" = stop ]; then
  if [ -d "$STATE/data" ]; then as_owner "$(bindir)/pg_ctl" -D "$STATE/data" -m fast stop >&2 || true; fi
  rm -rf "$STATE"
  exit 0
fi

if [ -z "$(bindir)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(bindir)"
rm -rf "$STATE"
mkdir -p "$STATE"
if [ "$(id -u)" = 0 ]; then chown postgres: "$STATE"; fi
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_owner "$BIN/initdb" -D "$STATE/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_owner "$BIN/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $STATE" start >&2
as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres backprop_test
echo "export BACKPROP_TEST_POSTGRES_URL=postgresql+psycopg2://postgres@127.0.0.1:$PORT/backprop_test"
