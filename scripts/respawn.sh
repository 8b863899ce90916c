#!/usr/bin/env bash
# Run a command, and run it again whenever it exits, as a supervisor (systemd Restart=always)
# would: a Celery worker can die on a broker outage (kombu's restore of unacknowledged messages
# fails while Redis is down). SIGTERM or SIGINT stops the command and this loop.
#
# The command runs in a session of its own, so a signal meant for this loop's process group
# (honcho's SIGTERM, a terminal's Ctrl-C) reaches only its main process, as one SIGTERM: Celery's
# warm shutdown, instead of its pool children being killed mid-task (WorkerLostError). What is
# still running after RESPAWN_STOP_GRACE_SEC (default 3, well under honcho's 5 s before SIGKILL) is
# killed with its children, so nothing outlives the loop.
set -u
grace="${RESPAWN_STOP_GRACE_SEC:-3}"
child=0
stop() {
  trap '' TERM INT
  if [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null; then
    for _ in $(seq 1 $((grace * 10))); do
      kill -0 "$child" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$child" 2>/dev/null
  fi
  wait "$child" 2>/dev/null
  exit 0
}
trap stop TERM INT
while true; do
  # A background job of a non-interactive shell is no group leader, so setsid needs no fork:
  # $! is the command itself, and the leader of its own process group.
  setsid "$@" &
  child=$!
  wait "$child"
  status=$?
  echo "[respawn] '$*' exited with status $status; starting it again in 2 s" >&2
  sleep 2 &
  wait $!
done
