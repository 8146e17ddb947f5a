#!/usr/bin/env bash
# Start the local BigQuery emulator (PyPI `bqemulator`, DuckDB-backed) on 127.0.0.1 for the `emulator` tests.
#
# It runs from its own virtual environment (.venv-bqemu): it pins a DuckDB and Google packages that the app
# must not share. Its DuckDB extensions are linked from the wheels into a private HOME, so it never downloads
# anything. A small launcher adds '*/*' to the upload route's media types, which makes multipart loads
# (load_table_from_json / load_table_from_dataframe) work. Prints the endpoint to export as AME_BQ_EMULATOR.
#
# Environment: AME_BQEMU_VENV, AME_BQEMU_DIR (state, logs, PID), AME_BQEMU_REST_PORT (9050),
# AME_BQEMU_GRPC_PORT (9060), AME_BQEMU_PROJECT (test-proj), PYTHON (python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${AME_BQEMU_VENV:-$ROOT/.venv-bqemu}"
DIR="${AME_BQEMU_DIR:-$ROOT/.ame/bqemu}"
REST_PORT="${AME_BQEMU_REST_PORT:-9050}"
GRPC_PORT="${AME_BQEMU_GRPC_PORT:-9060}"
PROJECT="${AME_BQEMU_PROJECT:-test-proj}"
PYTHON="${PYTHON:-python3}"
DUCKDB_VERSION="1.5.5"
PIDFILE="$DIR/bqemulator.pid"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && port_open "$REST_PORT"; then
  echo "bqemulator already running (pid $(cat "$PIDFILE")): AME_BQ_EMULATOR=127.0.0.1:$REST_PORT"
  exit 0
fi
if port_open "$REST_PORT"; then
  echo "error: port $REST_PORT is taken by another process; set AME_BQEMU_REST_PORT to a free port" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/bqemulator" ]; then
  echo "installing bqemulator into $VENV"
  "$PYTHON" -m venv "$VENV"
  quiet() { { grep -v '^WARNING: Location' || true; }; }  # this machine's pip config warns per package
  "$VENV/bin/pip" install -q --upgrade pip 2>&1 | quiet
  "$VENV/bin/pip" install -q bqemulator "duckdb==$DUCKDB_VERSION" "duckdb-extension-spatial==$DUCKDB_VERSION" \
    "duckdb-extension-avro==$DUCKDB_VERSION" numpy 2>&1 | quiet
fi

mkdir -p "$DIR/home" "$DIR/data"
EXT_DIR="$DIR/home/.duckdb/extensions/v$DUCKDB_VERSION/linux_amd64"
mkdir -p "$EXT_DIR"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for name in spatial avro; do
  found=0
  for f in "$SITE/duckdb_extension_$name/extensions/v$DUCKDB_VERSION/"*.duckdb_extension; do
    [ -e "$f" ] || continue
    ln -sf "$f" "$EXT_DIR/$(basename "$f")"
    found=1
  done
  if [ "$found" = 0 ]; then
    echo "error: no $name extension file under $SITE/duckdb_extension_$name; reinstall: rm -rf $VENV" >&2
    exit 1
  fi
done

cat > "$DIR/launch.py" <<'PY'
"""bqemulator's CLI with '*/*' accepted by the upload route (the client sends it for multipart loads)."""
import sys

import bqemulator.api.routes.upload as upload

permitted = upload._PERMITTED_MEDIA_CONTENT_TYPES
if "*/*" not in permitted:
    upload._PERMITTED_MEDIA_CONTENT_TYPES = (
        permitted | {"*/*"} if isinstance(permitted, (set, frozenset)) else type(permitted)([*permitted, "*/*"])
    )

from bqemulator.cli import main  # noqa: E402

sys.argv[0] = "bqemulator"
sys.exit(main())
PY

cd "$DIR/data"
HOME="$DIR/home" nohup "$VENV/bin/python" "$DIR/launch.py" start --rest-host 127.0.0.1 --rest-port "$REST_PORT" \
  --grpc-host 127.0.0.1 --grpc-port "$GRPC_PORT" --project "$PROJECT" >"$DIR/bqemulator.log" 2>&1 &
echo $! >"$PIDFILE"

for _ in $(seq 1 120); do  # up to 60 s
  if port_open "$REST_PORT"; then
    echo "bqemulator is up (pid $(cat "$PIDFILE")): export AME_BQ_EMULATOR=127.0.0.1:$REST_PORT"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "error: bqemulator exited during start-up; its log follows ($DIR/bqemulator.log)" >&2
    tail -n 40 "$DIR/bqemulator.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "error: bqemulator did not open port $REST_PORT within 60 s; see $DIR/bqemulator.log" >&2
kill "$(cat "$PIDFILE")" 2>/dev/null || true
exit 1
