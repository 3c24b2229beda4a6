"""Regression as well as classification: config rules, families, CV, metrics, gates."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.config import FeaturesConfig, MonitoringConfig, parse_config
from honing.data import split_data
from honing.evaluation import evaluate, gate
from honing.exceptions import ConfigError, DataValidationError, ModelQualityError
from honing.metrics import metric_value
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.models import REGRESSION_FAMILIES
from honing.monitoring import DriftReport
from honing.monitoring import gate as drift_gate
from honing.registry.champion import ChampionScore, champion_gate
from tests.conftest import demo_config_dict


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = 3 * x + (color == "red") * 2.0 + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "color": color}), y


def _regression_cfg(**search):
    raw = demo_config_dict()
    raw["task"] = "regression"
    raw["search"] = {"families": {"linear": {}}, **search}
    raw["evaluation"] = {"thresholds": {"r2": 0.5}}
    raw["registry"] = {"model_name": "m"}
    raw.pop("compression", None)
    return raw


def test_regression_configs_get_regression_metrics_and_refuse_classification_ones():
    cfg = parse_config(_regression_cfg(), source=Path("r.yaml"), root=Path("."))
    assert (cfg.search.metric, cfg.registry.metric, cfg.monitoring.metric) == ("rmse",) * 3
    assert cfg.compression.metric == "r2"
    with pytest.raises(ConfigError, match="search.metric: 'roc_auc' is not a regression metric"):
        parse_config(_regression_cfg(metric="roc_auc"), source=Path("r.yaml"), root=Path("."))
    bad = _regression_cfg()
    bad["search"]["families"] = {"logistic_regression": {}}
    with pytest.raises(ConfigError, match="cannot do regression"):
        parse_config(bad, source=Path("r.yaml"), root=Path("."))
    clf = demo_config_dict()
    clf["search"]["families"] = {"linear": {}}
    with pytest.raises(ConfigError, match="cannot do classification"):
        parse_config(clf, source=Path("c.yaml"), root=Path("."))


@pytest.mark.parametrize("family", sorted(REGRESSION_FAMILIES))
def test_every_regression_family_fits(family):
    X, y = _data()
    res = train_model(
        X,
        y,
        ModelSpec(family, {}),
        TrainingSetup(
            "regression",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="r2",
            folds=3,
        ),
        cross_validate=True,
    )
    assert res.cv.mean > 0.6, family
    assert res.model.predict(X.head(3)).shape == (3,)


def test_linear_penalties():
    X, y = _data()
    cols = infer_columns(X, FeaturesConfig())
    for penalty, cls in (("l1", "Lasso"), ("l2", "Ridge"), ("elasticnet", "ElasticNet")):
        model = train_model(
            X,
            y,
            ModelSpec("linear", {"penalty": penalty, "alpha": 0.01}),
            TrainingSetup("regression", cols, FeaturesConfig(), seed=0, metric="rmse", folds=5),
        ).model
        assert type(model.steps[-1][1]).__name__ == cls


def test_rmse_cv_scores_are_reported_in_rmse_units():
    X, y = _data()
    res = train_model(
        X,
        y,
        ModelSpec("linear", {}),
        TrainingSetup(
            "regression",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="rmse",
            folds=3,
        ),
        cross_validate=True,
        refit=False,
    )
    assert res.cv.mean < 0  # scikit-learn's greater-is-better convention
    assert 0.2 < metric_value("rmse", res.cv.mean) < 0.5  # the noise is 0.3


def test_split_and_evaluate_regression():
    X, y = _data()
    df = X.assign(target=y)
    split, classes = split_data(
        df,
        "target",
        positive_label=None,
        drop_columns=[],
        test_size=0.25,
        seed=0,
        task="regression",
    )
    assert classes == [] and split.y_train.dtype == np.float64
    with pytest.raises(DataValidationError, match="numeric target"):
        split_data(
            df.assign(target="a"),
            "target",
            positive_label=None,
            drop_columns=[],
            test_size=0.25,
            seed=0,
            task="regression",
        )
    model = train_model(
        split.X_train,
        split.y_train,
        ModelSpec("linear", {}),
        TrainingSetup(
            "regression",
            infer_columns(split.X_train, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="rmse",
            folds=5,
        ),
    ).model
    report = evaluate(model, split.X_test, split.y_test, classes)
    assert set(report.metrics) == {"rmse", "mae", "r2", "max_error"}
    assert report.metrics["r2"] > 0.9 and report.confusion_matrix == []
    gate(report, {"rmse": 1.0, "r2": 0.9})
    with pytest.raises(ModelQualityError, match="rmse: .* > maximum 0.0100"):
        gate(report, {"rmse": 0.01})


def _report(rmse):
    from honing.evaluation import EvaluationReport

    return EvaluationReport({"rmse": rmse}, [], [], 10)


def test_champion_gate_turns_around_for_errors():
    champion = ChampionScore("1", _report(1.0))
    assert champion_gate(_report(0.9), champion, metric="rmse", margin=0.0).promote
    assert not champion_gate(_report(1.1), champion, metric="rmse", margin=0.05).promote
    assert champion_gate(_report(1.04), champion, metric="rmse", margin=0.05).promote


def test_drift_gate_counts_a_growing_error_as_a_drop():
    report = DriftReport(
        reference_rows=100,
        current_rows=100,
        columns=[],
        drifted_share=0.0,
        performance={"rmse": 1.5},
        reference_performance={"rmse": 1.0},
    )
    decision = drift_gate(report, MonitoringConfig(metric="rmse", max_metric_drop=0.2))
    assert decision.retrain and "rmse rose by 0.5000" in decision.reasons[0]


def test_init_profiles_a_regression_target_into_a_valid_config(tmp_path):
    from honing.validation import profiling

    X, y = _data()
    df = X.assign(price=y)
    suite = profiling.profile_suite(df, name="r", target="price", task="regression")
    target_rules = {
        e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == "price"
    }
    assert "expect_column_values_to_be_between" in target_rules
    assert "expect_column_values_to_be_in_set" not in target_rules
    raw = profiling.profile_config(
        df,
        name="r",
        data_path=tmp_path / "r.csv",
        suite_path=tmp_path / "r.json",
        target="price",
        task="regression",
    )
    cfg = parse_config(raw, source=Path("r.yaml"), root=tmp_path)
    assert cfg.task == "regression" and cfg.search.metric == "rmse"
    assert set(cfg.search.families) == {
        "linear",
        "random_forest",
        "extra_trees",
        "lightgbm",
        "catboost",
        "xgboost",
    }
    assert cfg.time_budget_s == profiling.DEFAULT_BUDGET_S and cfg.search.trials_per_family is None
    with pytest.raises(DataValidationError, match="numeric target"):
        profiling.profile_config(
            df.assign(price="x"),
            name="r",
            data_path=tmp_path / "r.csv",
            suite_path=tmp_path / "r.json",
            target="price",
            task="regression",
        )


def test_task_family_lists_match_the_model_registries():
    from honing.models import FAMILIES, task_families

    assert set(task_families("classification")) == set(FAMILIES)
    assert set(task_families("regression")) == set(REGRESSION_FAMILIES)
