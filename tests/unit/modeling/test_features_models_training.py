import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from honing.config import FeaturesConfig
from honing.exceptions import DataValidationError
from honing.modeling.features import build_preprocessor, infer_columns
from honing.modeling.training import (
    ModelSpec,
    TrainingSetup,
    cross_validate_model,
    make_model,
    train_model,
)
from honing.models import FAMILIES, build_estimator


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = ((x1 + (color == "red") * 1.5 + rng.normal(scale=0.5, size=n)) > 0.5).astype(int)
    x1[::17] = np.nan
    return pd.DataFrame({"x1": x1, "noise": rng.normal(size=n), "color": color}), y


def test_infer_columns_from_dtypes_and_config():
    X, _ = _data()
    cols = infer_columns(X, FeaturesConfig())
    assert cols.numeric == ["x1", "noise"] and cols.categorical == ["color"]
    cols = infer_columns(X, FeaturesConfig(categorical=["color"], numeric=["x1"]))
    assert cols.numeric == ["x1"]
    with pytest.raises(DataValidationError, match="not in the data"):
        infer_columns(X, FeaturesConfig(numeric=["nope"]))


def test_preprocessor_imputes_scales_and_ignores_unknown_categories():
    X, _ = _data()
    cols = infer_columns(X, FeaturesConfig())
    pre = build_preprocessor(cols, FeaturesConfig(), task="classification").fit(X)
    out = pre.transform(X)
    assert not np.isnan(out).any()
    assert out.shape == (len(X), 2 + 3)
    assert np.allclose(out[:, :2].mean(axis=0), 0, atol=1e-8)
    unseen = X.head(2).assign(color=["purple", None])
    assert pre.transform(unseen)[:, 2:].sum() == 0  # unknown -> all-zero one-hot


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_builds_and_fits(family):
    X, y = _data()
    result = train_model(
        X,
        y,
        ModelSpec(family, {}),
        TrainingSetup(
            "classification",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="roc_auc",
            folds=3,
        ),
        cross_validate=True,
    )
    assert result.model is not None
    assert result.cv is not None and len(result.cv.fold_scores) == 3
    assert result.cv.mean > 0.7  # the signal is strong


def test_logistic_penalties_map_to_l1_ratio():
    l1 = build_estimator(
        "logistic_regression", {"penalty": "l1", "C": 0.1}, seed=0, task="classification"
    )
    l2 = build_estimator("logistic_regression", {"penalty": "l2"}, seed=0, task="classification")
    en = build_estimator(
        "logistic_regression",
        {"penalty": "elasticnet", "l1_ratio": 0.3},
        seed=0,
        task="classification",
    )
    assert isinstance(l1, LogisticRegression)
    assert (l1.l1_ratio, l1.solver) == (1.0, "saga")
    assert (l2.l1_ratio, l2.solver) == (0.0, "lbfgs")
    assert en.l1_ratio == 0.3


def test_bad_family_or_param_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown classification model family"):
        build_estimator("tabnet", {}, seed=0, task="classification")
    with pytest.raises(ValueError, match="random_forest: invalid hyperparameter"):
        build_estimator("random_forest", {"n_trees": 3}, seed=0, task="classification")


def test_train_model_is_deterministic_and_refit_optional():
    X, y = _data()
    cols = infer_columns(X, FeaturesConfig())
    spec = ModelSpec("random_forest", {"n_estimators": 30})
    a = train_model(
        X,
        y,
        spec,
        TrainingSetup("classification", cols, FeaturesConfig(), seed=1, metric="roc_auc", folds=3),
        cross_validate=True,
    )
    b = train_model(
        X,
        y,
        spec,
        TrainingSetup("classification", cols, FeaturesConfig(), seed=1, metric="roc_auc", folds=3),
        cross_validate=True,
    )
    assert a.cv.fold_scores == b.cv.fold_scores
    np.testing.assert_array_equal(a.model.predict_proba(X), b.model.predict_proba(X))
    c = train_model(
        X,
        y,
        spec,
        TrainingSetup("classification", cols, FeaturesConfig(), seed=1, metric="roc_auc", folds=3),
        cross_validate=True,
        refit=False,
    )
    assert c.model is None and c.cv.fold_scores == a.cv.fold_scores


def test_cross_validation_leaves_the_template_unfitted():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    X, y = _data()
    model = make_model(
        ModelSpec("logistic_regression", {}),
        TrainingSetup(
            "classification",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="roc_auc",
            folds=5,
        ),
    )
    cv = cross_validate_model(model, X, y, folds=4, metric="accuracy", seed=0)
    assert len(cv.fold_scores) == 4 and 0.5 < cv.mean <= 1.0
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_model_spec_label():
    assert (
        ModelSpec("random_forest", {"max_depth": 4, "a": 0.123456}).label()
        == "random_forest(a=0.1235, max_depth=4)"
    )
