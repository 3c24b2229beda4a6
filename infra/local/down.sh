#!/usr/bin/env bash
# Stop everything infra/local/up.sh started. Data (PostgreSQL, artifacts, DVC remote) is kept
# unless --purge is given.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${HONING_STACK_DIR:-/tmp/honing-stack}
BIN=${HONING_VENV_BIN:-$ROOT/.venv/bin}
log() { printf '[down] %s\n' "$*"; }

# Each service is sent SIGTERM and given 10 s before SIGKILL. The worker, MLflow and the Ray
# nodes stop together (an idle Prefect worker alone takes 10-15 s to wind down); the Prefect
# server after the worker, which reports to it while it stops.
pids_of() {  # names... -> the process groups up.sh recorded for them
  local name
  for name in "$@"; do
    [ -f "$STATE/pids/$name.pid" ] && cat "$STATE/pids/$name.pid"
  done
}
stop() {  # "what" pid... : TERM every process (its group, where it leads one), wait, KILL
  local what=$1 pid alive
  shift
  [ $# -eq 0 ] && return 0
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 1 20); do
    alive=$(for pid in "$@"; do kill -0 "$pid" 2>/dev/null && echo "$pid"; done)
    [ -z "$alive" ] && break
    sleep 0.5
  done
  for pid in "$@"; do  # what is left: the process, and its group's stragglers where it led one
    kill -KILL -- "-$pid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
  done
  log "stopped $what"
}
# Only this stack's Ray nodes: both share the head's session folder under $STATE/ray
# (`ray stop` would end every Ray instance on the machine, other drivers' too).
ray_pids=$(pgrep -f -- "$STATE/ray/session_" || true)
ray_children=$(for p in $ray_pids; do pgrep -P "$p"; done || true)
# shellcheck disable=SC2046,SC2086
stop "the Prefect worker, MLflow and Ray" $(pids_of prefect-worker mlflow) $ray_pids $ray_children
# shellcheck disable=SC2046
stop "the Prefect server" $(pids_of prefect-server)
rm -f "$STATE/pids/prefect-worker.pid" "$STATE/pids/mlflow.pid" "$STATE/pids/prefect-server.pid"
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
