#!/usr/bin/env bash
# The whole system, offline, against the local Binance simulator: every process of the Procfile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
mkdir -p .local
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-volspike.settings.local}"
.venv/bin/python manage.py migrate --no-input
.venv/bin/python manage.py collectstatic --no-input -v0
echo "[run] web on http://127.0.0.1:${WEB_PORT:-8000}  (Ctrl-C stops every process)" >&2
exec .venv/bin/honcho start -f Procfile
