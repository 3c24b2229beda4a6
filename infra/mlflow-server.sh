#!/bin/sh
# MLflow's tracking server behind its basic-auth app, as every honing stack runs it
# (infra/local/up.sh, compose.yaml, k8s/services.yaml): every request needs a user, and
# anonymous reads and writes are refused (HTTP 401). Writes the app's config to
# $MLFLOW_AUTH_CONFIG_PATH (mode 600) from the environment, then runs
#   mlflow server --app-name basic-auth "$@"
# No secret is an argument (`ps` shows those to every local user). The environment:
#   MLFLOW_AUTH_CONFIG_PATH   where the config goes (MLflow reads it from there)
#   MLFLOW_AUTH_DATABASE_URI  where MLflow keeps its users: a PostgreSQL database or SQLite file
#   HONING_MLFLOW_PASSWORD    the `honing` admin's password (MLflow wants at least 12 characters)
#   MLFLOW_FLASK_SERVER_SECRET_KEY  the CSRF key, the same for every worker
#   MLFLOW                    the mlflow command (default: mlflow on PATH)
set -eu
(
  umask 077
  cat >"$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = READ
database_uri = $MLFLOW_AUTH_DATABASE_URI
admin_username = honing
admin_password = $HONING_MLFLOW_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# a credential checked once is trusted for a minute: MLflow's password check is a deliberately
# slow hash (0.1 s of CPU), and a run makes hundreds of requests. With one worker, a password
# changed through the API takes effect at once.
auth_cache_ttl_seconds = 60
INI
)
exec "${MLFLOW:-mlflow}" server --app-name basic-auth "$@"
