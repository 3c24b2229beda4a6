#!/usr/bin/env bash
# Stop everything infra/local/up.sh started. Data (PostgreSQL, artifacts, DVC remote) is kept
# unless --purge is given.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${HONING_STACK_DIR:-/tmp/honing-stack}
BIN=${HONING_VENV_BIN:-$ROOT/.venv/bin}
log() { printf '[down] %s\n' "$*"; }

for name in prefect-worker prefect-server mlflow; do
  pidfile=$STATE/pids/$name.pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    log "stopped $name"
  fi
done
if [ -f "$STATE/ray_token" ]; then
  RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$STATE/ray_token "$BIN/ray" stop --force >/dev/null 2>&1
  log "stopped Ray"
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -f "$STATE/pg/PG_VERSION" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1
  else
    "$PG_BIN/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1
  fi
  log "stopped PostgreSQL"
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$STATE"
  log "removed $STATE"
fi
