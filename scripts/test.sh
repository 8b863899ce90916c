#!/usr/bin/env bash
# The whole test suite, integration tests included, against real Postgres and Redis.
# Every run has a Redis server and a Postgres test database of its own, so two runs on one machine
# (two checkouts, CI beside a developer) never flush or drop each other's state.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
load_env
bash scripts/bootstrap.sh --dev
bash scripts/services.sh
# The page is tested in Debian's Chromium (driven by Playwright; never its own browser download).
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium || { echo "[test] the browser tests need Debian's chromium" >&2; exit 1; }
fi
# The scale-out test builds poller hosts in network namespaces (root only), reaching Redis and
# Postgres through socat relays.
if [ "$(id -u)" = 0 ] && ! command -v socat >/dev/null 2>&1; then
  apt_install socat iproute2 || { echo "[test] the scale-out test needs socat and iproute2" >&2; exit 1; }
fi
mkdir -p test-artifacts
export DJANGO_SETTINGS_MODULE=volspike.settings.test

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/volspike-test.XXXXXX")"
redis_port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --dir "$run_dir" --pidfile "$run_dir/redis.pid" --logfile "$run_dir/redis.log" >/dev/null
export TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export TEST_DATABASE_NAME="test_volspike_$$"
cleanup() {
  [ -f "$run_dir/redis.pid" ] && kill "$(cat "$run_dir/redis.pid")" 2>/dev/null || true
  .venv/bin/python - <<'PY' || true
import os
import django
django.setup()
from django.db import connection
name = os.environ["TEST_DATABASE_NAME"]
with connection._nodb_cursor() as cursor:  # the run's database, and each xdist worker's (_gw0...)
    cursor.execute("SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                   [name, name + "\\_gw%"])
    for (database,) in cursor.fetchall():
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
PY
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 40); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
# The whole suite runs in TEST_WORKERS parallel pytest-xdist workers (default 6: most integration
# tests wait on intervals, not on the CPU; on 2 cores 6 workers took 388 s where 4 took 467 s,
# with the CPU still 13% idle), test by test, an idle worker taking tests queued on a
# busy one (worksteal: the long process tests never pile up at the end); a run of chosen test
# files in one process unless TEST_WORKERS says otherwise.
workers="${TEST_WORKERS:-6}"
for arg in "$@"; do
  case "$arg" in tests*|*.py|*::*) workers="${TEST_WORKERS:-0}" ;; esac
done
# --create-db: a fresh test database each run, so committed migrations are what is tested.
.venv/bin/python -m pytest --create-db -n "$workers" --dist worksteal "$@"
