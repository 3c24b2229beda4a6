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


def test_no_secrets_in_configs():
    for path in list((ROOT / "configs").rglob("*.yaml")):
        text = path.read_text().lower()
        assert "password" not in text and "secret" not in text and "token:" not in text, path
