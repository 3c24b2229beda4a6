"""Model families and their construction from a flat hyperparameter dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def _logistic_regression(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    p = dict(params)
    penalty = p.pop("penalty", "l2")
    l1_ratio = {"l1": 1.0, "l2": 0.0}.get(penalty, p.pop("l1_ratio", 0.5))
    p.pop("l1_ratio", None)
    if penalty not in ("l1", "l2", "elasticnet"):
        raise ValueError(f"logistic_regression.penalty must be l1, l2 or elasticnet, got {penalty}")
    solver = "lbfgs" if l1_ratio == 0.0 else "saga"
    return LogisticRegression(
        l1_ratio=l1_ratio,
        solver=solver,
        max_iter=int(p.pop("max_iter", 2000)),
        random_state=seed,
        **p,
    )


def _random_forest(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    p = dict(params)
    for key in ("n_estimators", "min_samples_leaf"):
        if key in p:
            p[key] = int(p[key])
    if p.get("max_depth") is not None and "max_depth" in p:
        p["max_depth"] = int(p["max_depth"])
    return RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **p)


def _hist_gradient_boosting(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    p = dict(params)
    for key in ("max_leaf_nodes", "max_iter", "min_samples_leaf"):
        if key in p:
            p[key] = int(p[key])
    return HistGradientBoostingClassifier(random_state=seed, **p)


def _mlp(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from honing.nn import TorchMLPClassifier

    p = dict(params)
    for key in ("hidden_layers", "width", "batch_size", "max_epochs", "patience"):
        if key in p:
            p[key] = int(p[key])
    return TorchMLPClassifier(random_state=seed, **p)


FAMILIES: dict[str, Callable[[dict[str, Any], int, int], BaseEstimator]] = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "mlp": _mlp,
}


def build_estimator(
    family: str, params: dict[str, Any], *, seed: int, n_jobs: int = 1
) -> BaseEstimator:
    """An unfitted estimator of ``family`` with ``params`` (errors name the bad key)."""
    try:
        factory = FAMILIES[family]
    except KeyError as exc:
        raise ValueError(f"unknown model family '{family}'; known: {sorted(FAMILIES)}") from exc
    try:
        return factory(params, seed, n_jobs)
    except TypeError as exc:
        raise ValueError(f"{family}: invalid hyperparameter in {params}: {exc}") from exc


def build_pipeline(preprocessor: ColumnTransformer, estimator: BaseEstimator) -> Pipeline:
    """Preprocessing + model in one estimator: what gets searched, registered and served."""
    return Pipeline([("features", preprocessor), ("model", estimator)])
