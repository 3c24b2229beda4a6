"""Direct links into the MLflow UI, as `honing run`, `honing ui` and the Prefect link
artifact print them."""

from honing.links import ui_links
from honing_flows.prefect_artifacts import key


def test_links_point_at_the_run_and_the_sorted_runs_table():
    local = ui_links("sqlite:///mlflow.db", "3", "abc", "roc_auc")
    assert local.run == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert local.runs_table.startswith("http://127.0.0.1:5000/#/experiments/3/runs?")
    assert "workflowType=machine_learning" in local.runs_table
    assert "orderByKey=metrics.%60test_roc_auc%60&orderByAsc=false" in local.runs_table


def test_a_tracking_server_link_drops_the_credentials():
    links = ui_links("https://alice:s3cret@mlflow.example:5443/", "1", "r")
    assert links.run == "https://mlflow.example:5443/#/experiments/1/runs/r"
    assert "s3cret" not in links.runs_table and "alice" not in links.runs_table


def test_prefect_artifact_keys_are_slugs():
    assert key("honing-Churn v2_x") == "honing-churn-v2-x"


def test_artifacts_carry_repo_relative_paths(tmp_path):
    from honing.lineage import portable

    payload = {
        "data": {"path": str(tmp_path / "data" / "churn.csv"), "target": "churn"},
        "validation": {"suite": str(tmp_path / "expectations" / "churn.json")},
        "elsewhere": "/opt/shared/table.csv",
        "list": [str(tmp_path / "a.csv"), 3],
    }
    out = portable(payload, tmp_path)
    assert out["data"] == {"path": "data/churn.csv", "target": "churn"}
    assert out["validation"]["suite"] == "expectations/churn.json"
    assert out["elsewhere"] == "/opt/shared/table.csv"  # outside the repository: kept
    assert out["list"] == ["a.csv", 3]
