#!/usr/bin/env bash
# The whole system: every process of the Procfile (web, worker, poller, beat, and the local
# Binance simulator unless the exchange is elsewhere). Prints the page's URL once it is ready.
#   bash scripts/run.sh                    offline, against the simulator
#   bash scripts/run.sh --no-simulator     the real exchange (BINANCE_BASE_URL, by default
#                                          https://fapi.binance.com), no simulator; also
#                                          SIMULATOR=off, and automatic when BINANCE_BASE_URL
#                                          is not a local address
#   bash scripts/run.sh --dry-run          say what would run, and start nothing
# Settings: the environment, then .env (volspike/dotenv.py; the shell always wins).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --no-simulator) export SIMULATOR=off ;;
    --simulator) export SIMULATOR=on ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "[run] unknown option: $arg (try --help)" >&2; exit 2 ;;
  esac
done
load_env
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-volspike.settings.local}"
export WEB_PORT="${WEB_PORT:-8000}" SIM_HOST="${SIM_HOST:-127.0.0.1}" SIM_PORT="${SIM_PORT:-8090}"
# The simulator runs when SIMULATOR=on, or (auto, the default) when the exchange is local.
case "${SIMULATOR:-auto}" in
  on|off) simulator="$SIMULATOR" ;;
  auto)
    case "${BINANCE_BASE_URL:-}" in
      ""|http://127.*|http://localhost[:/]*|http://localhost|http://\[::1\]*) simulator=on ;;
      *) simulator=off ;;
    esac ;;
  *) echo "[run] SIMULATOR must be on, off or auto, not '$SIMULATOR'" >&2; exit 2 ;;
esac
if [ "$simulator" = on ]; then
  export BINANCE_BASE_URL="${BINANCE_BASE_URL:-http://$SIM_HOST:$SIM_PORT}"
else  # no simulator and no exchange named: the real one
  export BINANCE_BASE_URL="${BINANCE_BASE_URL:-https://fapi.binance.com}"
fi
processes="$(sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' Procfile | { [ "$simulator" = on ] && cat || grep -vx simulator; } | xargs)"
if [ "$dry_run" = 1 ]; then
  echo "[run] would start: $processes; exchange $BINANCE_BASE_URL; web on 127.0.0.1:$WEB_PORT; settings $DJANGO_SETTINGS_MODULE" >&2
  exit 0
fi
bash scripts/bootstrap.sh
bash scripts/services.sh
mkdir -p .local
.venv/bin/python manage.py migrate --no-input
.venv/bin/python manage.py collectstatic --no-input -v0
echo "[run] starting $processes; exchange $BINANCE_BASE_URL (Ctrl-C stops every process)" >&2

# Once /health answers and the liquid universe has members, print where everything is.
base="http://127.0.0.1:$WEB_PORT"
.venv/bin/python - "$base" "$$" <<'PY' &
import json, os, sys, time, urllib.error, urllib.request

base, parent = sys.argv[1], int(sys.argv[2])

def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except Exception:  # refused, timed out, cut short: not ready yet
        return None, b""

def alive():
    try:
        os.kill(parent, 0)
        return True
    except OSError:
        return False

deadline, said, members = time.monotonic() + 300, "not ready", 0
while alive() and time.monotonic() < deadline:
    status, _ = get("/health")
    if status == 200:
        status, body = get("/api/market/open-interest/liquid-universe")
        if status in (401, 403):  # reads need a token: /health is all we can see
            break
        if status == 200 and body:
            universe = json.loads(body)
            members = universe["counts"]["members"]
            if members:
                break
            said = universe.get("lastFailureReason") or "the universe is still empty"
    time.sleep(1)
else:
    if alive():
        print(f"[run] not ready after 300 s ({said}); the page is at {base}/", file=sys.stderr)
    sys.exit(0)
universe = f"{members} liquid symbols" if members else "web up"
print(
    f"\n[run] ready ({universe}):\n"
    f"[run]   the page   {base}/  (= {base}/debug/open-interest)\n"
    f"[run]   API docs   {base}/api/docs/\n"
    f"[run]   admin      {base}/admin/  (a login: .venv/bin/python manage.py createsuperuser)\n",
    file=sys.stderr, flush=True,
)
PY
# -e /dev/null: honcho must not read .env itself (its parser differs, and it would override the shell).
exec .venv/bin/honcho start -e /dev/null -f Procfile $processes
