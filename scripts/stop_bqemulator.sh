#!/usr/bin/env bash
# Stop the BigQuery emulator started by scripts/start_bqemulator.sh (by its PID file, nothing else).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${AME_BQEMU_DIR:-$ROOT/.ame/bqemu}"
PIDFILE="$DIR/bqemulator.pid"
if [ ! -f "$PIDFILE" ]; then
  echo "bqemulator is not running (no $PIDFILE)"
  exit 0
fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  kill "$PID"
  for _ in $(seq 1 40); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.25
  done
  kill -0 "$PID" 2>/dev/null && kill -9 "$PID" 2>/dev/null || true
fi
rm -f "$PIDFILE"
echo "bqemulator stopped"
