#!/usr/bin/env bash
# The whole test suite, integration tests included, against real Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
# The page is tested in Debian's Chromium (driven by Playwright; never its own browser download).
if ! command -v chromium >/dev/null 2>&1; then
  echo "[test] installing Debian's chromium for the browser tests" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
mkdir -p test-artifacts
export DJANGO_SETTINGS_MODULE=volspike.settings.test
# --create-db: a fresh test database each run, so committed migrations are what is tested.
exec .venv/bin/python -m pytest --create-db "$@"
