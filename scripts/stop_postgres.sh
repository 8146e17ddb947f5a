#!/usr/bin/env bash
# Stop the PostgreSQL server started by scripts/start_postgres.sh and remove its scratch folder.
set -euo pipefail
DIR="${AME_POSTGRES_DIR:-.ame/postgres}"
if [[ ! -f "$DIR/server.data" ]]; then
  echo "no server recorded in $DIR: nothing to stop" >&2
  exit 0
fi
DATA="$(cat "$DIR/server.data")"
BIN="$(cat "$DIR/server.bin" 2>/dev/null || true)"
PID="$(cat "$DIR/server.pid" 2>/dev/null || true)"
as_owner=()
[[ "$(id -u)" -eq 0 ]] && as_owner=(runuser -u postgres --)
if [[ -n "$BIN" && -d "$DATA/cluster" ]]; then
  "${as_owner[@]}" "$BIN/pg_ctl" -D "$DATA/cluster" -m fast -w -t 30 stop >/dev/null 2>&1 || true
fi
if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then  # pg_ctl could not stop it: by its PID only
  kill -9 "$PID" 2>/dev/null || true
fi
case "$DATA" in  # only ever a folder this script's partner made
  */ame-postgres.*) rm -rf "$DATA" ;;
esac
rm -f "$DIR/server.data" "$DIR/server.pid" "$DIR/server.port" "$DIR/server.bin"
echo "stopped PostgreSQL${PID:+ (pid $PID)}"
