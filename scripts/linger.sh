#!/usr/bin/env bash
# linger.sh SECONDS COMMAND...: run COMMAND; on SIGTERM or SIGINT keep it running SECONDS more,
# then stop it with SIGTERM. The Procfile's simulator lingers, so that on Ctrl-C the poller's
# last shards finish against it instead of logging a connection failure for every symbol.
# COMMAND runs in a session of its own: a signal to this script's process group reaches only this.
set -u
linger="$1"
shift
setsid "$@" &
child=$!
stop() {
  trap '' TERM INT
  for _ in $(seq 1 $((linger * 10))); do
    kill -0 "$child" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$child" 2>/dev/null
  wait "$child" 2>/dev/null
  exit 0
}
trap stop TERM INT
wait "$child"
