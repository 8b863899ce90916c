#!/usr/bin/env bash
# Make sure Postgres and Redis answer at DATABASE_URL and REDIS_URL (the environment, then .env).
# When DATABASE_URL already connects, nothing else is done: no superuser, no root. Otherwise, on
# this machine only: start (and install) Postgres or Redis, and create the role and database,
# with root (sudo asks when a terminal can answer) or the postgres superuser. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

log() { printf '[services] %s\n' "$*" >&2; }
fail() { printf '[services] %s\n' "$*" >&2; exit 1; }

load_env
export DATABASE_URL="${DATABASE_URL:-postgres://volspike:volspike@127.0.0.1:5432/volspike}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
[ -x .venv/bin/python ] || bash scripts/bootstrap.sh
PY=.venv/bin/python

# The parts of both URLs, shell-quoted.
url_parts="$("$PY" - <<'PY'
import os, shlex, sys
from urllib.parse import parse_qs, unquote, urlsplit
db, rd = urlsplit(os.environ["DATABASE_URL"]), urlsplit(os.environ["REDIS_URL"])
host = db.hostname or parse_qs(db.query).get("host", [""])[0]
for name, url in (("DATABASE_URL", db), ("REDIS_URL", rd)):
    try:
        url.port
    except ValueError as error:
        sys.exit(f"[services] {name}: {error} (percent-encode @ : / # and spaces in a password)")
parts = {
    "PG_HOST": host, "PG_PORT": db.port or 5432, "PG_USER": unquote(db.username or ""),
    "PG_PASSWORD": unquote(db.password or ""), "PG_DB": unquote(db.path.lstrip("/")),
    "REDIS_HOST": rd.hostname or "127.0.0.1", "REDIS_PORT": rd.port or 6379,
    "REDIS_USER": unquote(rd.username or ""), "REDIS_PASSWORD": unquote(rd.password or ""),
    "REDIS_SCHEME": rd.scheme,
}
for key, value in parts.items():
    print(f"{key}={shlex.quote(str(value))}")
PY
)" || exit 1
eval "$url_parts"
[ -n "$PG_USER" ] && [ -n "$PG_DB" ] || fail "DATABASE_URL needs a user and a database name"
is_local() { case "$1" in ""|/*|127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
pg_where="${PG_HOST:-local socket}:$PG_PORT"

# What the project sees when it connects: ok, no-database, refused (credentials or role),
# down (nothing answers), or another error on stderr.
pg_probe() {
  "$PY" - <<'PY' 2>/dev/null || echo down
import os, re, sys
try:
    import psycopg
except ImportError:
    sys.exit(1)
from urllib.parse import urlsplit, urlunsplit
url = urlsplit(os.environ["DATABASE_URL"])
url = urlunsplit(("postgresql", *url[1:]))
try:
    psycopg.connect(url, connect_timeout=3).close()
    print("ok")
except psycopg.OperationalError as error:
    text = str(error)
    if re.search(r'database ".*" does not exist', text):
        print("no-database")
    elif re.search(r"authentication failed|role .* does not exist|no pg_hba.conf entry", text):
        print("refused")
    else:
        print("down")
PY
}

as_postgres() {  # run a command as the postgres OS user (the cluster's superuser on Debian)
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null 2>&1 && { sudo -n -u postgres true 2>/dev/null || [ -t 0 ]; }; then
    sudo -u postgres "$@"
  else
    return 1
  fi
}

start_local_postgres() {
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql postgresql-contrib \
    || fail "postgres is not installed and cannot be installed without root"
  local version cluster_version cluster_name
  version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    log "creating a postgres $version cluster on port $PG_PORT"
    as_root pg_createcluster --port "$PG_PORT" "$version" main >/dev/null \
      || fail "no postgres cluster, and creating one needs root"
  fi
  read -r cluster_version cluster_name _ < <(pg_lsclusters -h | head -n1)
  log "starting postgres cluster $cluster_version/$cluster_name"
  as_root pg_ctlcluster --skip-systemctl-redirect "$cluster_version" "$cluster_name" start \
    || fail "postgres is down at $pg_where and starting it needs root; start it, or point DATABASE_URL at a running one"
  for _ in $(seq 1 60); do
    [ "$(pg_probe)" != down ] && return 0
    sleep 0.5
  done
  fail "postgres did not start"
}

create_role_and_database() {
  local password="${PG_PASSWORD//\'/\'\'}" sql
  sql="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE \"$PG_USER\" LOGIN CREATEDB PASSWORD '$password';
  ELSE
    ALTER ROLE \"$PG_USER\" LOGIN CREATEDB PASSWORD '$password';
  END IF;
END \$\$;"
  if printf '%s' "$sql" | as_postgres psql -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres >/dev/null 2>&1 \
     || printf '%s' "$sql" | psql -q -w -v ON_ERROR_STOP=1 -h "${PG_HOST:-127.0.0.1}" -p "$PG_PORT" -U postgres -d postgres >/dev/null 2>&1; then
    log "role $PG_USER ready (LOGIN CREATEDB)"
  else
    fail "cannot connect as $PG_USER at $pg_where, and cannot act as the postgres superuser here.
    Create the role once as a superuser, e.g.:
      sudo -u postgres psql -c \"CREATE ROLE \\\"$PG_USER\\\" LOGIN CREATEDB PASSWORD '...'\"
    and put its password in DATABASE_URL (the shell or .env)."
  fi
}

ensure_postgres() {
  local state
  state="$(pg_probe)"
  if [ "$state" = down ]; then
    is_local "$PG_HOST" || fail "postgres at $pg_where does not answer; start it or fix DATABASE_URL"
    start_local_postgres
    state="$(pg_probe)"
  fi
  if [ "$state" = refused ]; then
    is_local "$PG_HOST" || fail "postgres at $pg_where refuses $PG_USER; fix DATABASE_URL"
    create_role_and_database
    state="$(pg_probe)"
  fi
  if [ "$state" = no-database ]; then
    log "creating database $PG_DB (as $PG_USER)"
    PGPASSWORD="$PG_PASSWORD" createdb -w ${PG_HOST:+-h "$PG_HOST"} -p "$PG_PORT" -U "$PG_USER" "$PG_DB" \
      || fail "$PG_USER may not create $PG_DB; give it CREATEDB or create the database as a superuser"
    state="$(pg_probe)"
  fi
  [ "$state" = ok ] || fail "postgres at $pg_where: DATABASE_URL does not connect ($state)"
  log "postgres ready: $PG_DB at $pg_where as $PG_USER"
}

redis_probe() {  # ok, refused (credentials) or down
  "$PY" - <<'PY' 2>/dev/null || echo down
import os
import redis
try:
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2).ping()
    print("ok")
except redis.AuthenticationError:
    print("refused")
except redis.ResponseError as error:  # NOAUTH, WRONGPASS
    print("refused" if "AUTH" in str(error).upper() else "down")
except redis.RedisError:
    print("down")
PY
}

ensure_redis() {
  local state
  state="$(redis_probe)"
  case "$state" in
    ok) log "redis answers on $REDIS_HOST:$REDIS_PORT"; return ;;
    refused) fail "redis on $REDIS_HOST:$REDIS_PORT refuses the user or password of REDIS_URL" ;;
  esac
  is_local "$REDIS_HOST" || fail "redis at $REDIS_HOST:$REDIS_PORT does not answer; start it or fix REDIS_URL"
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server \
    || fail "redis-server is not installed and cannot be installed without root"
  local data_dir="$PWD/.local/redis" auth=()
  mkdir -p "$data_dir"
  if [ -n "$REDIS_PASSWORD" ]; then
    if [ -n "$REDIS_USER" ] && [ "$REDIS_USER" != default ]; then
      auth=(--user "$REDIS_USER" on ">$REDIS_PASSWORD" '~*' '&*' '+@all')
    else
      auth=(--requirepass "$REDIS_PASSWORD")
    fi
  fi
  log "starting redis on $REDIS_HOST:$REDIS_PORT"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$data_dir" --logfile "$data_dir/redis.log" \
    --maxmemory-policy noeviction "${auth[@]}" >/dev/null
  for _ in $(seq 1 40); do
    [ "$(redis_probe)" = ok ] && return 0
    sleep 0.25
  done
  fail "redis did not start; see $data_dir/redis.log"
}

ensure_postgres
ensure_redis
