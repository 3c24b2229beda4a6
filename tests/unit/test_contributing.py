"""CONTRIBUTING.md's one-file examples hold: a new metric is one entry of
``honing.metrics.METRICS`` and a new model family (a boosting library too, with its rounds
and its ONNX converter) one entry of ``honing.models.FAMILY_TABLE``.
Each test adds its entry (and nothing else) and drives it through everything that reads it."""

from __future__ import annotations

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn import metrics as skm
from sklearn.tree import DecisionTreeClassifier

from honing import metrics, models
from honing.compression import CompressionOptions, build_candidates
from honing.config import FeaturesConfig, parse_config
from honing.data import clean, split_data
from honing.evaluation import evaluate, gate
from honing.evaluation.explain import shap_importances
from honing.exceptions import ModelQualityError
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.registry.champion import ChampionScore, champion_gate
from tests.conftest import ROOT, demo_config_dict


@pytest.fixture(scope="module")
def split(churn_df):
    df, _ = clean(churn_df.sample(800, random_state=1), "churn")
    out, classes = split_data(
        df,
        "churn",
        positive_label="Yes",
        drop_columns=[],
        test_size=0.25,
        seed=0,
        task="classification",
    )
    return out, classes


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.asarray(proba)
    labels = p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)
    return float(skm.balanced_accuracy_score(y, labels))


def _trained(data, spec: ModelSpec, **kwargs):
    """``spec`` trained on the churn split's training rows (3-fold CV on ROC-AUC), with the
    column layout it was given."""
    columns = infer_columns(data.X_train, FeaturesConfig(encoder="auto"))
    setup = TrainingSetup(
        "classification", columns, FeaturesConfig(encoder="auto"), seed=0, metric="roc_auc",
        folds=3,
    )  # fmt: skip
    return train_model(data.X_train, data.y_train, spec, setup, **kwargs), columns


def _served_through_onnx(model, data, columns, *, atol: float) -> None:
    """The model's one ONNX candidate exists and answers as the model does on the test rows."""
    candidates, skipped = build_candidates(
        model,
        data.X_train,
        data.y_train,
        numeric=columns.numeric,
        categorical=columns.text,
        options=CompressionOptions(techniques=("onnx",)),
    )
    assert [c.name for c in candidates] == ["native", "onnx"] and skipped == {}
    onnx = candidates[1].predictor.predict_proba(data.X_test)
    np.testing.assert_allclose(onnx, model.predict_proba(data.X_test), atol=atol)


def test_a_new_metric_is_one_table_entry(monkeypatch, split):
    monkeypatch.setitem(
        metrics.METRICS,
        "balanced_accuracy",
        metrics.MetricInfo(
            "balanced_accuracy", "classification", True, "balanced_accuracy", _balanced_accuracy
        ),
    )
    (data, classes) = split
    # the config accepts it for the search, the gates and the thresholds
    raw = demo_config_dict()
    raw["search"]["metric"] = "balanced_accuracy"
    raw["registry"]["metric"] = "balanced_accuracy"
    raw["evaluation"]["thresholds"] = {"balanced_accuracy": 0.5}
    cfg = parse_config(raw, source=ROOT / "configs" / "churn.yaml", root=ROOT)
    assert cfg.search.metric == "balanced_accuracy"
    # the trials are scored with it, the same numbers as on their out-of-fold predictions
    columns = infer_columns(data.X_train, FeaturesConfig())
    res = train_model(
        data.X_train,
        data.y_train,
        ModelSpec("logistic_regression", {"C": 1.0}),
        TrainingSetup(
            "classification", columns, FeaturesConfig(), seed=0, metric="balanced_accuracy", folds=3
        ),
        cross_validate=True,
    )
    assert 0.5 < res.cv.mean < 1.0
    # the evaluation reports it, and the quality and champion gates decide on it
    report = evaluate(res.model, data.X_test, data.y_test, classes)
    value = report.metrics["balanced_accuracy"]
    assert value == pytest.approx(
        _balanced_accuracy(data.y_test, res.model.predict_proba(data.X_test))
    )
    with pytest.raises(ModelQualityError, match="balanced_accuracy"):
        gate(report, {"balanced_accuracy": 0.99})
    decision = champion_gate(
        report, ChampionScore("1", report), metric="balanced_accuracy", margin=0.0
    )
    assert decision.promote and "balanced_accuracy" in decision.reason


def test_a_new_regression_metric_is_one_table_entry(monkeypatch):
    """A regression metric, too: the evaluation reads every regression entry of the table
    (it once listed RMSE, MAE, R² and the largest error by hand)."""
    import pandas as pd
    from sklearn.datasets import make_friedman1

    from honing.modeling.features import FeatureColumns

    def median_ae(y: np.ndarray, pred: np.ndarray) -> float:
        return float(skm.median_absolute_error(y, pred))

    monkeypatch.setitem(
        metrics.METRICS,
        "median_ae",
        metrics.MetricInfo(
            "median_ae", "regression", False, "neg_median_absolute_error", median_ae,
            bounded=False,
        ),
    )  # fmt: skip
    X, y = make_friedman1(600, n_features=6, noise=0.5, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    setup = TrainingSetup(
        "regression", FeatureColumns(numeric=list(df.columns), categorical=[]),
        FeaturesConfig(), seed=0, metric="median_ae", folds=3,
    )  # fmt: skip
    res = train_model(df[:450], y[:450], ModelSpec("linear", {"alpha": 1.0}), setup,
                      cross_validate=True)  # fmt: skip
    assert res.cv.mean < 0  # greater is better: an error comes negated
    report = evaluate(res.model, df[450:], y[450:], [])
    assert report.metrics["median_ae"] == pytest.approx(
        median_ae(y[450:], res.model.predict(df[450:]))
    )
    assert {"rmse", "mae", "r2", "max_error", "median_ae"} <= set(report.metrics)
    with pytest.raises(ModelQualityError, match="median_ae"):
        gate(report, {"median_ae": 0.01})  # an error: a maximum


def test_a_new_drift_method_is_one_table_entry(monkeypatch):
    import pandas as pd

    from honing import drift
    from honing.config import MonitoringConfig
    from honing.monitoring import drift_report

    preset = {"num_method": "jensenshannon", "num_threshold": 0.1,
              "cat_method": "jensenshannon", "cat_threshold": 0.1}  # fmt: skip
    monkeypatch.setitem(
        drift.DRIFT_METHODS, "js", drift.DriftMethod("js", "Jensen-Shannon distance", preset)
    )
    assert MonitoringConfig(drift_method="js").drift_method == "js"  # the config accepts it
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 800), "b": rng.normal(0, 1, 800),
                        "c": rng.choice(["x", "y"], 800)})  # fmt: skip
    cur = ref.assign(a=rng.normal(3, 1, 800))
    report = drift_report(ref, cur, numeric=["a", "b"], categorical=["c"], method="js")
    assert report.drifted == ["a"]
    assert {c.method for c in report.columns} == {"jensenshannon"}
    # a p-value test set by name drifts below its threshold (its name lacks "p_value")
    assert drift.drifted("mannw", 0.01, 0.05) and not drift.drifted("mannw", 0.5, 0.05)
    assert drift.drifted("jensenshannon", 0.5, 0.1) and not drift.drifted("psi", 0.01, 0.2)
    with pytest.raises(ValueError, match="unknown drift method 'hellinger'"):
        MonitoringConfig(drift_method="hellinger")


def test_a_new_family_is_one_table_entry(monkeypatch, split):
    monkeypatch.setitem(
        models.FAMILY_TABLE,
        "decision_tree",
        models.Family(
            "decision_tree",
            {
                "classification": lambda p, seed, n_jobs: DecisionTreeClassifier(
                    random_state=seed, **p
                )
            },
            encoder="ordinal",
            tree=True,
        ),  # fmt: skip
    )
    (data, classes) = split
    raw = demo_config_dict()
    raw["search"]["families"] = {"decision_tree": {"max_depth": {"randint": [2, 8]}}}
    cfg = parse_config(raw, source=ROOT / "configs" / "churn.yaml", root=ROOT)
    assert list(cfg.search.families) == ["decision_tree"]
    res, columns = _trained(
        data,
        ModelSpec("decision_tree", {"max_depth": 4}),
        cross_validate=True,
        rungs=4,  # under a scheduler its resource is rows (a table this small: one report)
    )
    assert 0.6 < res.cv.mean <= 1.0
    assert res.model.steps[0][1].transformers[1][0] == "categorical"  # ordinal, as declared
    # explained exactly, as a tree, and served through ONNX like any scikit-learn pipeline
    assert shap_importances(res.model, data.X_test, seed=0, rows=30).method == "shap_tree"
    _served_through_onnx(res.model, data, columns, atol=1e-5)


def _goss_onnx() -> None:
    """The new family's converter: skl2onnx learns its estimator (here through onnxmltools'
    LightGBM converter, since the estimator is LightGBM's underneath)."""
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        _GossClassifier, "GossClassifier", calculate_linear_classifier_output_shapes,
        convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )  # fmt: skip


def _goss_classifier(params, seed, n_jobs):
    return _GossClassifier(
        data_sample_strategy="goss", random_state=seed, n_jobs=n_jobs, verbose=-1, **params
    )


class _GossClassifier(LGBMClassifier):
    """A boosting library skl2onnx has never heard of (a class of its own)."""


def test_a_new_booster_family_is_one_table_entry(monkeypatch, split):
    """A boosting family brings its rounds adapter (trials grow in chunks and stop early) and
    its ONNX converter (the export registers it): one entry, nothing else."""
    from honing.models.boosters import LightGBMRounds

    monkeypatch.setitem(
        models.FAMILY_TABLE,
        "goss",
        models.Family(
            "goss",
            {"classification": _goss_classifier},
            encoder="ordinal",
            booster=LightGBMRounds(),
            tree=True,
            onnx_converter=_goss_onnx,
        ),  # fmt: skip
    )
    (data, classes) = split
    res, columns = _trained(
        data, ModelSpec("goss", {"n_estimators": 400, "learning_rate": 0.3}), cross_validate=True
    )
    assert 0.6 < res.cv.mean <= 1.0
    assert res.cv.rounds is not None and res.cv.rounds < 400  # grown in chunks, stopped early
    _served_through_onnx(res.model, data, columns, atol=1e-4)


def _build_optimized(b):
    """The new technique's builder: the model's ONNX graph (converted once, shared with the
    other graph techniques) after onnxruntime's basic graph optimizations, saved offline."""
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    from honing.compression.candidates import onnx_candidate

    data = b.graph
    if data is None:
        return []
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        optimized = Path(options.optimized_model_filepath).read_bytes()
    note = "ORT basic graph optimizations"
    return [onnx_candidate("onnx_optimized", optimized, *b.cols, note, b.task, b.n_params)]


def test_a_new_technique_is_one_table_entry(monkeypatch, split):
    """A compression technique is one entry of ``TECHNIQUES`` that carries its builder: the
    config accepts its name, compression builds, measures and may pick its candidate."""
    from honing.compression import compress
    from honing.techniques import TECHNIQUES, Technique

    monkeypatch.setitem(
        TECHNIQUES,
        "onnx_optimized",
        Technique(
            "onnx_optimized",
            "any",
            ("onnx_optimized",),
            "the ONNX graph, optimized offline",
            _build_optimized,
            graph=True,
        ),  # fmt: skip
    )
    raw = demo_config_dict()
    raw.setdefault("compression", {})["techniques"] = ["onnx", "onnx_optimized"]
    cfg = parse_config(raw, source=ROOT / "configs" / "churn.yaml", root=ROOT)
    assert cfg.compression.techniques == ["onnx", "onnx_optimized"]
    (data, classes) = split
    res, columns = _trained(data, ModelSpec("logistic_regression", {"C": 1.0}))
    result = compress(
        res.model, data.X_train, data.y_train, data.X_test, data.y_test, classes,
        numeric=columns.numeric, categorical=columns.text,
        options=CompressionOptions(techniques=tuple(cfg.compression.techniques)),
        metric="roc_auc", tolerance=0.005, latency_rows=20,
    )  # fmt: skip
    row = result.report.row("onnx_optimized")
    assert row.metrics["roc_auc"] == pytest.approx(result.report.row("native").metrics["roc_auc"])
    assert "onnx_optimized" not in result.report.skipped


def test_every_technique_names_a_builder_that_exists():
    from honing.techniques import TECHNIQUES, builder

    assert all(callable(builder(t)) for t in TECHNIQUES.values())
