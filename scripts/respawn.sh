#!/usr/bin/env bash
# Run a command, and run it again whenever it exits, as a supervisor (systemd Restart=always)
# would: a Celery worker can die on a broker outage (kombu's restore of unacknowledged messages
# fails while Redis is down). SIGTERM or SIGINT stops the command and this loop.
set -u
child=0
stop() {
  kill -TERM "$child" 2>/dev/null
  wait "$child" 2>/dev/null
  exit 0
}
trap stop TERM INT
while true; do
  "$@" &
  child=$!
  wait "$child"
  status=$?
  echo "[respawn] '$*' exited with status $status; starting it again in 2 s" >&2
  sleep 2 &
  wait $!
done
