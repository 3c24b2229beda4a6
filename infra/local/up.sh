#!/usr/bin/env bash
# Start honing's distributed profile on this machine, without Docker:
#   PostgreSQL (Debian package) -> MLflow tracking server (backend store in PostgreSQL,
#   artifacts served by the server) -> Prefect server (database in PostgreSQL) + a process
#   work pool and worker -> Ray head + a second Ray node -> a local DVC remote.
# Everything binds 127.0.0.1, the two Ray nodes included; Ray's cluster also requires a token
# (RAY_AUTH_MODE=token).
# Writes $HONING_STACK_DIR/stack.env: `source` it to point honing at the stack.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${HONING_STACK_DIR:-/tmp/honing-stack}
BIN=${HONING_VENV_BIN:-$ROOT/.venv/bin}
PG_PORT=${HONING_PG_PORT:-5433}
MLFLOW_PORT=${HONING_MLFLOW_PORT:-5001}
PREFECT_PORT=${HONING_PREFECT_PORT:-4201}
RAY_PORT=${HONING_RAY_PORT:-6380}
RAY_NODE_CPUS=${HONING_RAY_NODE_CPUS:-1}
POOL=${HONING_WORK_POOL:-honing-process}

export DO_NOT_TRACK=true RAY_USAGE_STATS_ENABLED=0 PREFECT_SERVER_ANALYTICS_ENABLED=false \
  MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 \
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

log() { printf '[up] %s\n' "$*"; }
on_error() {  # show the newest log so a failure explains itself
  local newest
  newest=$(ls -t "$STATE"/logs/*.log 2>/dev/null | head -n 1)
  log "failed at line $1; last lines of ${newest:-no log}:"
  [ -n "$newest" ] && tail -n 25 "$newest" >&2
}
trap 'on_error $LINENO' ERR
wait_http() {  # url, name, pidfile
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then log "$2 is up at $1"; return 0; fi
    if ! kill -0 "$(cat "$3")" 2>/dev/null; then log "$2 died; see $STATE/logs"; return 1; fi
    sleep 1
  done
  log "$2 did not answer at $1 in 120 s"; return 1
}
start_bg() {  # name, command...
  local name=$1; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/pids/$name.pid"
}

mkdir -p "$STATE"/{logs,pids,artifacts,dvc-remote,ray,prefect}
chmod 755 "$STATE"

# --- secrets: generated once, kept out of the repo, mode 600 ---------------------------------
# Every secret file is created mode 600 (umask 077 before it exists, never chmod after), and
# no secret goes on a command line (`ps` shows those to every local user): PostgreSQL's
# password reaches libpq through PGPASSFILE, the others through the environment.
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
umask 077
touch "$STATE/secrets.env"
for key in HONING_PG_PASSWORD HONING_MLFLOW_PASSWORD HONING_MLFLOW_SECRET_KEY \
           HONING_PREFECT_PASSWORD; do
  grep -q "^$key=" "$STATE/secrets.env" || echo "$key=$(secret)" >>"$STATE/secrets.env"
done
[ -f "$STATE/ray_token" ] ||
  python3 -c 'import secrets; print(secrets.token_hex(32), end="")' >"$STATE/ray_token"
umask 022
# shellcheck disable=SC1091
source "$STATE/secrets.env"
PG_USER=honing

# --- PostgreSQL --------------------------------------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PG_BIN/initdb" ] || { log "PostgreSQL not found: apt-get install postgresql"; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGDATA=$STATE/pg
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
  pwfile=$(umask 077; mktemp)  # mode 600 from the start, readable by initdb's user only
  echo "$HONING_PG_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
  as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$PG_USER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$STATE/logs/initdb.log"
  rm -f "$pwfile"
fi
if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && touch "$STATE/logs/postgres.log" && chown postgres "$STATE/logs/postgres.log"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$STATE/logs/postgres.log" -w start \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGDATA" >/dev/null
fi
log "PostgreSQL is up at 127.0.0.1:$PG_PORT"
export PGPASSFILE=$STATE/pgpass
(umask 077; echo "127.0.0.1:$PG_PORT:*:$PG_USER:$HONING_PG_PASSWORD" >"$PGPASSFILE")
for db in mlflow prefect; do
  psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE $db"
done
PG_URI="postgresql+psycopg2://$PG_USER@127.0.0.1:$PG_PORT"  # the password: PGPASSFILE

# --- MLflow tracking server --------------------------------------------------------------------
# MLflow's basic-auth app (infra/mlflow-server.sh, as compose and Kubernetes run it): the
# admin's credentials are in the stack's secret files, its users in a SQLite file beside them.
# MLflow's job consumers (three huey processes for its GenAI jobs, which honing never queues)
# stay off: seconds of CPU at the start, and polling after it.
if [ ! -f "$STATE/pids/mlflow.pid" ] || ! kill -0 "$(cat "$STATE/pids/mlflow.pid")" 2>/dev/null; then
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  MLFLOW_AUTH_CONFIG_PATH=$STATE/mlflow-auth.ini \
  MLFLOW_AUTH_DATABASE_URI=sqlite:///$STATE/mlflow-auth.db \
  HONING_MLFLOW_PASSWORD=$HONING_MLFLOW_PASSWORD \
  MLFLOW_FLASK_SERVER_SECRET_KEY=$HONING_MLFLOW_SECRET_KEY \
  MLFLOW=$BIN/mlflow \
  start_bg mlflow sh "$ROOT/infra/mlflow-server.sh" \
    --backend-store-uri "$PG_URI/mlflow" \
    --artifacts-destination "$STATE/artifacts" --serve-artifacts \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1
fi
wait_http "http://127.0.0.1:$MLFLOW_PORT/health" "MLflow server" "$STATE/pids/mlflow.pid"

# --- Prefect server, work pool and worker ------------------------------------------------------
export PREFECT_HOME=$STATE/prefect
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
export PREFECT_API_AUTH_STRING="honing:$HONING_PREFECT_PASSWORD"  # the server's basic auth
if [ ! -f "$STATE/pids/prefect-server.pid" ] ||
   ! kill -0 "$(cat "$STATE/pids/prefect-server.pid")" 2>/dev/null; then
  PREFECT_SERVER_DATABASE_CONNECTION_URL="postgresql+asyncpg://$PG_USER:$HONING_PG_PASSWORD@127.0.0.1:$PG_PORT/prefect" \
  PREFECT_SERVER_API_AUTH_STRING="honing:$HONING_PREFECT_PASSWORD" \
  PREFECT_UI_ENABLED=false \
    start_bg prefect-server "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
fi
wait_http "http://127.0.0.1:$PREFECT_PORT/api/health" "Prefect server" "$STATE/pids/prefect-server.pid"
"$BIN/prefect" work-pool inspect "$POOL" >/dev/null 2>&1 ||
  "$BIN/prefect" work-pool create "$POOL" --type process >/dev/null
log "Prefect work pool '$POOL' is ready"

# --- Ray: a head node and a second node, on 127.0.0.1, token authentication on ------------------
# Ray's loopback switch keeps every Ray process on 127.0.0.1; its CLI refuses a second node
# under that switch, so ray_node.py starts the second one (see that file).
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$STATE/ray_token
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
unset RAY_ADDRESS
RAY_ADDR=127.0.0.1:$RAY_PORT
# `ray status` alone, with no cluster there, retries for some 40 s before it says so: ask it
# only when something listens on the head's port
ray_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$RAY_PORT") 2>/dev/null; }
if ! ray_listening || ! "$BIN/ray" status --address "$RAY_ADDR" >/dev/null 2>&1; then
  "$BIN/ray" start --head --port "$RAY_PORT" --num-cpus "$RAY_NODE_CPUS" \
    --include-dashboard=false --disable-usage-stats --temp-dir "$STATE/ray" \
    >"$STATE/logs/ray-head.log" 2>&1
  "$BIN/python" "$ROOT/infra/local/ray_node.py" "$RAY_ADDR" --num-cpus "$RAY_NODE_CPUS" \
    --temp-dir "$STATE/ray" >"$STATE/logs/ray-worker.log" 2>&1
fi
for _ in $(seq 1 30); do
  nodes=$("$BIN/python" - "$RAY_ADDR" <<'PY' 2>/dev/null || true
import sys, ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False,
         logging_level="ERROR")
print(sum(1 for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == "127.0.0.1"))
PY
)
  [ "${nodes:-0}" -ge 2 ] && break
  sleep 1
done
[ "${nodes:-0}" -ge 2 ] || { log "Ray cluster did not reach 2 nodes on 127.0.0.1"; exit 1; }
log "Ray cluster is up at $RAY_ADDR with $nodes nodes (loopback only, token auth)"

# --- DVC remote (a folder here; s3://... on a real deployment) --------------------------------
log "DVC remote folder: $STATE/dvc-remote"

# --- the environment that points honing at this stack -----------------------------------------
umask 077
cat >"$STATE/stack.env" <<ENV
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export PREFECT_API_URL=$PREFECT_API_URL
export PREFECT_HOME=$PREFECT_HOME
export RAY_ADDRESS=$RAY_ADDR
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$STATE/ray_token
export HONING_DVC_REMOTE_URL=$STATE/dvc-remote
export HONING_PG_URI=$PG_URI
export PGPASSFILE=$PGPASSFILE
export MLFLOW_TRACKING_USERNAME=honing
export MLFLOW_TRACKING_PASSWORD=$HONING_MLFLOW_PASSWORD
export PREFECT_API_AUTH_STRING=$PREFECT_API_AUTH_STRING
ENV
umask 022
# shellcheck disable=SC1091
source "$STATE/stack.env"

# --- Prefect worker (after Ray, so flow runs inherit the stack environment) -------------------
if [ ! -f "$STATE/pids/prefect-worker.pid" ] ||
   ! kill -0 "$(cat "$STATE/pids/prefect-worker.pid")" 2>/dev/null; then
  (cd "$ROOT" && start_bg prefect-worker "$BIN/prefect" worker start --pool "$POOL" \
    --type process --name honing-local-worker)
fi
for _ in $(seq 1 60); do
  grep -q "started" "$STATE/logs/prefect-worker.log" 2>/dev/null && break
  sleep 1
done
log "Prefect worker polling pool '$POOL'"
log "stack is up; run: source $STATE/stack.env"
