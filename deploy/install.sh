#!/usr/bin/env bash
# Install or upgrade VolSpike OI on one Debian 12 server, as root, from this checkout:
#
#   sudo bash deploy/install.sh --domain oi.example.com [--cert FULLCHAIN --key PRIVKEY]
#
# Safe to run again (an upgrade is: git pull, then this again). It
#  1. installs the OS packages it needs (python3-venv, nginx, redis-server, postgresql, openssl);
#  2. creates the system user "volspike" (no login, no home of its own);
#  3. copies this checkout to /opt/volspike/app (root-owned, read-only for the services) and
#     installs requirements.txt into /opt/volspike/venv;
#  4. writes /etc/volspike/volspike.env from deploy/production.env.example once (secret key,
#     domain and database password filled in), and never overwrites it;
#  5. creates the Postgres role and database when DATABASE_URL points at this machine;
#  6. switches Redis to the append-only file (live, without losing data) and adds
#     deploy/redis/volspike.conf to /etc/redis/redis.conf;
#  7. runs migrate, collectstatic and check --deploy with the production settings;
#  8. installs the nginx site (a self-signed certificate until you give --cert/--key or
#     certbot has made /etc/letsencrypt/live/DOMAIN) and the systemd units, then (re)starts
#     volspike.target and waits until /health/ready answers 200.
set -euo pipefail

SRC_DIR="$(cd "$(dirname "$0")/.." && pwd)"
DEPLOY="$SRC_DIR/deploy"
PREFIX="${VOLSPIKE_PREFIX:-/opt/volspike}"
APP_DIR="$PREFIX/app"
VENV_DIR="$PREFIX/venv"
ENV_DIR=/etc/volspike
ENV_FILE="$ENV_DIR/volspike.env"
STATE_DIR=/var/lib/volspike
SERVICE_USER=volspike
DOMAIN=""
TLS_CERT=""
TLS_KEY=""
START=1

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN="$2"; shift 2 ;;
    --cert) TLS_CERT="$2"; shift 2 ;;
    --key) TLS_KEY="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 ;;
  esac
done

log() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash deploy/install.sh --domain ...)"
command -v apt-get >/dev/null || die "this script installs Debian packages (apt-get not found)"

# --- 1. OS packages -------------------------------------------------------------------------
wanted=(python3 python3-venv nginx redis-server postgresql openssl rsync curl)
missing=()
for package in "${wanted[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 needed ($(python3 --version) found)"

# --- 2. the service user ------------------------------------------------------------------------
if ! id "$SERVICE_USER" >/dev/null 2>&1; then
  log "creating system user $SERVICE_USER"
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin "$SERVICE_USER"
fi
install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$STATE_DIR"

# --- 3. application and virtualenv ---------------------------------------------------------------
log "copying $SRC_DIR to $APP_DIR"
install -d -m 0755 "$PREFIX" "$APP_DIR"
rsync -a --delete --chown=root:root --chmod=Du=rwx,Dgo=rx,Fu=rw,Fgo=r \
  --exclude .git --exclude .venv --exclude .env --exclude .local --exclude staticfiles \
  --exclude test-artifacts --exclude __pycache__ --exclude .pytest_cache --exclude .ruff_cache \
  "$SRC_DIR/" "$APP_DIR/"
chmod 0755 "$APP_DIR/manage.py"
if [ ! -x "$VENV_DIR/bin/python" ]; then
  log "creating $VENV_DIR"
  python3 -m venv "$VENV_DIR"
fi
stamp="$VENV_DIR/.requirements.sha256"
wanted_hash="$(sha256sum "$APP_DIR/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted_hash" ]; then
  log "installing requirements.txt into $VENV_DIR"
  "$VENV_DIR/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV_DIR/bin/pip" install -q --disable-pip-version-check -r "$APP_DIR/requirements.txt"
  echo "$wanted_hash" >"$stamp"
fi
"$VENV_DIR/bin/python" -m compileall -q "$APP_DIR" >/dev/null || true

# --- 4. the environment file (created once, never overwritten) ------------------------------------
install -d -m 0750 -g "$SERVICE_USER" "$ENV_DIR"
if [ ! -f "$ENV_FILE" ]; then
  [ -n "$DOMAIN" ] || die "first install: give --domain (the server's public name)"
  log "writing $ENV_FILE"
  secret="$(openssl rand -hex 32)"
  db_password="$(openssl rand -hex 16)"
  umask 027  # the secret is never readable by others, not even for a moment
  sed -e "s|^DJANGO_SECRET_KEY=.*|DJANGO_SECRET_KEY=$secret|" \
      -e "s|^DJANGO_ALLOWED_HOSTS=.*|DJANGO_ALLOWED_HOSTS=$DOMAIN|" \
      -e "s|^DATABASE_URL=postgres://volspike:change-me@|DATABASE_URL=postgres://volspike:$db_password@|" \
      "$DEPLOY/production.env.example" >"$ENV_FILE"
  umask 022
fi
chown root:"$SERVICE_USER" "$ENV_FILE"
chmod 0640 "$ENV_FILE"
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
DOMAIN="${DOMAIN:-${DJANGO_ALLOWED_HOSTS%%,*}}"
: "${WEB_PORT:?WEB_PORT missing from $ENV_FILE}"
: "${DJANGO_STATIC_ROOT:?DJANGO_STATIC_ROOT missing from $ENV_FILE}"

# --- 5. Postgres role and database (when DATABASE_URL is on this machine) ----------------------
eval "$(python3 - "$DATABASE_URL" <<'PY'
import shlex, sys
from urllib.parse import unquote, urlsplit
u = urlsplit(sys.argv[1])
for name, value in {"PG_HOST": u.hostname or "127.0.0.1", "PG_PORT": u.port or 5432,
                    "PG_USER": unquote(u.username or ""), "PG_PASSWORD": unquote(u.password or ""),
                    "PG_DB": u.path.lstrip("/")}.items():
    print(f"{name}={shlex.quote(str(value))}")
PY
)"
case "$PG_HOST" in
  127.0.0.1|localhost|::1)
    systemctl start postgresql 2>/dev/null || true
    log "ensuring Postgres role $PG_USER and database $PG_DB"
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
      -v user="$PG_USER" -v password="$PG_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'user', :'password') \gexec
SQL
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
      -v user="$PG_USER" -v db="$PG_DB" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    ;;
  *) log "DATABASE_URL is on $PG_HOST: the role and database must exist there" ;;
esac

# --- 6. Redis with the append-only file ----------------------------------------------------------
install -m 0644 "$DEPLOY/redis/volspike.conf" /etc/redis/volspike.conf
systemctl start redis-server 2>/dev/null || true
if [ "$(redis-cli CONFIG GET appendonly 2>/dev/null | tail -n1)" = "no" ]; then
  # Switched on live, Redis writes the AOF from memory first; a restart with "appendonly yes"
  # and no AOF yet would start empty instead.
  log "switching Redis to the append-only file (live)"
  redis-cli CONFIG SET appendonly yes >/dev/null
  for _ in $(seq 1 120); do
    redis-cli INFO persistence | grep -q '^aof_rewrite_in_progress:0' \
      && redis-cli INFO persistence | grep -q '^aof_rewrite_scheduled:0' && break
    sleep 0.5
  done
fi
if ! grep -qx 'include /etc/redis/volspike.conf' /etc/redis/redis.conf; then
  log "adding deploy/redis/volspike.conf to /etc/redis/redis.conf"
  printf '\n# VolSpike OI (deploy/install.sh): durability settings; keep this line last.\ninclude /etc/redis/volspike.conf\n' \
    >>/etc/redis/redis.conf
  systemctl restart redis-server
fi

# --- 7. database schema, static files, deploy checks ------------------------------------------
as_service() { runuser -u "$SERVICE_USER" -- env -C "$APP_DIR" "$@"; }
log "migrate"
as_service "$VENV_DIR/bin/python" manage.py migrate --no-input
log "collectstatic into $DJANGO_STATIC_ROOT"
install -d -m 0755 "$DJANGO_STATIC_ROOT"
(cd "$APP_DIR" && "$VENV_DIR/bin/python" manage.py collectstatic --no-input --clear -v0)
chmod -R a+rX "$DJANGO_STATIC_ROOT"
as_service "$VENV_DIR/bin/python" manage.py check --deploy --fail-level WARNING

# --- 8. TLS, nginx, systemd ------------------------------------------------------------------------
if [ -z "$TLS_CERT" ]; then
  if [ -f "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" ]; then
    TLS_CERT="/etc/letsencrypt/live/$DOMAIN/fullchain.pem"
    TLS_KEY="/etc/letsencrypt/live/$DOMAIN/privkey.pem"
  else
    TLS_CERT="$ENV_DIR/tls/selfsigned.crt"
    TLS_KEY="$ENV_DIR/tls/selfsigned.key"
    if [ ! -f "$TLS_CERT" ]; then
      log "no certificate given: a self-signed one for $DOMAIN (replace it: see README, Deploy)"
      install -d -m 0700 "$ENV_DIR/tls"
      openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$DOMAIN" \
        -addext "subjectAltName=DNS:$DOMAIN" -keyout "$TLS_KEY" -out "$TLS_CERT" 2>/dev/null
    fi
  fi
fi
[ -n "$TLS_KEY" ] || die "--cert needs --key"
install -d -m 0755 /etc/nginx/snippets /var/www/letsencrypt
install -m 0644 "$DEPLOY/nginx/volspike-proxy.conf" /etc/nginx/snippets/volspike-proxy.conf
bash "$DEPLOY/render.sh" "$DEPLOY/nginx/volspike.conf" \
  DOMAIN="$DOMAIN" HTTP_PORT=80 HTTPS_PORT=443 HTTPS_PORT_SUFFIX= WEB_PORT="$WEB_PORT" \
  TLS_CERT="$TLS_CERT" TLS_KEY="$TLS_KEY" STATIC_ROOT="${DJANGO_STATIC_ROOT%/}" \
  NGINX_PROXY_PARAMS=/etc/nginx/snippets/volspike-proxy.conf \
  >/etc/nginx/sites-available/volspike
ln -sf /etc/nginx/sites-available/volspike /etc/nginx/sites-enabled/volspike
nginx -t -q
systemctl reload nginx 2>/dev/null || systemctl start nginx

for unit in volspike-web.service volspike-worker.service volspike-poller.service \
            volspike-beat.service volspike-streams.service volspike-simulator.service volspike.target; do
  bash "$DEPLOY/render.sh" "$DEPLOY/systemd/$unit" \
    APP_DIR="$APP_DIR" VENV_DIR="$VENV_DIR" ENV_FILE="$ENV_FILE" USER="$SERVICE_USER" \
    STATE_DIR="$STATE_DIR" >"/etc/systemd/system/$unit"
done
bash "$DEPLOY/render.sh" "$DEPLOY/volspike-manage" \
  APP_DIR="$APP_DIR" VENV_DIR="$VENV_DIR" ENV_FILE="$ENV_FILE" USER="$SERVICE_USER" \
  >/usr/local/bin/volspike-manage
chmod 0755 /usr/local/bin/volspike-manage
systemd-analyze verify /etc/systemd/system/volspike-*.service /etc/systemd/system/volspike.target
systemctl daemon-reload
if [ "$START" -eq 1 ]; then
  systemctl enable volspike.target volspike-web volspike-worker volspike-poller volspike-beat volspike-streams
  log "restarting volspike.target"
  systemctl restart volspike.target
  for _ in $(seq 1 90); do
    curl -fsS "http://127.0.0.1:$WEB_PORT/health/ready" >/dev/null 2>&1 && break
    sleep 2
  done
  curl -sS "http://127.0.0.1:$WEB_PORT/health/ready" || true
  echo
fi
log "done: https://$DOMAIN/debug/open-interest (an admin user: sudo volspike-manage createsuperuser)"
