"""The whole training flow under Prefect's test harness, with Ray and MLflow for real."""

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from honing.data import file_md5
from honing.exceptions import DataValidationError, ModelQualityError
from tests.conftest import demo_config_dict

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def run_flow(prefect_harness, project, monkeypatch):
    from honing_flows.flows.training import training_pipeline

    before = mlflow.get_tracking_uri()
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which would override this test's
    # profile; start from a clean environment as a new process would.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def _run(config: Path | None = None, force: bool = False):
        return training_pipeline(
            config_path=str(config or project["config"]),
            env_path=str(project["env"]),
            repo=str(project["root"]),
            force=force,
        )

    yield _run
    mlflow.set_tracking_uri(before)


def _client(project):
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")


def _prefect_storage() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)


def _stored_results(project) -> set[str]:
    """The stage results honing keeps (``.honing/results``), and anything Prefect stored."""
    kept = project["root"] / ".honing" / "results"
    return {p.name for p in kept.glob("*.result")} | {
        f"prefect:{p.name}" for p in _prefect_storage().glob("*")
    }


def test_two_runs_keep_the_registry_consistent(explained_project, run_flow, project):
    stored = _stored_results(project)
    first = run_flow()
    # outside git (no commit says what code ran) no stage result is kept for reuse
    assert _stored_results(project) == stored
    assert first.version == "1" and first.promoted
    assert first.test_metrics["roc_auc"] > 0.8
    assert first.trials == 3 and first.trials_failed == 0
    # the typed summary, flat for benchmarks and dashboards
    assert first.metrics()["test/roc_auc"] == first.test_metrics["roc_auc"]
    assert first.metrics()["trials"] == 3 and "seconds/search" in first.metrics()
    assert first.params()["registered"] == f"{first.model_name} v1"
    assert first.params()["promoted"] == "True"

    second = run_flow()
    assert second.version == "2"
    assert second.champion_version == "1"  # the gate ran against the existing champion
    # same seed, same data: the challenger ties the champion and is promoted (margin 0)
    assert second.promoted

    client = _client(project)
    model = client.get_registered_model("honing-churn")
    assert model.aliases == {"champion": 2}
    versions = client.search_model_versions("name='honing-churn'")
    assert sorted(int(v.version) for v in versions) == [1, 2]

    v2 = client.get_model_version("honing-churn", "2")
    assert v2.tags["honing.data_md5"] == file_md5(project["data"])
    assert v2.tags["honing.config_hash"] == first.lineage["honing.config_hash"]
    assert v2.tags["honing.flow_run_id"] not in ("", "none")
    assert v2.tags["honing.gate.champion_version"] == "1"
    assert "PROMOTED" in v2.description

    parent = client.get_run(second.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test/roc_auc"] == pytest.approx(second.test_metrics["roc_auc"])
    trials = client.search_runs(
        [second.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{second.run_id}'"
    )
    assert len(trials) == 3
    # the review surface: a name that explains itself, the summary as the run's description
    # and summary.md, the leaderboard with the best trial tagged, a best-so-far curve
    assert parent.info.run_name.startswith("churn train ")
    assert parent.data.tags["mlflow.note.content"].startswith("# honing-churn v2")
    summary_md = client.download_artifacts(second.run_id, "summary.md", str(project["root"]))
    assert "| roc_auc |" in Path(summary_md).read_text()
    board = json.loads(
        Path(
            client.download_artifacts(
                second.run_id, "search/leaderboard.json", str(project["root"])
            )
        ).read_text()
    )
    rows = dict(zip(board["columns"], zip(*board["data"], strict=True), strict=True))
    assert len(rows["trial"]) == 3 and rows["best"][0] is True and sum(rows["best"]) == 1
    # the optimization history beside it (three trials: too few for their importance)
    search_files = {a.path for a in client.list_artifacts(second.run_id, "search")}
    assert "search/optimization_history.png" in search_files
    assert "search/param_importance.png" not in search_files
    assert list(rows["cv_roc_auc"]) == sorted(rows["cv_roc_auc"], reverse=True)
    best_run = [t for t in trials if t.data.tags.get("honing.best_trial") == "true"]
    assert len(best_run) == 1
    # repo-relative paths in the artifacts
    config_json = json.loads(
        Path(
            client.download_artifacts(second.run_id, "config.json", str(project["root"]))
        ).read_text()
    )
    assert config_json["data"]["path"] == "data/churn.csv"
    report_json = json.loads(
        Path(
            client.download_artifacts(second.run_id, "validation/report.json", str(project["root"]))
        ).read_text()
    )
    assert report_json["source"] == "data/churn.csv"
    # the table is the run's dataset input, by its repo-relative path and MD5

    dataset = parent.inputs.dataset_inputs[0].dataset
    assert dataset.name == "churn" and dataset.digest == file_md5(project["data"])[:36]
    # models named after the config and what they are, each with its own test metrics
    logged = mlflow.search_logged_models(
        experiment_ids=[second.experiment_id], output_format="list"
    )
    names = {m.name for m in logged if m.source_run_id == second.run_id}
    assert f"churn-{second.served.candidate}" in names
    assert any(n.startswith("churn-") and n != f"churn-{second.served.candidate}" for n in names)
    assert all(
        any(metric.key == "test/roc_auc" for metric in m.metrics or [])
        for m in logged
        if m.source_run_id == second.run_id
    )
    # the Prefect flow run carries the summary and a link to the MLflow run
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["honing-churn-summary", "honing-churn-mlflow-run"])
            )
        )
    # a version of each key per run (Prefect stores a link as Markdown too)
    summaries = [str(a.data) for a in artifacts if a.key == "honing-churn-summary"]
    links = [str(a.data) for a in artifacts if a.key == "honing-churn-mlflow-run"]
    assert any(s.startswith("# honing-churn v2") and second.run_id in s for s in summaries)
    assert any(f"/runs/{second.run_id}" in link for link in links)
    curve = [m.value for m in client.get_metric_history(second.run_id, "search/best_cv_roc_auc")]
    assert len(curve) == 3 and curve == sorted(curve)
    # the curve ends at the best trial; cv/roc_auc is the chosen model's own (an ensemble's)
    metrics = client.get_run(second.run_id).data.metrics
    assert curve[-1] == pytest.approx(metrics["cv/roc_auc_best_single"])
    assert metrics["cv/roc_auc"] == pytest.approx(second.cv_score)
    assert second.cv_score >= metrics["cv/roc_auc_best_single"]  # chosen only when better
    artifacts = {a.path for a in client.list_artifacts(second.run_id, "plots")}
    assert artifacts >= {
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/calibration.png",
        "plots/importance_permutation.png",
    }
    # each plot is an MLflow image too, keyed by its name: the run's image grid
    images = {
        a.path.split("/")[1].split("+")[0] for a in client.list_artifacts(second.run_id, "images")
    }
    assert images >= {"confusion_matrix", "roc_curve", "calibration", "importance_permutation"}
    assert client.get_run(second.run_id).data.tags.get("mlflow.loggedImages") == "True"

    # compression: the candidates table and plot are logged, the pick is registered as the
    # served flavor, linked both ways with the uncompressed version, and takes its alias
    compression = {a.path for a in client.list_artifacts(second.run_id, "compression")}
    assert {"compression/candidates.json", "compression/size_vs_accuracy.png"} <= compression
    served = second.served
    assert served.model_name == "honing-churn-served" and served.version == "2"
    table = served.candidates
    assert table["candidate"][0] == "native" and served.candidate in table["candidate"]
    sv = client.get_model_version("honing-churn-served", "2")
    assert sv.tags["honing.source_version"] == "2"
    assert sv.tags["honing.compression.candidate"] == served.candidate
    assert client.get_model_version("honing-churn", "2").tags["honing.served_model"] == (
        "honing-churn-served/2"
    )
    assert client.get_registered_model("honing-churn-served").aliases == {"champion": 2}
    # each description links to the other; a version's first line is plain text
    assert "(#/models/honing-churn/versions/2)" in sv.description
    source = client.get_model_version("honing-churn", "2").description
    assert "(#/models/honing-churn-served/versions/2)" in source
    assert source.splitlines()[0] in ("PROMOTED to champion", "NOT promoted: champion kept")
    from honing import registry
    from honing.serving import inference

    mlflow.set_tracking_uri(f"sqlite:///{project['root'] / 'mlflow.db'}")
    model = registry.load_model("models:/honing-churn-served@champion")
    scored = inference.predict(model, pd.read_csv(project["data"]).head(50), ["No", "Yes"])
    assert scored["prediction"].isin(["No", "Yes"]).all()
    assert scored["probability"].between(0, 1).all()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.drop(columns=["contract"]), "expect_table_columns_to_match_set"),
        (lambda d: d.assign(tenure=d["tenure"].astype(str) + "m"), "tenure"),
        (
            lambda d: d.assign(churn=d["churn"].where(d.index % 3 != 0)),
            "expect_column_values_to_not_be_null",
        ),
    ],
    ids=["missing-column", "wrong-dtype", "null-labels"],
)
def test_bad_csv_stops_the_flow_and_registers_nothing(run_flow, project, mutate, needle):
    bad = mutate(pd.read_csv(project["data"]))
    bad.to_csv(project["data"], index=False)
    before = file_md5(project["data"])
    from honing.registry import infra

    left = infra.waiting()  # one an earlier test's run left waiting, if any, is stopped
    if left is not None:
        left.close()
    with pytest.raises(DataValidationError) as exc:
        run_flow()
    msg = str(exc.value)
    assert str(project["data"]) in msg and needle in msg
    assert file_md5(project["data"]) == before  # input left as it was
    # a refused run starts no load-and-query probe: that process comes once the run trains
    assert infra.waiting() is None

    client = _client(project)
    assert client.search_registered_models() == []
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    # the run's own page says why: its description, and tags to filter failed runs by
    tags = runs[0].data.tags
    assert tags["mlflow.note.content"].startswith("**FAILED at validation**: ")
    assert tags["honing.failed_stage"] == "validation" and needle in tags["honing.error"]
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "validation")}
    assert logged == {"validation/report.json"}


def test_quality_gate_blocks_registration(run_flow, project):
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["evaluation"]["thresholds"] = {"roc_auc": 0.99}
    strict = project["root"] / "configs" / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ModelQualityError, match="roc_auc"):
        run_flow(strict)
    client = _client(project)
    assert client.search_registered_models() == []
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`honing.kind` = 'training'"
    )
    assert run.info.status == "FAILED" and "roc_auc" in run.data.tags["honing.error"]
    assert run.data.tags["mlflow.note.content"].startswith("**FAILED at the step after explain")
    # the flow run's own page in Prefect shows the same reason, as a Markdown artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect:
        found = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["honing-run-failure"]))
        )
    assert any(
        str(a.data).startswith("# FAILED at the step after explain")
        and "roc_auc" in str(a.data)
        and run.info.run_id in str(a.data)
        for a in found
    ), [str(a.data)[:200] for a in found]

    # with a champion that misses the same floor on the same test rows, a model that scores
    # no worse is not stopped by it: the champion/challenger gate decides instead
    first = run_flow(project["config"])
    assert first.version == "1" and first.promoted
    again = run_flow(strict)
    assert again.version == "2"
    missed = client.get_run(again.run_id).data.tags["honing.quality_threshold_missed"]
    assert "roc_auc" in missed and "where the champion scores" in missed
    # the registry tells the same story on the version
    v2 = client.get_model_version("honing-churn", "2")
    assert v2.tags["honing.quality_threshold_missed"] == "roc_auc"
    assert "**Quality**: registered past its threshold for roc_auc" in v2.description
    assert "**Quality**" not in client.get_model_version("honing-churn", "1").description


def test_flow_with_ensembles_nested_cv_and_explanations(explained_project, run_flow, project):
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["search"] = {
        "families": {
            "logistic_regression": {"C": {"loguniform": [0.05, 5.0]}},
            "knn": {"n_neighbors": {"randint": [20, 80]}},
        },
        "algorithm": "tpe",
        "trials_per_family": 2,
        "cv_folds": 3,
        "seed": 3,
        # the top-k ensembles, cross-validated (selection has its own tests)
        "ensemble": {
            "enabled": True,
            "top_k": 3,
            "selection": False,
            "methods": ["soft_voting", "stacking"],
        },
        "nested_cv": {"enabled": True, "outer_folds": 2},
    }
    cfg["compression"] = {"techniques": ["onnx"]}
    path = project["root"] / "configs" / "deep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = run_flow(path)

    client = _client(project)
    run = client.get_run(out.run_id)
    assert run.data.params["search_algorithm"] == "tpe"
    assert run.data.params["final_model"] in (
        "logistic_regression",
        "knn",
        "soft_voting",
        "stacking",
    )
    for key in ("cv/roc_auc_best_single", "cv/roc_auc_soft_voting", "cv/roc_auc_stacking"):
        assert key in run.data.metrics
    ensemble_wins = (
        max(run.data.metrics["cv/roc_auc_soft_voting"], run.data.metrics["cv/roc_auc_stacking"])
        > run.data.metrics["cv/roc_auc_best_single"]
    )
    assert (run.data.params["final_model"] in ("soft_voting", "stacking")) == ensemble_wins
    nested = out.nested_cv
    assert len(nested["outer_scores"]) == 2 and 0.7 < nested["mean"] < 1.0
    assert "cv/nested_roc_auc" in run.data.metrics
    plots = {a.path for a in client.list_artifacts(out.run_id, "plots")}
    assert {"plots/importance_permutation.png"} <= plots
    explained = {a.path for a in client.list_artifacts(out.run_id, "explain")}
    assert explained == {"explain/importances.json"}
    assert out.top_features and out.version == "1"


def test_regression_flow_on_the_diamonds_demo(run_flow, project):
    import shutil

    from tests.conftest import ROOT

    shutil.copy(ROOT / "data" / "diamonds.csv", project["root"] / "data" / "diamonds.csv")
    shutil.copy(
        ROOT / "expectations" / "diamonds.json", project["root"] / "expectations" / "diamonds.json"
    )
    cfg = yaml.safe_load((ROOT / "configs" / "diamonds.yaml").read_text())
    cfg["data"]["path"] = str(project["root"] / "data" / "diamonds.csv")
    cfg["validation"]["suite"] = str(project["root"] / "expectations" / "diamonds.json")
    cfg["search"] = {
        "families": {
            "linear": {"alpha": {"loguniform": [0.01, 10.0]}},
            "hist_gradient_boosting": {"max_iter": 60},
        },
        "features": {"encoder": {"choice": ["onehot", "ordinal"]}},
        "trials_per_family": 1,
        "cv_folds": 3,
        "metric": "rmse",
    }
    cfg["compression"] = {"techniques": ["onnx", "distill"]}
    path = project["root"] / "configs" / "diamonds.yaml"
    path.write_text(yaml.safe_dump(cfg))

    first = run_flow(path)
    assert first.task == "regression" and first.promoted
    assert first.cv_metric == "rmse" and first.cv_score > 0  # in dollars, not negated
    assert first.test_metrics["r2"] > 0.9 and first.confusion_matrix == []
    served = first.served
    assert served.skipped["distill"] == "classification only"
    second = run_flow(path)
    # equal RMSE on the same rows: the paired interval is [0, 0], within margin 0: promoted
    assert second.champion_version == "1" and second.promoted
    assert "rmse difference +0.0000" in second.gate_reason and "bootstrap" in second.gate_reason

    client = _client(project)
    plots = {a.path for a in client.list_artifacts(second.run_id, "plots")}
    assert {"plots/predicted_vs_actual.png", "plots/residuals.png"} <= plots
    trials = client.search_runs(
        [second.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{second.run_id}'"
    )
    assert len(trials) == 2
    for trial in trials:  # feature options logged; RMSE in dollars, not negated
        assert trial.data.params["features.encoder"] in ("onehot", "ordinal")
        assert trial.data.metrics["cv/rmse"] > 0 and trial.data.metrics["cv/fold_0_rmse"] > 0
    from honing import registry
    from honing.serving import inference

    mlflow.set_tracking_uri(f"sqlite:///{project['root'] / 'mlflow.db'}")
    batch = pd.read_csv(project["root"] / "data" / "diamonds.csv").drop(columns=["price"])
    for uri in ("models:/honing-diamonds@champion", "models:/honing-diamonds-served@champion"):
        scored = inference.predict(registry.load_model(uri), batch.head(20), [])
        assert scored["prediction"].between(100, 40000).all()


def _clean_checkout(project) -> None:
    """The project as a clean git checkout: its commit then says what code ran."""
    import subprocess

    git = ["git", "-C", str(project["root"]), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (project["root"] / ".gitignore").write_text("*\n!.gitignore\n")  # a clean tree
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "project"], check=True)


def _task_runs(summary) -> list[tuple[str, str]]:
    """The flow run's task runs, every one (a stage run twice counts twice), in the order
    they started: (stage name, final state name)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = UUID(summary.lineage["honing.flow_run_id"])
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    runs = sorted(runs, key=lambda r: r.start_time or r.expected_start_time)
    return [(r.name.split("(")[0].rsplit("-", 1)[0], r.state.name) for r in runs]


def _reused(summary) -> set[str]:
    """The stages whose task-run log says they reused a kept result."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    flow_run_id = UUID(summary.lineage["honing.flow_run_id"])
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    names = {r.id: r.name.split("(")[0].rsplit("-", 1)[0] for r in runs}
    return {names[log.task_run_id] for log in logs if "reused the result kept" in log.message}


def _plant_prefect_record(key: str, marker: Path) -> None:
    """What Prefect's cache would have run: a record under the stage's key, naming pickle."""
    from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer

    class Marker:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    record = ResultRecord(
        result=Marker(),
        metadata=ResultRecordMetadata(storage_key=key, serializer=PickleSerializer()),
    )
    _prefect_storage().mkdir(parents=True, exist_ok=True)
    (_prefect_storage() / key).write_bytes(record.serialize())


def test_an_unchanged_run_registers_nothing_and_force_retrains(run_flow, project):
    """Same data MD5, config hash and (clean) commit as a complete version: the run reports
    that version and stops before the search; --force trains and registers anyway."""
    import time

    _clean_checkout(project)

    start = time.monotonic()
    first = run_flow()
    full_s = time.monotonic() - start
    assert first.version == "1" and first.lineage["honing.git_dirty"] == "False"

    start = time.monotonic()
    again = run_flow()
    noop_s = time.monotonic() - start
    assert again.version == "1" and again.trials == 0 and "unchanged" in again.gate_reason
    assert again.promoted and again.champion_version == "1"
    # the version's tags keep six decimals
    assert again.test_metrics == pytest.approx(first.test_metrics, abs=1e-6)
    client = _client(project)
    assert [str(v.version) for v in client.search_model_versions("name='honing-churn'")] == ["1"]
    run = client.get_run(again.run_id)
    assert run.info.status == "FINISHED" and "unchanged" in run.data.tags["mlflow.note.content"]
    nested = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{again.run_id}'"
    )
    assert nested == []  # no trial ran: the search never started
    print(f"full run {full_s:.1f} s, unchanged run {noop_s:.1f} s")

    forced = run_flow(force=True)
    # --force restores nothing of the earlier search either
    assert forced.version == "2" and forced.trials == 3 and forced.trials_restored == 0

    # rolled back since: a re-run of v2's inputs says where the champion is now, not what
    # v2's own gate once said
    from honing.registry import aliases

    aliases.move_alias("honing-churn", "champion", "1", by="test", reason="rolled back")
    third = run_flow()
    assert third.version == "2" and third.trials == 0
    assert not third.promoted and third.champion_version == "1"
    assert third.gate_reason.endswith("; the champion is now v1"), third.gate_reason


def test_a_compression_change_reruns_only_compression_in_a_few_named_tasks(run_flow, project):
    """honing keeps the expensive stages' results under keys of their real inputs: with
    only the compression settings changed, the search, the choice, the refit and the
    explanations are reused and the compression runs again. Prefect's result storage is
    never read: a pickle record planted there under the search's key does not run. A flow
    run is a few task runs, one per stage, named for it."""
    from honing.config import load_config
    from honing.lineage import Lineage
    from honing.stages.keys import stage_key
    from honing.stages.pipeline import ORDER

    # every technique the demo configures, the PyTorch student included
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["compression"]["techniques"] = demo_config_dict()["compression"]["techniques"]
    project["config"].write_text(yaml.safe_dump(cfg))
    _clean_checkout(project)
    stored = _stored_results(project)
    first = run_flow()
    kept = {name.split("-")[2] for name in _stored_results(project) - stored}
    assert kept == {"search", "choose", "refit", "explain", "compress"}
    tasks = _task_runs(first)
    assert len(tasks) <= 15, tasks
    names = [name for name, _ in tasks]
    # one task run per stage, in the library's order (honing.stages.pipeline, which the
    # plain run of bench/overhead.py runs too); nested CV is not configured here
    assert names == ["start", *(step for step in ORDER if step != "nested_cv")], tasks
    assert {state for _, state in tasks} == {"Completed"}

    cfg = yaml.safe_load(project["config"].read_text())
    cfg["compression"]["tolerance"] = 0.02
    changed = project["root"] / "configs" / "compression.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    marker = project["root"] / "pwned"
    lineage = Lineage.from_tags(first.lineage)
    _plant_prefect_record(stage_key("search", load_config(changed), lineage), marker)
    second = run_flow(changed)
    assert second.version == "2" and second.trials == first.trials
    assert not marker.exists()
    assert _reused(second) == {"search", "choose", "refit", "explain"}
    assert {state for _, state in _task_runs(second)} == {"Completed"}
    assert second.cv_score == first.cv_score
    assert second.test_metrics == pytest.approx(first.test_metrics)
    # --force reuses nothing
    forced = run_flow(changed, force=True)
    assert _reused(forced) == set() and forced.trials_restored == 0
