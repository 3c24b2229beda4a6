"""The loop closed for real, under Prefect's local API, with MLflow, Ray and DVC: a labelled
batch becomes a new DVC version, drift leads to a retraining on that version, a forward
window promotes the model of the new world that a random split of the old data would have
rejected, an unlabelled batch gets an estimated performance, and the alias history records
each move."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import train_test_split

from honing import data, registry
from honing.config import load_config
from honing.data.demo_data import fetch_flight_months
from honing.evaluation import evaluate
from honing.modeling.decision import answers
from honing.monitoring import versions
from honing.registry import aliases
from honing.registry.champion import ChampionScore, decide
from honing.stages import reproduce
from tests.conftest import ROOT, untracked_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args], check=True
    )


@pytest.fixture
def loop_project(tmp_path: Path) -> dict[str, Path]:
    """A git + DVC project: January-March flights as the training table (DVC-tracked), and
    an April-May batch whose world changed: its labels are the opposite of the old rule's."""
    for sub in ("data", "configs", "expectations"):
        (tmp_path / sub).mkdir()
    months = fetch_flight_months(rows_per_month=800, seed=3)
    month = months["date"].str[5:7].astype(int)
    old, new = months[month <= 3], months[month.between(4, 5)].copy()
    new["delayed"] = np.where(new["delayed"] == "Yes", "No", "Yes")  # a new world
    data.write_table(old, tmp_path / "data" / "flights.csv")
    data.write_table(new, tmp_path / "batch.csv")
    data.write_table(new.drop(columns=["delayed"]), tmp_path / "unlabelled.csv")
    suite = json.loads((ROOT / "expectations" / "flights.json").read_text())
    for exp in suite["expectations"]:
        if exp["type"] == "expect_table_row_count_to_be_between":
            exp["kwargs"]["min_value"] = 500
        if "column_set" in exp["kwargs"]:
            exp["kwargs"]["column_set"] = ["date", *exp["kwargs"]["column_set"]]
    (tmp_path / "expectations" / "flights.json").write_text(json.dumps(suite))
    cfg = yaml.safe_load((ROOT / "configs" / "flights.yaml").read_text())
    cfg["data"].update(
        path="data/flights.csv",
        drop_columns=["date"],
        window={"kind": "last_n_rows", "rows": 1600},
    )
    cfg["validation"]["suite"] = "expectations/flights.json"
    cfg["split"] = {"kind": "time", "time_column": "date", "test_size": 0.25}
    cfg["search"].update(trials_per_family=1, cv_folds=2)
    cfg["search"]["families"] = {"hist_gradient_boosting": {"max_iter": 60, "max_leaf_nodes": 15}}
    cfg["compression"] = {"techniques": ["onnx"], "latency_rows": 20}
    cfg["monitoring"].update(drift_method="effect_size")
    cfg["evaluation"]["thresholds"] = {"roc_auc": 0.55}  # a small window of a hard table
    (tmp_path / "configs" / "flights.yaml").write_text(yaml.safe_dump(cfg))
    env = {
        "profile": "loop-test",
        "mlflow": {
            "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "artifact_root": str(tmp_path / "mlartifacts"),
        },
        "ray": {"num_cpus": 2, "storage_path": str(tmp_path / "ray_results")},
    }
    (tmp_path / "configs" / "env.yaml").write_text(yaml.safe_dump(env))
    (tmp_path / ".gitignore").write_text("mlflow.db*\nmlartifacts/\nray_results/\n.honing/\n")
    _git(tmp_path, "init", "-q")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(BIN / "dvc"), "add", "-q", "data/flights.csv"], cwd=tmp_path, check=True)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "project")
    return {
        "root": tmp_path,
        "config": tmp_path / "configs" / "flights.yaml",
        "env": tmp_path / "configs" / "env.yaml",
        "data": tmp_path / "data" / "flights.csv",
    }


@pytest.fixture
def in_project(loop_project, monkeypatch, prefect_harness):
    before = mlflow.get_tracking_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(loop_project["root"])
    yield loop_project
    mlflow.set_tracking_uri(before)


def test_drift_retrains_on_the_ingested_version_and_the_forward_gate_promotes_it(in_project):
    from honing_flows.flows.monitoring import monitoring_pipeline
    from honing_flows.flows.training import training_pipeline

    p = in_project
    common = {"config_path": str(p["config"]), "env_path": str(p["env"]), "repo": str(p["root"])}
    first = training_pipeline(**common)
    assert first.version == "1" and first.promoted
    v1_md5 = data.file_md5(p["data"])

    # an unlabelled batch: the champion's performance is estimated, nothing is ingested
    quiet = monitoring_pipeline(
        batch_path=str(p["root"] / "unlabelled.csv"), retrain=False, **common
    )
    assert quiet.ingested is None and quiet.performance == {}
    assert 0.0 < quiet.estimated["roc_auc"] <= 1.0
    # it believes it does as well as at registration (the measured test scores of its run;
    # its accuracy is that of a threshold tuned for f1 on rare late flights)
    for metric in ("accuracy", "roc_auc"):
        assert quiet.estimated[metric] == pytest.approx(first.test_metrics[metric], abs=0.05)
    assert data.file_md5(p["data"]) == v1_md5

    # one row decides nothing, however far its columns are from the reference
    pd.read_csv(p["root"] / "unlabelled.csv").head(1).to_csv(p["root"] / "one.csv", index=False)
    one = monitoring_pipeline(batch_path=str(p["root"] / "one.csv"), retrain=False, **common)
    assert not one.retrain and one.reasons[0].startswith("the batch has 1 rows"), one
    # a labelled batch of one class, one label blank: the blank row is left out of the
    # measure, ROC-AUC is undefined on it, and the estimate decides instead
    labels = pd.read_csv(p["root"] / "batch.csv")
    one_class = labels[labels["delayed"] == "No"].head(200).reset_index(drop=True)
    one_class.loc[0, "delayed"] = None
    one_class.to_csv(p["root"] / "one_class.csv", index=False)
    single = monitoring_pipeline(
        batch_path=str(p["root"] / "one_class.csv"), retrain=False, ingest=False, **common
    )
    assert np.isnan(single.performance["roc_auc"]) and 0 <= single.performance["recall"]
    assert any("roc_auc is undefined" in w for w in single.warnings), single
    assert not any(r.startswith("roc_auc fell") for r in single.reasons), single
    assert data.file_md5(p["data"]) == v1_md5

    # the labelled batch of the new world: measured drop, ingested, retrained on it
    result = monitoring_pipeline(batch_path=str(p["root"] / "batch.csv"), **common)
    assert result.retrain, result.reasons
    assert any("roc_auc fell" in r for r in result.reasons), result.reasons
    assert result.performance["roc_auc"] < 0.5
    # the estimate checked against the labels: it cannot see a changed relation (the
    # answers look as sure as before), so v1's estimate is recorded as off
    audit = result.estimate_audit
    assert audit["measured"] == result.performance["roc_auc"]
    assert audit["estimated"] == result.estimated["roc_auc"]
    assert abs(audit["estimated"] - audit["measured"]) > audit["allowed"], audit
    assert any("label-free estimate is off" in line for line in result.warnings)
    ingested = result.ingested
    assert ingested["labelled"] and ingested["version"] == 1 and ingested["previous_md5"] == v1_md5
    assert ingested["md5"] == data.file_md5(p["data"]) != v1_md5
    pointer = yaml.safe_load((p["root"] / "data" / "flights.csv.dvc").read_text())
    assert pointer["outs"][0]["md5"] == ingested["md5"]  # the new DVC version
    assert versions.history(p["data"])[-1]["md5"] == ingested["md5"]
    # the old rows are kept byte for byte, the batch's come after them
    assert p["data"].read_bytes().startswith(_cached(p, v1_md5))

    client = mlflow.MlflowClient()
    name = "honing-flights"
    v2 = client.get_model_version(name, result.retrained_version)
    assert str(v2.version) == "2"
    assert v2.tags["honing.data_md5"] == ingested["md5"]  # trained on the newest version
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"  # forward
    assert json.loads(client.get_model_version(name, "1").tags["honing.estimate_audit"]) == audit
    monitor_run = client.get_run(result.run_id)
    assert monitor_run.data.tags["honing.retrain"] == "true"
    assert "batch/roc_auc" in monitor_run.data.metrics
    assert any(k.startswith("drift/column/") for k in monitor_run.data.metrics)

    # the alias history: v1 promoted, then v2, each with its reason
    moves = aliases.history(name, "champion")
    assert [m.version for m in moves] == ["1", "2"]
    assert all(m.reason for m in moves)

    # the old gate, a random split of the old data, would have kept v1
    cfg = load_config(p["config"])
    old = reproduce.fetch_data_version(
        p["root"], "data/flights.csv", v1_md5, "unknown", p["root"] / "old.csv"
    )
    table = data.load_table(old)
    y, classes = data.target_values(table["delayed"], "classification", "Yes")
    X = table.drop(columns=["delayed", "date"])
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    champion = registry.load_model(f"models:/{name}/1")
    challenger = registry.load_model(f"models:/{name}/2")
    on_old = decide(
        evaluate(challenger, X_test, y_test, classes),
        challenger,
        None,
        X_test,
        y_test,
        ChampionScore(
            "1",
            evaluate(champion, X_test, y_test, classes),
            answers=answers(champion, X_test, classes),
        ),
        cfg.registry,
    )
    assert not on_old.promote, on_old.reason

    # ingesting the same batch again changes nothing
    again = versions.ingest(cfg, p["root"] / "batch.csv", repo=p["root"])
    assert not again.new and again.version == 1 and data.file_md5(p["data"]) == ingested["md5"]


def _cached(p: dict[str, Path], md5: str) -> bytes:
    found = versions.cached_copy(p["root"], md5)
    assert found is not None, "the version before the batch is in the DVC cache"
    return found.read_bytes()


def _lines(folder: Path) -> int:
    """The rows kept in a capture folder's files, closed and current (one JSON line each)."""
    from honing.serving.capture import capture_files

    return sum(len(f.read_text().splitlines()) for f in capture_files(folder))


def test_captured_traffic_with_late_labels_becomes_a_version_and_a_monitored_batch(in_project):
    """The loop on real traffic: `honing serve-model --capture --shadow challenger` keeps
    what it answers and what the waiting challenger answers on the same requests, the late
    labels join it by request id (`honing ingest --capture --labels`, a new DVC version),
    `honing monitor --capture` checks the captured window, and with `--labels` the
    sequential promotion gate judges the challenger on the answers both versions gave live."""
    import os
    import signal
    import time

    import httpx

    from honing_flows.flows.training import training_pipeline
    from tests.conftest import free_port

    p = in_project
    common = {"config_path": str(p["config"]), "env_path": str(p["env"]), "repo": str(p["root"])}
    assert training_pipeline(**common).version == "1"
    # a challenger that the test split cannot tell from the champion waits for evidence
    cfg = yaml.safe_load(p["config"].read_text())
    cfg["search"]["families"]["hist_gradient_boosting"]["max_leaf_nodes"] = 12
    p["config"].write_text(yaml.safe_dump(cfg))
    assert training_pipeline(**common).version == "2"
    client, name = mlflow.MlflowClient(), cfg["registry"]["model_name"]
    gate = client.get_model_version(name, "2").tags
    assert gate["honing.gate.outcome"] == "undecidable", gate.get("honing.gate.reason")
    assert client.get_registered_model(name).aliases == {"champion": 1, "challenger": 2}
    rows_before = len(pd.read_csv(p["data"]))
    port, folder = free_port(), p["root"] / "capture"
    env = untracked_env()
    cli = [str(BIN / "honing")]
    server = subprocess.Popen(
        [*cli, "serve-model", "--config", str(p["config"]), "--env", str(p["env"]),
         "--port", str(port), "--capture", str(folder), "--capture-max-mb", "0.05",
         "--shadow", "challenger"],
        cwd=p["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    batch = pd.read_csv(p["root"] / "batch.csv")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
            time.sleep(0.5)
        asked = batch.drop(columns=["delayed"])
        for i, part in enumerate(np.array_split(np.arange(len(asked)), 4)):
            answer = httpx.post(
                f"http://127.0.0.1:{port}/invocations",
                json={"dataframe_records": json.loads(asked.iloc[part].to_json(orient="records"))},
                headers={"X-Request-Id": f"req-{i}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["request_id"] == answer.headers["x-request-id"] == f"req-{i}"
        meta = httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=10).json()
        assert (meta["version"], meta["shadow"]["version"]) == ("1", "2"), meta
        while _lines(folder / "shadow") < len(asked):  # the shadow answers after the response
            assert time.monotonic() < deadline + 120, _lines(folder / "shadow")
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert len(list(folder.glob("capture-*.jsonl"))) > 1  # the 50 KB bound closed files
    assert _lines(folder) == _lines(folder / "shadow") == len(batch)

    # the labels arrive later, keyed by request and row; one request's never come
    parts = np.array_split(np.arange(len(batch)), 4)
    labels = pd.concat(
        pd.DataFrame({"request_id": f"req-{i}", "row": range(len(part)),
                      "delayed": batch["delayed"].iloc[part].to_numpy()})
        for i, part in enumerate(parts[:3])
    )  # fmt: skip
    labels.to_csv(p["root"] / "labels.csv", index=False)
    ingested = subprocess.run(
        [*cli, "ingest", "--config", str(p["config"]), "--repo", str(p["root"]),
         "--capture", str(folder), "--labels", str(p["root"] / "labels.csv")],
        cwd=p["root"], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    labelled = sum(len(part) for part in parts[:3])
    assert len(pd.read_csv(p["data"])) == rows_before + labelled
    recorded = versions.history(p["data"])[-1]
    assert recorded["labelled"] and recorded["rows"] == labelled
    assert recorded["total_rows"] == rows_before + labelled

    monitored = subprocess.run(
        [*cli, "monitor", "--config", str(p["config"]), "--env", str(p["env"]),
         "--capture", str(folder), "--no-retrain", "--no-ingest"],
        cwd=p["root"], env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert monitored.returncode == 0, monitored.stdout[-3000:] + monitored.stderr[-3000:]
    assert "champion v1" in monitored.stdout and "capture window of" in monitored.stdout

    # the labels again, now with the challenger waiting: the gate judges the live answers
    judged = subprocess.run(
        [*cli, "monitor", "--config", str(p["config"]), "--env", str(p["env"]),
         "--capture", str(folder), "--labels", str(p["root"] / "labels.csv"),
         "--no-retrain", "--no-ingest"],
        cwd=p["root"], env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert judged.returncode == 0, judged.stdout[-3000:] + judged.stderr[-3000:]
    state = json.loads(client.get_model_version(name, "2").tags["honing.sequential"])
    live = state["looks"][-1]
    assert live["source"].endswith("(answers given live)") and live["rows"] == labelled, state
