"""The infra/ files parse and describe the whole stack. (Docker and Kubernetes do not run on
this project's machines; infra/local/up.sh is exercised for real in tests/integration.)"""

import yaml

from tests.conftest import ROOT

INFRA = ROOT / "infra"


def test_compose_has_the_whole_stack_and_binds_loopback():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    services = compose["services"]
    assert {
        "postgres",
        "minio",
        "mlflow",
        "prefect-server",
        "prefect-worker",
        "ray-head",
        "ray-worker",
    } <= set(services)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    text = (INFRA / "compose.yaml").read_text()
    assert "include-dashboard=false" in text and "RAY_AUTH_MODE: token" in text


def test_kubernetes_manifests_parse():
    kinds = []
    for path in (INFRA / "k8s").glob("*.yaml"):
        kinds += [doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert {"RayCluster", "StatefulSet", "Deployment", "Service", "Secret"} <= set(kinds)
    ray = yaml.safe_load((INFRA / "ray" / "cluster.yaml").read_text())
    assert ray["provider"]["type"] == "local"


def _env(container: dict) -> dict[str, object]:
    """A Kubernetes container's environment: each name, its value or where it comes from."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_compose_and_kubernetes_servers_require_credentials_as_the_local_stack_does():
    """MLflow runs its basic-auth app, with its users in the PostgreSQL database the init SQL
    creates; the Prefect server requires its basic-auth string; the worker carries both
    credentials; no database password is on the MLflow server's command line."""
    # the one script every stack runs its MLflow server with (up.sh's, run for real in
    # tests/integration/test_distributed.py)
    server = (INFRA / "mlflow-server.sh").read_text()
    assert 'exec "${MLFLOW:-mlflow}" server --app-name basic-auth "$@"' in server
    assert "admin_password = $HONING_MLFLOW_PASSWORD" in server  # from the environment
    assert "database_uri = $MLFLOW_AUTH_DATABASE_URI" in server and "umask 077" in server
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    script = compose["mlflow"]["command"][-1]
    assert "exec sh /app/infra/mlflow-server.sh" in script
    assert "mlflow_auth" in compose["mlflow"]["environment"]["MLFLOW_AUTH_DATABASE_URI"]
    assert "honing:$" not in script and "PG_PASSWORD}@" not in script
    assert compose["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"]
    worker = compose["prefect-worker"]["environment"]
    assert {"PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= (
        set(worker)
    )
    assert "CREATE DATABASE mlflow_auth" in (INFRA / "postgres-init.sql").read_text()
    example = (INFRA / ".env.example").read_text()
    for key in ("HONING_MLFLOW_PASSWORD", "HONING_MLFLOW_SECRET_KEY", "HONING_PREFECT_PASSWORD"):
        assert f"\n{key}=" in example

    docs = list(yaml.safe_load_all((INFRA / "k8s" / "services.yaml").read_text()))
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    init = by_name["ConfigMap", "postgres-init"]["data"]["init.sql"]
    assert all(f"CREATE DATABASE {db};" in init for db in ("mlflow", "mlflow_auth", "prefect"))
    postgres = by_name["StatefulSet", "postgres"]["spec"]["template"]["spec"]
    assert postgres["volumes"][0]["configMap"]["name"] == "postgres-init"

    def container(name: str) -> dict:
        return by_name["Deployment", name]["spec"]["template"]["spec"]["containers"][0]

    mlflow = container("mlflow")
    assert mlflow["command"] == ["sh", "/app/infra/mlflow-server.sh"]
    assert "mlflow_auth" in _env(mlflow)["MLFLOW_AUTH_DATABASE_URI"]
    assert "HONING_MLFLOW_PASSWORD" in _env(mlflow)
    assert not any("PASSWORD" in arg for arg in mlflow["args"]) and "PGPASSWORD" in _env(mlflow)
    assert _env(container("prefect-server"))["PREFECT_SERVER_API_AUTH_STRING"]
    worker_env = _env(container("prefect-worker"))
    assert {"PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= (
        set(worker_env)
    )
    secret = next(
        d for d in yaml.safe_load_all((INFRA / "k8s" / "namespace-and-secrets.example.yaml")
                                      .read_text()) if d["kind"] == "Secret"
    )  # fmt: skip
    assert {"mlflow-password", "mlflow-secret-key", "prefect-password"} <= set(secret["stringData"])


def test_no_secrets_in_configs():
    for path in list((ROOT / "configs").rglob("*.yaml")):
        text = path.read_text().lower()
        assert "password" not in text and "secret" not in text and "token:" not in text, path
