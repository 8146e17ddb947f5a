#!/usr/bin/env bash
# Start Google's Pub/Sub emulator in the background on 127.0.0.1 and print the line to export.
#   scripts/start_pubsub_emulator.sh [PORT]      (default 8085; state in $AME_PUBSUB_EMULATOR_DIR or .ame/pubsub-emulator)
# Needs the Google Cloud CLI with the pubsub-emulator component and Java 11+ (google-cloud-cli-pubsub-emulator).
set -euo pipefail
PORT="${1:-8085}"
DIR="${AME_PUBSUB_EMULATOR_DIR:-.ame/pubsub-emulator}"
mkdir -p "$DIR"
PIDFILE="$DIR/emulator.pid"
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "the Pub/Sub emulator already runs (pid $(cat "$PIDFILE")); stop it with scripts/stop_pubsub_emulator.sh" >&2
  echo "export PUBSUB_EMULATOR_HOST=127.0.0.1:$(cat "$DIR/emulator.port" 2>/dev/null || echo "$PORT")"
  exit 0
fi
if ! command -v gcloud >/dev/null 2>&1; then
  echo "gcloud is not installed: install the Google Cloud CLI and its component google-cloud-cli-pubsub-emulator" >&2
  exit 2
fi
SDK_ROOT="$(gcloud info --format='value(installation.sdk_root)')"
EMULATOR="$SDK_ROOT/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
if [[ ! -x "$EMULATOR" ]]; then
  echo "no Pub/Sub emulator at $EMULATOR: install google-cloud-cli-pubsub-emulator (apt) or 'gcloud components install pubsub-emulator'" >&2
  exit 2
fi
# The script execs java, so this PID is the server's (killing it leaves no orphan).
"$EMULATOR" --host=127.0.0.1 --port="$PORT" >"$DIR/emulator.log" 2>&1 &
PID=$!
echo "$PID" >"$PIDFILE"
echo "$PORT" >"$DIR/emulator.port"
for _ in $(seq 1 300); do  # at most 30 s
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "export PUBSUB_EMULATOR_HOST=127.0.0.1:$PORT"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "the Pub/Sub emulator exited at start-up; see $DIR/emulator.log" >&2
    rm -f "$PIDFILE"
    exit 1
  fi
  sleep 0.1
done
echo "the Pub/Sub emulator did not open 127.0.0.1:$PORT within 30 s; see $DIR/emulator.log" >&2
kill "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
