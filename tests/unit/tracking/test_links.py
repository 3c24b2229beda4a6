"""Direct links into the MLflow UI, as `honing run`, `honing ui` and the Prefect link
artifact print them."""

import json

from honing.tracking.links import REVIEW_VIEW, review_view, ui_links
from honing_flows.prefect_artifacts import key

MODE = "workflowType=machine_learning"


def test_links_open_the_run_and_the_saved_review_view_in_the_ml_mode():
    local = ui_links("sqlite:///mlflow.db", "3", "abc")
    assert local.run == "http://127.0.0.1:5000/#/experiments/3/runs/abc?" + MODE
    assert local.runs_table == (
        f"http://127.0.0.1:5000/#/experiments/3/runs?viewStateShareKey={REVIEW_VIEW}&{MODE}"
    )
    # the profile's UI address (honing ui --port's default) is where the links point
    moved = ui_links("sqlite:///mlflow.db", "3", "abc", "http://127.0.0.1:5077/")
    assert moved.run.startswith("http://127.0.0.1:5077/#/experiments/3/runs/abc")


def test_a_tracking_server_link_drops_the_credentials():
    links = ui_links("https://alice:s3cret@mlflow.example:5443/", "1", "r")
    assert links.run == "https://mlflow.example:5443/#/experiments/1/runs/r?" + MODE
    assert "s3cret" not in links.runs_table and "alice" not in links.runs_table


def test_the_review_view_is_the_uis_saved_view_sorted_in_the_metrics_direction():
    """The tag the UI's own "Save view" writes: an envelope with the page state as JSON; an
    error sorts ascending, a score descending; trials are filtered out."""
    tags = review_view("rmse", ["rmse", "mae", "r2"], lower_is_better=True, now_ms=7)
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    envelope = json.loads(tags[f"mlflow.sharedViewState.{REVIEW_VIEW}"])
    assert envelope["name"] == "honing: training runs by test rmse" and envelope["createdAt"] == 7
    state = json.loads(envelope["state"])
    assert state["orderByKey"] == "metrics.`test/rmse`" and state["orderByAsc"] is True
    assert state["searchFilter"] == "tags.`honing.kind` = 'training'"
    assert state["selectedColumns"][:3] == [
        "metrics.`test/rmse`", "metrics.`cv/rmse`", "params.`final_model`"
    ]  # fmt: skip
    assert {"metrics.`test/mae`", "metrics.`test/r2`"} <= set(state["selectedColumns"])
    assert state["selectedColumns"].count("metrics.`test/rmse`") == 1
    assert state["columnOrder"] == state["selectedColumns"]
    scores = json.loads(
        json.loads(review_view("roc_auc", [], lower_is_better=False, now_ms=7)[
            f"mlflow.sharedViewState.{REVIEW_VIEW}"]
        )["state"]
    )  # fmt: skip
    assert scores["orderByAsc"] is False


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
