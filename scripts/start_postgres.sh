#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 and print the line to export.
#   scripts/start_postgres.sh [PORT]      (default: a free port; bookkeeping in $AME_POSTGRES_DIR or .ame/postgres)
# Uses Debian's PostgreSQL (initdb, pg_ctl); installs the `postgresql` package with apt-get where they are missing
# (as root, or through sudo). The cluster lives in a scratch folder made by mktemp and removed by
# scripts/stop_postgres.sh. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
# Prints: export AME_TEST_POSTGRES=postgresql://ame@127.0.0.1:PORT/ame   (trust authentication, loopback only)
set -euo pipefail
DIR="${AME_POSTGRES_DIR:-.ame/postgres}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
url_for() { echo "postgresql://ame@127.0.0.1:$1/ame"; }

if [[ -f "$DIR/server.pid" ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
  echo "PostgreSQL already runs (pid $(cat "$DIR/server.pid")); stop it with scripts/stop_postgres.sh" >&2
  echo "export AME_TEST_POSTGRES=$(url_for "$(cat "$DIR/server.port")")"
  exit 0
fi

find_bin() {  # the folder holding initdb, pg_ctl and createdb: Debian's newest versioned folder, else PATH's
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -n "$found" && -x "$found/initdb" && -x "$found/pg_ctl" ]]; then
    echo "$found"
    return 0
  fi
  if command -v pg_ctl >/dev/null 2>&1; then
    found="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    [[ -x "$found/initdb" && -x "$found/createdb" ]] && echo "$found" && return 0
  fi
  return 1
}

if ! BIN="$(find_bin)"; then
  echo "initdb/pg_ctl not found: installing Debian's postgresql package" >&2
  if [[ "$(id -u)" -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "PostgreSQL is not installed and this user cannot install it: run 'apt-get install postgresql' as root" >&2
    exit 2
  fi
  "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)" || { echo "apt-get installed postgresql but initdb is still not found" >&2; exit 2; }
fi

PORT="${1:-}"
if [[ -z "$PORT" ]]; then
  PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/ame-postgres.XXXXXX")"
echo "$DATA" >"$DIR/server.data"
as_owner=()
if [[ "$(id -u)" -eq 0 ]]; then  # the server may not run as root
  chown postgres: "$DATA"
  as_owner=(runuser -u postgres --)
fi
"${as_owner[@]}" "$BIN/initdb" -D "$DATA/cluster" -U ame --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 || {
  echo "initdb failed; see $DIR/initdb.log" >&2; exit 1; }
# The Unix socket goes into the scratch folder, so nothing needs /var/run/postgresql.
if ! "${as_owner[@]}" "$BIN/pg_ctl" -D "$DATA/cluster" -l "$DATA/server.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $PORT -k $DATA" start >/dev/null 2>&1; then
  cp "$DATA/server.log" "$DIR/server.log" 2>/dev/null || true
  echo "PostgreSQL did not start on 127.0.0.1:$PORT; see $DIR/server.log" >&2
  exit 1
fi
head -n 1 "$DATA/cluster/postmaster.pid" >"$DIR/server.pid"
echo "$PORT" >"$DIR/server.port"
echo "$BIN" >"$DIR/server.bin"
"$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U ame ame || {
  echo "createdb failed; stop the server with scripts/stop_postgres.sh" >&2; exit 1; }
echo "export AME_TEST_POSTGRES=$(url_for "$PORT")"
