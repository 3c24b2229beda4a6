"""MLflow tracking and Model Registry on a real SQLite store."""

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from honing import lineage, registry, tracking
from honing.evaluation import evaluate
from honing.modeling.training import ModelSpec, TrainingSetup
from honing.registry.champion import champion_gate
from honing.search import SearchResult, TrialResult
from honing.search.ensembles import EnsembleDecision
from honing.tracking import model_logging, trial_runs

pytestmark = pytest.mark.integration


def _data(n=300):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    y = (X["x"] + rng.normal(scale=0.7, size=n) > 0).astype(int).to_numpy()
    return X, y


def _lineage():
    return lineage.Lineage("data/t.csv", "abc123", "deadbeef", False, "cfg0", "c.yaml", "fr-1")


def _register(settings, exp, model, X, y, name="m"):
    run_id = tracking.start_run(exp, "train")
    uri = model_logging.log_native_model(run_id, model, X.head(3))
    report = evaluate(model, X, y, [0, 1])
    champion = registry.score_champion(name, "champion", X, y, [0, 1])
    decision = champion_gate(report, champion, metric="roc_auc", margin=0.0)
    result = registry.register_version(
        model_uri=uri,
        name=name,
        run_id=run_id,
        decision=decision,
        report=report,
        lineage=_lineage(),
        alias="champion",
    )
    tracking.end_run(run_id)
    return result


def test_experiment_runs_and_nested_trials(mlflow_store):
    exp = tracking.ensure_experiment("e1", mlflow_store.mlflow.artifact_root)
    assert tracking.ensure_experiment("e1", mlflow_store.mlflow.artifact_root) == exp
    parent = tracking.start_run(exp, "parent")
    search = SearchResult(
        "roc_auc",
        [
            TrialResult(
                "t0",
                ModelSpec("random_forest", {"n_estimators": 5}),
                0.8,
                0.01,
                [0.79, 0.81],
                1.2,
                started_at=1_700_000_000.0,
                rungs=2,
                rung_scores=((1, 0.75, 0.5), (2, 0.8, 1.2)),
            ),
            TrialResult(
                "t1",
                ModelSpec("logistic_regression", {"C": 1.0}),
                None,
                None,
                [],
                None,
                "ValueError: bad",
            ),
        ],
    )
    # the chosen model: a vote of the forest (weight 3) and the failed trial's spec (1)
    members = [asdict(t.spec) for t in search.trials]
    vote = ModelSpec("ensemble_selection", {"members": members, "weights": [3.0, 1.0]})
    weights = EnsembleDecision(vote, "test", {}).member_weights()
    ids = trial_runs.log_trials(parent, exp, search, weights)
    client = mlflow.MlflowClient()
    runs = [client.get_run(i) for i in ids]
    assert all(r.data.tags["mlflow.parentRunId"] == parent for r in runs)
    assert runs[0].data.metrics["cv/roc_auc"] == 0.8
    assert runs[0].data.metrics["cv/fold_1_roc_auc"] == 0.81
    assert runs[0].data.params["n_estimators"] == "5"
    # the trial's real times, and its score at each rung as the steps of one metric
    assert runs[0].info.start_time == 1_700_000_000_000
    assert runs[0].info.end_time == 1_700_000_001_200
    curve = client.get_metric_history(ids[0], "cv/rung_roc_auc")
    assert [(m.step, m.value, m.timestamp) for m in sorted(curve, key=lambda m: m.step)] == [
        (1, 0.75, 1_700_000_000_500),
        (2, 0.8, 1_700_000_001_200),
    ]
    assert runs[1].info.status == "FAILED" and runs[1].data.tags["honing.error"]
    # an ensemble's members are named, weighted and linked: the leaderboard's rows of them
    # carry their weight beside the link to their run, and their runs are tagged with it
    assert runs[0].data.tags["honing.ensemble_weight"] == "0.7500"
    table = json.loads(
        Path(client.download_artifacts(parent, "search/leaderboard.json")).read_text()
    )
    rows = dict(zip(table["columns"], zip(*table["data"], strict=True), strict=True))
    assert rows["weight"] == (0.75, 0.25) and rows["trial"][0] == runs[0].info.run_name
    assert rows["run"][0].endswith(f"/runs/{ids[0]}")
    tracking.end_run(parent)
    assert client.get_run(parent).info.status == "FINISHED"
    # the experiment keeps its artifacts relative to the store's folder, where they are
    assert mlflow_store.mlflow.artifact_root == "honing-store:mlartifacts"
    assert client.get_experiment(exp).artifact_location == "honing-store:mlartifacts/e1"
    assert runs[0].info.artifact_uri.startswith("honing-store:mlartifacts/e1/")


def test_a_moved_project_keeps_its_artifacts_and_its_champion(mlflow_store, project, tmp_path):
    """The store keeps its artifact locations relative to its own folder: the project folder
    copied elsewhere, its old artifacts gone, still serves its runs' files and its champion."""
    exp = tracking.ensure_experiment("e-move", mlflow_store.mlflow.artifact_root)
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    assert _register(mlflow_store, exp, model, X, y, name="moved").promoted
    run_id = tracking.start_run(exp, "notes")
    mlflow.MlflowClient().log_text(run_id, "kept", "notes/readme.txt")
    tracking.end_run(run_id)
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(project["root"], moved, ignore=shutil.ignore_patterns("elsewhere"))
    shutil.rmtree(project["root"] / "mlartifacts")  # nothing may read the old folder
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the fixture restores the URI afterwards
    client = mlflow.MlflowClient(uri)
    assert client.get_run(run_id).info.artifact_uri.startswith("honing-store:mlartifacts/")
    (tmp_path / "out").mkdir()
    got = client.download_artifacts(run_id, "notes/readme.txt", str(tmp_path / "out"))
    assert Path(got).read_text() == "kept"
    served = registry.load_model("models:/moved@champion")  # its SHA-256 checked on the way
    assert (served.predict(X) == model.predict(X)).all()


def test_champion_challenger_in_the_registry(mlflow_store):
    exp = tracking.ensure_experiment("e2", mlflow_store.mlflow.artifact_root)
    X, y = _data()
    good = LogisticRegression().fit(X, y)
    first = _register(mlflow_store, exp, good, X, y)
    assert first.promoted and first.version == "1"

    worse = DummyClassifier(strategy="prior").fit(X, y)
    second = _register(mlflow_store, exp, worse, X, y)
    assert not second.promoted and second.decision.champion_version == "1"

    client = mlflow.MlflowClient()
    assert client.get_registered_model("m").aliases == {"champion": 1, "challenger": 2}
    v2 = client.get_model_version("m", "2")
    assert "NOT promoted" in v2.description and "champion kept" in v2.description
    # Markdown: the metrics beside the champion's, and links to the run and the champion
    assert "| roc_auc |" in v2.description and "champion v1 |" in v2.description
    assert "[training run](#/experiments/" in v2.description
    assert "[champion v1](#/models/m/versions/1)" in v2.description
    assert v2.tags["honing.gate.promoted"] == "false"
    assert v2.tags["honing.data_md5"] == "abc123"
    assert v2.tags["honing.flow_run_id"] == "fr-1"
    assert v2.tags["honing.config_hash"] == "cfg0"
    assert v2.tags["mlflow.source.git.commit"] == "deadbeef"

    third = _register(mlflow_store, exp, LogisticRegression(C=0.5).fit(X, y), X, y)
    assert third.promoted and third.decision.champion_version == "1"
    assert client.get_registered_model("m").aliases["champion"] == 3

    # the registered model serves with its preprocessing inside and its signature
    loaded = mlflow.pyfunc.load_model("models:/m@champion")
    assert loaded.metadata.signature is not None
    outputs = [c["name"] for c in loaded.metadata.signature.outputs.to_dict()]
    assert outputs == ["prediction", "probability", "probability_0", "probability_1", "threshold"]
    scored = loaded.predict(X.head(4))
    assert list(scored.columns) == outputs and len(scored) == 4


def test_no_champion_means_no_score(mlflow_store):
    X, y = _data(50)
    assert registry.score_champion("absent", "champion", X, y, [0, 1]) is None
    assert registry.champion_version("absent", "champion") is None


def test_git_state_outside_a_repo(tmp_path):
    assert lineage.git_state(tmp_path) == ("unknown", True)


def test_mlp_pipeline_is_logged_and_served(mlflow_store, tmp_path):
    from honing.config import FeaturesConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import ModelSpec, train_model

    X, y = _data()
    X = X.assign(kind=np.where(X["z"] > 0, "a", "b"))
    model = train_model(
        X,
        y,
        ModelSpec("mlp", {"width": 8, "max_epochs": 5}),
        TrainingSetup(
            "classification",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="roc_auc",
            folds=5,
        ),
    ).model
    exp = tracking.ensure_experiment("e-mlp", mlflow_store.mlflow.artifact_root)
    run_id = tracking.start_run(exp, "mlp")
    uri = model_logging.log_native_model(run_id, model, X.head(3))
    # stored with skops like every family: the network is arrays, no pickle anywhere
    info = mlflow.models.get_model_info(uri)
    assert set(info.flavors) == {"python_function"}
    folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    assert not list(folder.rglob("*.pkl"))
    assert (folder / "artifacts" / "served" / "pipeline.skops").is_file()
    loaded = registry.load_model(str(folder))
    np.testing.assert_allclose(
        loaded.predict_proba(X.head(20)), model.predict_proba(X.head(20)), rtol=1e-5
    )
    assert mlflow.MlflowClient().get_run(run_id).data.tags["honing.serialization"] == "skops"


def test_a_fresh_sqlite_store_is_migrated_once_by_concurrent_runs(tmp_path):
    """Four processes open the same new store at once: one migrates it under the lock, the
    others wait and find it ready (without the lock, two migrations collide on
    ``_alembic_tmp_*`` tables)."""
    import subprocess
    import sys

    db = tmp_path / "fresh" / "mlflow.db"
    code = (
        "from honing import tracking\n"
        "from honing.config import MlflowSettings\n"
        f"tracking.configure(MlflowSettings(tracking_uri='sqlite:///{db}'))\n"
        "print(tracking.ensure_experiment('same', None))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(err[-1500:] for _, err in outs)
    assert len({out.strip() for out, _ in outs}) == 1  # one experiment, the same id for all


def test_a_champion_moved_during_the_gate_blocks_promotion(mlflow_store):
    """Fail closed: the gate promoted against v1, but another run moved the alias to v2
    before this registration; the alias stays where the other run put it."""
    X, y = _data()
    exp = tracking.ensure_experiment("e-race", mlflow_store.mlflow.artifact_root)
    first = _register(mlflow_store, exp, LogisticRegression(C=0.1).fit(X, y), X, y)
    assert first.promoted
    # this run is gated against v1 ...
    run_id = tracking.start_run(exp, "train")
    model = LogisticRegression(C=1.0).fit(X, y)
    uri = model_logging.log_native_model(run_id, model, X.head(3))
    report = evaluate(model, X, y, [0, 1])
    champion = registry.score_champion("m", "champion", X, y, [0, 1])
    decision = champion_gate(report, champion, metric="roc_auc", margin=0.0)
    assert decision.promote and decision.champion_version == "1"
    # ... and another run registers v2 and moves the alias meanwhile
    other = _register(mlflow_store, exp, LogisticRegression(C=0.5).fit(X, y), X, y)
    assert other.version == "2" and other.promoted
    late = registry.register_version(
        model_uri=uri,
        name="m",
        run_id=run_id,
        decision=decision,
        report=report,
        lineage=_lineage(),
        alias="champion",
    )
    tracking.end_run(run_id)
    client = mlflow.MlflowClient()
    assert late.version == "3" and not late.promoted
    assert "champion changed from v1 to v2" in late.decision.reason
    assert client.get_registered_model("m").aliases["champion"] == 2
    assert client.get_model_version("m", "3").tags["honing.gate.promoted"] == "false"


def test_rollback_moves_the_champion_back_with_its_history(mlflow_store, project, monkeypatch):
    from honing.compression import native_candidate, with_rule
    from honing.exceptions import RegistryError
    from honing.modeling.decision import DecisionRule
    from honing.registry import aliases

    X, y = _data()
    exp = tracking.ensure_experiment("e-rollback", mlflow_store.mlflow.artifact_root)
    versions = []
    for C in (1.0, 0.5):
        model = LogisticRegression(C=C).fit(X, y)
        result = _register(mlflow_store, exp, model, X, y, name="rb")
        assert result.promoted
        run_id = tracking.start_run(exp, "served")
        files = with_rule(native_candidate(model).files, "native", DecisionRule.argmax([0, 1]))
        uri = model_logging.log_served_model(run_id, files, X.head(3))
        registry.register_served(
            model_uri=uri, source=result, candidate="native", reason="test", alias="champion"
        )
        versions.append(result.version)
    client = mlflow.MlflowClient()
    assert client.get_registered_model("rb").aliases == {"champion": 2}

    moves = aliases.rollback("rb", reason="v2 misbehaves on Mondays")
    assert [(m.model, m.version, m.previous) for m in moves] == [
        ("rb", "1", "2"),
        ("rb-served", "1", "2"),
    ]
    assert client.get_registered_model("rb").aliases == {"champion": 1}
    assert client.get_registered_model("rb-served").aliases == {"champion": 1}
    champion = registry.load_model("models:/rb@champion")
    assert champion.predict(X.head(3)).shape == (3,)

    history = aliases.history("rb", "champion")
    assert [(m.previous, m.version) for m in history] == [(None, "1"), ("1", "2"), ("2", "1")]
    assert history[0].by.startswith("training run ") and "gate promote" in history[0].reason
    assert "v2 misbehaves on Mondays" in history[-1].reason and "rollback" in history[-1].by
    assert len(aliases.history("rb-served")) == 3  # appended, never rewritten
    # the registry tells the story: the champion now, and the moves, newest first
    story = client.get_registered_model("rb").description
    assert story.startswith("**rb** now: `@champion` [v1](#/models/rb/versions/1)")
    rows = [line for line in story.splitlines() if line.startswith("| 20")]
    assert len(rows) == 3 and "v2 misbehaves on Mondays" in rows[0]
    assert "[v2](#/models/rb/versions/2) | [v1](#/models/rb/versions/1)" in rows[0]
    assert "gate promote" in rows[-1] and "| none |" in rows[-1]
    assert "`@champion` [v1](#/models/rb-served/versions/1)" in (
        client.get_registered_model("rb-served").description
    )

    # the same through the command line: roll forward to v2, then read the history
    from typer.testing import CliRunner

    from honing_flows.cli.library import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = ["--env", str(project["env"])]
    res = CliRunner().invoke(app, ["rollback", "rb", "--to", "2", "-r", "fixed", *env])
    assert res.exit_code == 0, res.output
    assert "@champion: v1 -> v2" in res.output and "rb-served" in res.output
    assert client.get_registered_model("rb").aliases == {"champion": 2}
    res = CliRunner().invoke(app, ["aliases", "rb", "--alias", "champion", *env])
    assert res.exit_code == 0 and res.output.count("@champion") == 4
    res = CliRunner().invoke(app, ["rollback", "rb", "--to", "7", "-r", "x", *env])
    assert res.exit_code == 1 and "no version 7" in res.output and "Traceback" not in res.output

    with pytest.raises(RegistryError, match="reason"):
        aliases.rollback("rb", reason=" ")
    with pytest.raises(RegistryError, match="no version 9"):
        aliases.rollback("rb", reason="x", to="9")

    # v3 is promoted without a served flavor (compression trimmed, or the run was killed
    # before its flavor's alias moved): the flavor's alias still names v2's flavor, but the
    # served model is found through the champion, so nothing answers for the wrong model
    assert aliases.served_uri("rb") == "models:/rb-served/2"
    v3 = _register(mlflow_store, exp, LogisticRegression(C=0.5).fit(X, y), X, y, name="rb")
    assert v3.version == "3" and v3.promoted
    assert client.get_registered_model("rb-served").aliases == {"champion": 2}
    with pytest.raises(RegistryError, match="rb v3 has no served flavor"):
        aliases.served_uri("rb")
    assert aliases.served_uri("rb", version="1") == "models:/rb-served/1"
    # a rollback to a version without a flavor takes the flavor's alias off, recorded
    aliases.rollback("rb", reason="back", to="1")
    assert client.get_registered_model("rb-served").aliases == {"champion": 1}
    moves = aliases.rollback("rb", reason="forward again", to="3")
    assert [(m.model, m.version, m.previous) for m in moves] == [
        ("rb", "3", "1"),
        ("rb-served", "", "1"),
    ]
    assert "v3 of rb has no served flavor" in moves[1].reason
    assert client.get_registered_model("rb-served").aliases == {}


def _shadowed_batch(folder, X, y):
    """What a shadowed endpoint (``serve-model --capture --shadow challenger``) keeps of
    requests of ``X``: v1's answers, and v2's under shadow/; then the labels of all but the
    last request, joined as ``honing monitor --capture --labels`` joins them; the answers
    given live as the gate's evidence."""
    from honing import data
    from honing.monitoring import shadow
    from honing.serving import capture, scoring

    served = capture.CaptureLog(capture.CaptureConfig(folder / "capture"))
    shadowed = capture.CaptureLog(capture.CaptureConfig(folder / "capture" / capture.SHADOW))
    v1, v2 = (registry.load_model(f"models:/m/{v}") for v in ("1", "2"))
    labels = []
    for k, start in enumerate(range(0, len(X), 45)):
        rows = X.iloc[start : start + 45]
        inputs = json.loads(rows.to_json(orient="records"))
        served.record(f"r{k}", "1", inputs, scoring.records(v1.outputs(rows)))
        shadowed.record(f"r{k}", "2", inputs, scoring.records(v2.outputs(rows)))
        labels += [{"request_id": f"r{k}", "row": i, "churn": int(v)}
                   for i, v in enumerate(y[start : start + 45])]  # fmt: skip
    pd.DataFrame(labels[:-45]).to_csv(folder / "labels.csv", index=False)
    batch = capture.window_batch(
        folder / "capture", folder / "batches", labels=folder / "labels.csv", target="churn"
    )
    assert capture.answers_file(batch).is_file()
    codes, known = data.labelled_rows(pd.read_csv(batch)["churn"], [0, 1])
    live = shadow.recorded(batch, codes, known, [0, 1])
    assert live is not None and (live.champion, live.challenger) == ("1", "2")
    np.testing.assert_allclose(  # v2's own answers, as the shadow gave them
        live.evidence.challenger.values[:, 1], v2.outputs(X.iloc[:405])["probability"], rtol=1e-9
    )
    return live


def test_an_undecidable_challenger_is_promoted_by_evidence_across_batches(
    mlflow_store, churn_df, tmp_path
):
    """Sequential promotion in the registry: the test split (300 rows) cannot tell a churn
    model with the internet service added from the champion; it waits as @challenger, each
    labelled batch adds its rows, and the pooled evidence promotes it (the alias history
    says so). The first batch is traffic a shadowed endpoint captured: the challenger is
    judged on the answers both versions gave. A challenger whose champion was replaced
    meanwhile is dropped."""
    from sklearn.compose import make_column_transformer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from honing.config import RegistryConfig
    from honing.modeling.decision import answers
    from honing.registry import aliases
    from honing.registry.promotion import Evidence

    def model(columns):
        cats = [c for c in columns if c in ("contract", "internet_service")]
        nums = [c for c in columns if c not in cats]
        return make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), cats), ("passthrough", nums)
            ),
            LogisticRegression(max_iter=2000),
        )

    X = churn_df[["tenure", "monthly_charges", "contract", "internet_service"]]
    y = (churn_df["churn"] == "Yes").astype(int).to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    exp = tracking.ensure_experiment("e-seq", mlflow_store.mlflow.artifact_root)
    split_X, split_y = X_test.iloc[:300], y_test[:300]

    def register(estimator):
        run_id = tracking.start_run(exp, "train")
        uri = model_logging.log_native_model(run_id, estimator, X_train.head(3))
        report = evaluate(estimator, split_X, split_y, [0, 1])
        champion = registry.score_champion("m", "champion", split_X, split_y, [0, 1])
        evidence = None
        if champion is not None:
            mine = answers(estimator, split_X, [0, 1])
            evidence = Evidence(split_y, mine, champion.answers)
        decision = champion_gate(report, champion, metric="roc_auc", margin=0.0, evidence=evidence)
        result = registry.register_version(
            model_uri=uri, name="m", run_id=run_id, decision=decision, report=report,
            lineage=_lineage(), alias="champion",
        )  # fmt: skip
        tracking.end_run(run_id)
        return result

    fewer = model(["tenure", "monthly_charges", "contract"]).fit(X_train, y_train)
    assert register(fewer).promoted
    waiting = register(model(list(X.columns)).fit(X_train, y_train))
    assert waiting.decision.outcome == "undecidable" and waiting.version == "2"
    client = mlflow.MlflowClient()
    assert client.get_registered_model("m").aliases == {"champion": 1, "challenger": 2}

    cfg = RegistryConfig(model_name="m", metric="roc_auc")
    outcomes = []
    for i, start in enumerate(range(300, 2100, 450)):
        rows = slice(start, start + 450)
        live = _shadowed_batch(tmp_path, X_test.iloc[rows], y_test[rows]) if i == 0 else None
        followed = registry.follow_challenger(
            "m", X_test.iloc[rows], y_test[rows], [0, 1], cfg, batch=f"batch-{i}.csv",
            by="test", recorded=live,
        )  # fmt: skip
        outcomes.append(followed.outcome)
        if followed.outcome != "undecidable":
            break
    assert outcomes[-1] == "promote" and set(outcomes[:-1]) <= {"undecidable"}, outcomes
    assert len(outcomes) >= 2  # one batch was not enough
    assert client.get_registered_model("m").aliases == {"champion": 2}
    moves = aliases.history("m")
    assert moves[-2].alias == "champion" and moves[-2].version == "2"
    assert moves[-2].reason.startswith(f"sequential promotion on batch-{len(outcomes) - 1}.csv")
    assert moves[-1].alias == "challenger" and moves[-1].version == "" and moves[-1].previous == "2"
    v2_tags = client.get_model_version("m", "2").tags
    assert v2_tags["honing.infra_check"].startswith("loaded in a fresh process")  # before it moved
    state = json.loads(v2_tags["honing.sequential"])
    assert state["seeded"] and len(state["looks"]) == len(outcomes) + 1
    assert state["looks"][0]["source"] == "test split" and state["looks"][0]["rows"] == 300
    assert state["looks"][1]["source"] == "batch-0.csv (answers given live)"
    assert state["looks"][1]["rows"] == 450 - 45  # one request's labels never came
    # decided: further batches leave it alone
    again = registry.follow_challenger(
        "m", X_test.iloc[:50], y_test[:50], [0, 1], cfg, batch="late.csv", by="test"
    )
    assert again.outcome == "none"

    # a new undecidable challenger, then its champion is replaced: it is dropped
    third = register(model(["tenure", "monthly_charges", "contract"]).fit(X_train, y_train))
    assert third.decision.outcome == "undecidable" and third.version == "3"
    aliases.move_alias("m", "champion", "1", by="test", reason="by hand")
    dropped = registry.follow_challenger(
        "m", X_test.iloc[300:400], y_test[300:400], [0, 1], cfg, batch="b.csv", by="test"
    )
    assert dropped.outcome == "drop" and "holds @champion now" in dropped.reason
    assert "challenger" not in client.get_registered_model("m").aliases


def test_a_cut_graphs_signature_names_only_the_columns_it_reads(mlflow_store):
    """The served flavor of a graph whose unused inputs were cut is logged with a signature
    of the columns it reads, so MLflow's own schema check asks for no more."""
    from honing.compression import onnx_bytes, with_rule
    from honing.compression.candidates import onnx_candidate
    from honing.modeling.decision import DecisionRule
    from tests.model.test_input_cut import _fit

    model, X, cols = _fit("lightgbm", 2)
    data = onnx_bytes(model, cols.numeric, cols.text, rows=X)
    graph = onnx_candidate("onnx", data, cols.numeric, cols.text, "", "classification")
    assert graph.predictor.dropped
    files = with_rule(graph.files, "onnx", DecisionRule.argmax([0, 1]))
    exp = tracking.ensure_experiment("e-cut", mlflow_store.mlflow.artifact_root)
    run_id = tracking.start_run(exp, "served")
    uri = model_logging.log_served_model(run_id, files, X.head(3))
    tracking.end_run(run_id)
    names = mlflow.models.get_model_info(uri).signature.inputs.input_names()
    assert sorted(names) == sorted(graph.predictor.columns)
