"""The boosting families served through ONNX (honing's LightGBM graph and onnxmltools' XGBoost
converter inside skl2onnx, and CatBoost's own export): the graph answers like the native
pipeline, with categoricals split natively, missing values, high-cardinality target encoding,
multiclass probabilities and regression."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from honing.compression import MANIFEST, load_served, onnx_bytes
from honing.config import FeaturesConfig
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model

pytestmark = pytest.mark.model


def _frame(n: int = 800, classes: int = 2, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
            "shop": rng.choice([f"s{i}" for i in range(40)], n),  # high cardinality
        }
    )
    X.loc[::11, "a"] = np.nan
    X.loc[::13, "color"] = np.nan  # as read from a CSV
    z = X["a"].fillna(0) + (X["color"] == "red") * 1.5 + rng.normal(scale=0.5, size=n)
    if classes == 0:
        return X, z.to_numpy()
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))


def _served(model, X: pd.DataFrame, task: str):
    cols = infer_columns(X, FeaturesConfig())
    data = onnx_bytes(model, cols.numeric, cols.text)
    manifest = {"format": "onnx", "numeric": cols.numeric, "categorical": cols.text, "task": task}
    return load_served({MANIFEST: json.dumps(manifest).encode(), "model.onnx": data})


def _answers_alike(served, model, X: pd.DataFrame, classes: int) -> None:
    """The graph's predictions (regression, ``classes`` 0) or probabilities match the
    native pipeline's."""
    if classes == 0:
        np.testing.assert_allclose(served.predict(X), model.predict(X), rtol=1e-4, atol=1e-4)
        return
    onnx, native = served.predict_proba(X), model.predict_proba(X)
    assert onnx.shape == native.shape == (len(X), classes)
    np.testing.assert_allclose(onnx, native, atol=1e-4)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
@pytest.mark.parametrize("classes", [2, 3])
def test_boosting_classifiers_answer_the_same_through_onnx(family, classes):
    X, y = _frame(classes=classes)
    if classes > 2:  # skl2onnx converts TargetEncoder for binary and continuous targets only
        X = X.drop(columns=["shop"])
    cols = infer_columns(X, FeaturesConfig())
    assert cols.high_cardinality == ([] if classes > 2 else ["shop"])
    setup = TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 5)
    model = make_model(ModelSpec(family, {"n_estimators": 40}), setup).fit(X, y)
    served = _served(model, X, "classification")
    native = model.predict_proba(X)
    onnx = served.predict_proba(X)
    assert onnx.shape == native.shape == (len(X), classes)
    np.testing.assert_allclose(onnx, native, atol=1e-4)
    # (CatBoost's own predict answers a column; honing decides from the probabilities)
    assert (served.predict(X) == np.ravel(model.predict(X))).mean() > 0.999


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_boosting_regressors_answer_the_same_through_onnx(family):
    X, y = _frame(classes=0)
    cols = infer_columns(X, FeaturesConfig())
    model = make_model(
        ModelSpec(family, {"n_estimators": 40}),
        TrainingSetup("regression", cols, FeaturesConfig(), seed=0, metric="rmse", folds=5),
    ).fit(X, y)
    served = _served(model, X, "regression")
    np.testing.assert_allclose(served.predict(X), model.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm"])
def test_column_names_the_converter_renames_are_still_fed(family):
    # skl2onnx turns "monthly charges", "tenure.1" and "plan-type" into valid input names;
    # the served predictor feeds the graph's inputs by position, so the frame's own column
    # names (as the user wrote them) keep working.
    X, y = _frame(300)
    X = X.rename(columns={"a": "monthly charges", "b": "tenure.1", "color": "plan-type",
                          "shop": "größe"})  # fmt: skip
    cols = infer_columns(X, FeaturesConfig(encoder="auto"))
    features = FeaturesConfig(encoder="auto")
    model = make_model(
        ModelSpec(family, {}),
        TrainingSetup("classification", cols, features, seed=0, metric="roc_auc", folds=5),
    )
    model.fit(X, y)
    manifest = {"format": "onnx", "numeric": cols.numeric, "categorical": cols.text}
    served = load_served(
        {
            MANIFEST: json.dumps(manifest).encode(),
            "model.onnx": onnx_bytes(model, cols.numeric, cols.text),
        }
    )
    np.testing.assert_allclose(served.predict_proba(X), model.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("classes", [0, 2, 3])
def test_a_weighted_soft_vote_answers_the_same_through_one_graph(classes):
    """Ensemble selection's weighted vote of boosted pipelines (and a linear one), each with
    its own encoding, exported as one ONNX graph."""
    X, y = _frame(classes=classes)
    X = X.drop(columns=["shop"])  # (multiclass target encoding does not convert; see above)
    task = "regression" if classes == 0 else "classification"
    linear = "linear" if classes == 0 else "logistic_regression"
    members = [
        {"family": "lightgbm", "params": {"n_estimators": 40}, "features": {}},
        {"family": "catboost", "params": {"n_estimators": 40}, "features": {}},
        {"family": "xgboost", "params": {"n_estimators": 30}, "features": {}},
        {"family": linear, "params": {}, "features": {}},
    ]
    spec = ModelSpec("ensemble_selection", {"members": members, "weights": [3, 2, 1, 1]})
    cols = infer_columns(X, FeaturesConfig())
    setup = TrainingSetup(task, cols, FeaturesConfig(), 0, "rmse" if classes == 0 else "roc_auc", 5)
    model = make_model(spec, setup).fit(X, y)
    _answers_alike(_served(model, X, task), model, X, classes)


@pytest.mark.parametrize("classes", [2, 3, 0])
def test_a_stack_answers_the_same_through_one_graph(classes):
    """A stack of boosted pipelines and a linear one: the members' graphs side by side, their
    answers laid out as scikit-learn's stack lays them (a binary classifier's positive-class
    column), and the final estimator's graph on them, in one graph."""
    X, y = _frame(classes=classes)
    task = "regression" if classes == 0 else "classification"
    linear = "linear" if classes == 0 else "logistic_regression"
    members = [
        {"family": "lightgbm", "params": {"n_estimators": 30}, "features": {}},
        {"family": "xgboost", "params": {"n_estimators": 20}, "features": {}},
        {"family": linear, "params": {}, "features": {}},
    ]
    cols = infer_columns(X, FeaturesConfig())
    setup = TrainingSetup(task, cols, FeaturesConfig(), 0, "rmse" if classes == 0 else "roc_auc", 5)
    model = make_model(ModelSpec("stacking", {"members": members}), setup).fit(X, y)
    _answers_alike(_served(model, X, task), model, X, classes)
