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
# Only this stack's Ray nodes: both share the head's session folder under $STATE/ray
# (`ray stop` would end every Ray instance on the machine, other drivers' too).
ray_pids=$(pgrep -f -- "$STATE/ray/session_" || true)
if [ -n "$ray_pids" ]; then
  children=$(for p in $ray_pids; do pgrep -P "$p"; done || true)
  kill -TERM $ray_pids $children 2>/dev/null
  for _ in $(seq 1 10); do
    alive=$(for p in $ray_pids $children; do kill -0 "$p" 2>/dev/null && echo "$p"; done)
    [ -z "$alive" ] && break
    sleep 0.5
  done
  [ -n "$alive" ] && kill -KILL $alive 2>/dev/null
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
