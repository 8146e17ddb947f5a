#!/usr/bin/env bash
# Stop the Pub/Sub emulator started by scripts/start_pubsub_emulator.sh (by its PID file only).
set -euo pipefail
DIR="${AME_PUBSUB_EMULATOR_DIR:-.ame/pubsub-emulator}"
PIDFILE="$DIR/emulator.pid"
if [[ ! -f "$PIDFILE" ]]; then
  echo "no PID file at $PIDFILE: nothing to stop" >&2
  exit 0
fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  kill "$PID"
  for _ in $(seq 1 100); do  # at most 10 s, then force
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$PID" 2>/dev/null && kill -9 "$PID" 2>/dev/null || true
fi
rm -f "$PIDFILE" "$DIR/emulator.port"
echo "stopped the Pub/Sub emulator (pid $PID)"
