#!/usr/bin/env bash
# The whole test suite, integration tests included, against real Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
mkdir -p test-artifacts
export DJANGO_SETTINGS_MODULE=volspike.settings.test
# --create-db: a fresh test database each run, so committed migrations are what is tested.
exec .venv/bin/python -m pytest --create-db "$@"
