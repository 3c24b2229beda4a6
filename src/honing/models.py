"""Model families and their construction from a flat hyperparameter dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC, SVR


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


def _ints(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of ``params`` with ``keys`` as ints (samplers hand over floats and numpy
    scalars); absent or None values are left alone. The per-family helpers below are shared
    by the classifier and the regressor of each family."""
    p = dict(params)
    for key in keys:
        if p.get(key) is not None:
            p[key] = int(p[key])
    return p


def _trees(params: dict[str, Any]) -> dict[str, Any]:
    return _ints(params, "n_estimators", "min_samples_leaf", "max_depth")


def _svm_params(params: dict[str, Any]) -> dict[str, Any]:
    return _ints(params, "degree")


def _knn_params(params: dict[str, Any]) -> dict[str, Any]:
    p = _ints(params, "n_neighbors")
    if "p" in p:
        p["p"] = float(p["p"])
    return p


def _mlp_params(params: dict[str, Any]) -> dict[str, Any]:
    return _ints(params, "hidden_layers", "width", "batch_size", "max_epochs", "patience")


def _random_forest(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """Bagging of decision trees on bootstrap samples."""
    return RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **_trees(params))


def _extra_trees(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """Extremely randomized trees: random split thresholds, whole sample by default."""
    return ExtraTreesClassifier(random_state=seed, n_jobs=n_jobs, **_trees(params))


def _svm(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """Support vector classifier; C is the (inverse) L2 regularization. Probabilities come
    from Platt scaling (internal 5-fold CV), which serving and ROC-AUC need."""
    return SVC(probability=True, random_state=seed, cache_size=500, **_svm_params(params))


def _knn(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return KNeighborsClassifier(n_jobs=n_jobs, **_knn_params(params))


def _hgb(params: dict[str, Any]) -> dict[str, Any]:
    return _ints(params, "max_leaf_nodes", "max_iter", "min_samples_leaf")


def _hist_gradient_boosting(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(random_state=seed, **_hgb(params))


def _mlp(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from honing.nn import TorchMLPClassifier

    return TorchMLPClassifier(random_state=seed, **_mlp_params(params))


def _linear(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """Linear regression with L2 (ridge), L1 (lasso) or elastic-net regularization."""
    p = dict(params)
    penalty = p.pop("penalty", "l2")
    if penalty == "l2":
        p.pop("l1_ratio", None)
        return Ridge(random_state=seed, **p)
    if penalty == "l1":
        p.pop("l1_ratio", None)
        return Lasso(random_state=seed, max_iter=int(p.pop("max_iter", 5000)), **p)
    if penalty == "elasticnet":
        return ElasticNet(random_state=seed, max_iter=int(p.pop("max_iter", 5000)), **p)
    raise ValueError(f"linear.penalty must be l1, l2 or elasticnet, got {penalty}")


def _svr(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return SVR(cache_size=500, **_svm_params(params))


def _knn_regressor(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    return KNeighborsRegressor(n_jobs=n_jobs, **_knn_params(params))


def _mlp_regressor(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from honing.nn import TorchMLPRegressor

    return TorchMLPRegressor(random_state=seed, **_mlp_params(params))


REGRESSION_FAMILIES: dict[str, Callable[[dict[str, Any], int, int], BaseEstimator]] = {
    "linear": _linear,
    "svm": _svr,
    "knn": _knn_regressor,
    "random_forest": lambda p, seed, n_jobs: RandomForestRegressor(
        random_state=seed, n_jobs=n_jobs, **_trees(p)
    ),
    "extra_trees": lambda p, seed, n_jobs: ExtraTreesRegressor(
        random_state=seed, n_jobs=n_jobs, **_trees(p)
    ),
    "hist_gradient_boosting": lambda p, seed, n_jobs: HistGradientBoostingRegressor(
        random_state=seed, **_hgb(p)
    ),
    "mlp": _mlp_regressor,
}

FAMILIES: dict[str, Callable[[dict[str, Any], int, int], BaseEstimator]] = {
    "logistic_regression": _logistic_regression,
    "svm": _svm,
    "knn": _knn,
    "random_forest": _random_forest,
    "extra_trees": _extra_trees,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "mlp": _mlp,
}

#: Families trained in steps, so ASHA/HyperBand/median stopping can cut them early: the
#: hyperparameter that is the resource (epochs, boosting iterations).
ITERATIVE: dict[str, str] = {"mlp": "max_epochs", "hist_gradient_boosting": "max_iter"}


def build_estimator(
    family: str,
    params: dict[str, Any],
    *,
    seed: int,
    n_jobs: int = 1,
    task: str = "classification",
) -> BaseEstimator:
    """An unfitted estimator of ``family`` for ``task`` with ``params`` (errors name the bad
    key)."""
    families = FAMILIES if task == "classification" else REGRESSION_FAMILIES
    try:
        factory = families[family]
    except KeyError as exc:
        raise ValueError(
            f"unknown {task} model family '{family}'; known: {sorted(families)}"
        ) from exc
    try:
        return factory(params, seed, n_jobs)
    except TypeError as exc:
        raise ValueError(f"{family}: invalid hyperparameter in {params}: {exc}") from exc
