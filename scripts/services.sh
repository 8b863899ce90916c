#!/usr/bin/env bash
# Make sure a local Postgres and Redis answer on the configured addresses; start (and, as root on
# Debian, install) them where absent; create the project's role and database. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[services] %s\n' "$*" >&2; }

# Read DATABASE_URL / REDIS_URL from the environment, then .env, then the defaults.
dotenv_value() { [ -f .env ] && sed -n "s/^$1=//p" .env | tail -n1 || true; }
DATABASE_URL="${DATABASE_URL:-$(dotenv_value DATABASE_URL)}"
DATABASE_URL="${DATABASE_URL:-postgres://volspike:volspike@127.0.0.1:5432/volspike}"
REDIS_URL="${REDIS_URL:-$(dotenv_value REDIS_URL)}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

eval "$(python3 - "$DATABASE_URL" "$REDIS_URL" <<'PY'
import sys
from urllib.parse import urlsplit, unquote
db, rd = urlsplit(sys.argv[1]), urlsplit(sys.argv[2])
print(f"PG_HOST={db.hostname or '127.0.0.1'} PG_PORT={db.port or 5432}")
print(f"PG_USER={unquote(db.username or 'volspike')} PG_PASSWORD={unquote(db.password or '')}")
print(f"PG_DB={db.path.lstrip('/') or 'volspike'}")
print(f"REDIS_HOST={rd.hostname or '127.0.0.1'} REDIS_PORT={rd.port or 6379}")
PY
)"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
apt_install() {
  log "installing $* from the OS packages"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

# psql as the cluster's superuser: the postgres OS user over the socket, else trust over TCP.
psql_admin() {
  local sql
  sql="$(cat)"
  if printf '%s' "$sql" | as_postgres psql -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres 2>/dev/null; then
    return 0
  fi
  printf '%s' "$sql" | psql -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres
}

ensure_postgres() {
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
    log "postgres answers on $PG_HOST:$PG_PORT"
  else
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql postgresql-contrib
    local version
    version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
    if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
      log "creating a postgres $version cluster on port $PG_PORT"
      $SUDO pg_createcluster --port "$PG_PORT" "$version" main >/dev/null
    fi
    local cluster_version cluster_name
    read -r cluster_version cluster_name _ < <(pg_lsclusters -h | head -n1)
    log "starting postgres cluster $cluster_version/$cluster_name"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$cluster_version" "$cluster_name" start || true
    for _ in $(seq 1 60); do
      pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
      sleep 0.5
    done
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || { log "postgres did not start"; exit 1; }
  fi
  # Role (allowed to create the test database) and database, idempotently.
  psql_admin <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
  if ! PGPASSWORD="$PG_PASSWORD" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    log "creating database $PG_DB"
    PGPASSWORD="$PG_PASSWORD" createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  fi
  log "postgres ready: database $PG_DB, role $PG_USER"
}

ensure_redis() {
  if redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    log "redis answers on $REDIS_HOST:$REDIS_PORT"
    return
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  local data_dir=".local/redis"
  mkdir -p "$data_dir"
  log "starting redis on $REDIS_HOST:$REDIS_PORT"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$PWD/$data_dir" --logfile "$PWD/$data_dir/redis.log" \
    --maxmemory-policy noeviction
  for _ in $(seq 1 40); do
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.25
  done
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping | grep -q PONG || { log "redis did not start"; exit 1; }
}

ensure_postgres
ensure_redis
