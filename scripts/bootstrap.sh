#!/usr/bin/env bash
# Create .venv and install the pinned requirements (again only when they changed).
#   bash scripts/bootstrap.sh         the runtime (requirements.txt): what scripts/run.sh needs
#   bash scripts/bootstrap.sh --dev   and the tests and tooling (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "[bootstrap] Python >= 3.11 needed; $PYTHON is $("$PYTHON" -V 2>&1 || echo 'missing')." >&2
  echo "[bootstrap] Install a newer one and point PYTHON at it, e.g. PYTHON=python3.12 bash $0" >&2
  exit 1
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "[bootstrap] .venv has Python $(.venv/bin/python -V 2>&1); remove it (rm -rf .venv) and run again" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv 2>/dev/null || {
    rm -rf .venv
    echo "[bootstrap] $PYTHON -m venv failed; installing python3-venv" >&2
    apt_install python3-venv
    "$PYTHON" -m venv .venv
  }
fi
install() {  # install <stamp name> <requirements file>, when the files changed since the last time
  local stamp=".venv/.$1.sha256" wanted
  wanted="$(cat requirements.txt "$2" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "[bootstrap] installing $2 into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$2"
    echo "$wanted" >"$stamp"
  fi
}
install requirements requirements.txt
if [ "${1:-}" = "--dev" ]; then
  install requirements-dev requirements-dev.txt
fi
