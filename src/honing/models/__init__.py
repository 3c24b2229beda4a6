"""Model families and their construction from a flat hyperparameter dict.

The package holds what a family is: its estimator (:mod:`~honing.models.nn` for the PyTorch
MLP), its low-fidelity rungs (:mod:`~honing.models.fidelity`), its ONNX converter
(:mod:`~honing.models.converters`, :mod:`~honing.models.tree_graphs`,
:mod:`~honing.models.catboost_graph`, :mod:`~honing.models.dense`), and the saved-model format
(:mod:`~honing.models.artifacts`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator
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

from honing.models.boosters import Booster, CatBoostRounds, LightGBMRounds, XGBoostRounds
from honing.models.converters import (
    catboost_onnx,
    forest_onnx,
    hist_gradient_boosting_onnx,
    lightgbm_onnx,
    mlp_onnx,
    xgboost_onnx,
)


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
    from honing.models.nn import TorchMLPClassifier

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
    from honing.models.nn import TorchMLPRegressor

    return TorchMLPRegressor(random_state=seed, **_mlp_params(params))


def _lightgbm_params(params: dict[str, Any], seed: int, n_jobs: int) -> dict[str, Any]:
    p = _ints(params, "n_estimators", "num_leaves", "min_child_samples", "max_depth")
    return {"random_state": seed, "n_jobs": n_jobs, "verbose": -1, **p}


def _lightgbm(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """LightGBM: leaf-wise gradient boosting; ordinal-encoded categoricals are split natively
    (``categorical_column``, set by the trainer from the column layout: the alias that the
    C++ library reads; the Python ``categorical_feature`` keyword warns when set as a param)."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**_lightgbm_params(params, seed, n_jobs))


def _lightgbm_regressor(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**_lightgbm_params(params, seed, n_jobs))


def _xgboost_params(params: dict[str, Any], seed: int, n_jobs: int) -> dict[str, Any]:
    p = _ints(params, "n_estimators", "max_depth", "max_leaves")
    return {"random_state": seed, "n_jobs": n_jobs, "tree_method": "hist", **p}


def _xgboost(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """XGBoost (histogram trees, CPU wheel)."""
    from xgboost import XGBClassifier

    return XGBClassifier(**_xgboost_params(params, seed, n_jobs))


def _xgboost_regressor(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from xgboost import XGBRegressor

    return XGBRegressor(**_xgboost_params(params, seed, n_jobs))


def _catboost_params(params: dict[str, Any], seed: int, n_jobs: int) -> dict[str, Any]:
    p = _ints({"n_estimators": 1000, **params}, "n_estimators", "depth", "border_count")
    return {"random_seed": seed, "thread_count": n_jobs, "verbose": 0,
            "allow_writing_files": False, **p}  # fmt: skip


def _catboost(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    """CatBoost: symmetric (oblivious) trees with ordered boosting, often the strongest
    single model on small and mid-sized tables; ordinal-encoded categoricals are split as
    numbers (its own categorical statistics need the raw values)."""
    from catboost import CatBoostClassifier

    return CatBoostClassifier(**_catboost_params(params, seed, n_jobs))


def _catboost_regressor(params: dict[str, Any], seed: int, n_jobs: int) -> BaseEstimator:
    from catboost import CatBoostRegressor

    return CatBoostRegressor(**_catboost_params(params, seed, n_jobs))


Builder = Callable[[dict[str, Any], int, int], BaseEstimator]


@dataclass(frozen=True)
class Family:
    """What honing knows about a model family: one entry of :data:`FAMILY_TABLE`, read by the
    config (allowed names per task), the trainer (encoding, scaling, rungs, native
    categoricals) and the search portfolio.

    A scheduler's resource (see :mod:`honing.models.fidelity`) is the ``booster``'s rounds (with
    early stopping) when set, else the warm-started ``rung_param``, else training rows."""

    name: str
    builders: dict[str, Builder]  # task -> builder
    encoder: str = "onehot"  # the low-cardinality encoding it prefers (features.encoder: auto)
    rung_param: str | None = None  # the warm-started parameter a scheduler cuts into rungs
    booster: Booster | None = None  # grows n_estimators round by round, with early stopping
    native_categorical: str | None = None  # constructor keyword for categorical positions
    tree: bool = False  # a tree model: splits ignore scale, so numeric columns are not scaled
    #: Registers its estimators' converters with skl2onnx: those skl2onnx does not know (a
    #: boosting library's), or a faster one for those it does (scikit-learn's forests);
    #: called before every ONNX export (see :mod:`honing.models.converters`).
    onnx_converter: Callable[[], None] | None = None


FAMILY_TABLE: dict[str, Family] = {
    f.name: f
    for f in (
        Family("logistic_regression", {"classification": _logistic_regression}),
        Family("linear", {"regression": _linear}),
        Family("svm", {"classification": _svm, "regression": _svr}),
        Family("knn", {"classification": _knn, "regression": _knn_regressor}),
        Family(
            "random_forest",
            {
                "classification": _random_forest,
                "regression": lambda p, seed, n_jobs: RandomForestRegressor(
                    random_state=seed, n_jobs=n_jobs, **_trees(p)
                ),
            },
            encoder="ordinal",
            rung_param="n_estimators",
            onnx_converter=forest_onnx,
            tree=True,
        ),
        Family(
            "extra_trees",
            {
                "classification": _extra_trees,
                "regression": lambda p, seed, n_jobs: ExtraTreesRegressor(
                    random_state=seed, n_jobs=n_jobs, **_trees(p)
                ),
            },
            encoder="ordinal",
            rung_param="n_estimators",
            onnx_converter=forest_onnx,
            tree=True,
        ),
        Family(
            "hist_gradient_boosting",
            {
                "classification": _hist_gradient_boosting,
                "regression": lambda p, seed, n_jobs: HistGradientBoostingRegressor(
                    random_state=seed, **_hgb(p)
                ),
            },
            encoder="ordinal",
            rung_param="max_iter",
            onnx_converter=hist_gradient_boosting_onnx,
            tree=True,
        ),
        Family(
            "lightgbm",
            {"classification": _lightgbm, "regression": _lightgbm_regressor},
            encoder="ordinal",
            native_categorical="categorical_column",
            booster=LightGBMRounds(),
            onnx_converter=lightgbm_onnx,
            tree=True,
        ),
        Family(
            "xgboost",
            {"classification": _xgboost, "regression": _xgboost_regressor},
            encoder="ordinal",
            booster=XGBoostRounds(),
            onnx_converter=xgboost_onnx,
            tree=True,
        ),
        Family(
            "catboost",
            {"classification": _catboost, "regression": _catboost_regressor},
            encoder="ordinal",
            booster=CatBoostRounds(),
            onnx_converter=catboost_onnx,
            tree=True,
        ),
        Family(
            "mlp",
            {"classification": _mlp, "regression": _mlp_regressor},
            rung_param="max_epochs",
            onnx_converter=mlp_onnx,
        ),
    )
}


def known_family(name: str) -> str:
    """``name`` when it is a family of :data:`FAMILY_TABLE` (the config's validator)."""
    if name not in FAMILY_TABLE:
        raise ValueError(f"unknown model family {name!r}; choose from {list(FAMILY_TABLE)}")
    return name


#: A family name of :data:`FAMILY_TABLE`, as config fields declare it.
FamilyName = Annotated[str, AfterValidator(known_family)]


def task_families(task: str) -> tuple[str, ...]:
    """The families that can do ``task``, in table order."""
    return tuple(f.name for f in FAMILY_TABLE.values() if task in f.builders)


FAMILIES: dict[str, Builder] = {
    f.name: f.builders["classification"]
    for f in FAMILY_TABLE.values()
    if "classification" in f.builders
}
REGRESSION_FAMILIES: dict[str, Builder] = {
    f.name: f.builders["regression"] for f in FAMILY_TABLE.values() if "regression" in f.builders
}


def build_estimator(
    family: str,
    params: dict[str, Any],
    *,
    seed: int,
    n_jobs: int = 1,
    task: str,
    categorical: list[int] | None = None,
) -> BaseEstimator:
    """An unfitted estimator of ``family`` for ``task`` with ``params`` (errors name the bad
    key). ``categorical``: positions of ordinal-encoded categoricals, for families that split
    them natively."""
    info = FAMILY_TABLE.get(family)
    if info is None or task not in info.builders:
        raise ValueError(
            f"unknown {task} model family '{family}'; known: {sorted(task_families(task))}"
        )
    try:
        estimator = info.builders[task](params, seed, n_jobs)
    except TypeError as exc:
        raise ValueError(f"{family}: invalid hyperparameter in {params}: {exc}") from exc
    if categorical and info.native_categorical:
        estimator.set_params(**{info.native_categorical: list(categorical)})
    return estimator


def effective_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the family's estimator takes them: the sampler's floats that the builder
    casts to ints (``num_leaves`` 21.33 fits as 21) read back as those ints, for the logs, the
    leaderboard and MLflow's params. Anything else, and a family honing does not build from
    this table (ensembles), is returned as given."""
    info = FAMILY_TABLE.get(family)
    if info is None:
        return dict(params)
    try:
        taken = next(iter(info.builders.values()))(dict(params), 0, 1).get_params()
    except Exception:  # noqa: BLE001 - a display must not fail a run; the fit says why
        return dict(params)
    out = dict(params)
    for key, value in params.items():
        held = taken.get(key)
        if isinstance(value, float) and isinstance(held, int) and not isinstance(held, bool):
            out[key] = held
    return out
