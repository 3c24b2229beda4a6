"""Known-good starting points and default search spaces, per family.

The search does not start from random points: it first runs a short portfolio of
configurations that do well across public tables (in the manner of FLAML's zero-shot
``flaml.default`` and AutoGluon's presets), cheapest and most robust first, interleaved across
families so that a short budget still sees every family once. TPE then searches from there.

The spaces reach thousands of boosting rounds, learning rates up to 1 and thousands of leaves;
the search stays cost-frugal all the same: the portfolio's cheap points run first, early
stopping and the trials' deadlines bound what a costly point spends, and the family scheduler
(:mod:`honing.search.tpe`) shares time by score. ``honing init`` writes :data:`SPACES` into new
configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from honing.config import SearchConfig

#: Default search space per family (the config's distribution syntax). Shared by both tasks;
#: ``logistic_regression`` and ``linear`` are the classification and regression linear models.
SPACES: dict[str, dict[str, Any]] = {
    # rounds are an upper bound (early stopping picks the count, a deadline may cut it): wide
    # enough for thousands of small trees at a high rate, or a few large ones at a low rate
    "lightgbm": {
        "n_estimators": {"loguniform": [16, 10000]},
        "learning_rate": {"loguniform": [0.005, 1.0]},
        "num_leaves": {"loguniform": [4, 4096]},
        "min_child_samples": {"loguniform": [2, 128]},
        "colsample_bytree": {"uniform": [0.3, 1.0]},
        "reg_alpha": {"loguniform": [0.001, 100.0]},
        "reg_lambda": {"loguniform": [0.001, 1000.0]},
    },
    "xgboost": {
        "n_estimators": {"loguniform": [16, 10000]},
        "learning_rate": {"loguniform": [0.005, 1.0]},
        "max_depth": {"randint": [2, 12]},
        "min_child_weight": {"loguniform": [0.01, 128.0]},
        "subsample": {"uniform": [0.5, 1.0]},
        "colsample_bytree": {"uniform": [0.3, 1.0]},
        "reg_alpha": {"loguniform": [0.001, 100.0]},
        "reg_lambda": {"loguniform": [0.001, 1000.0]},
    },
    "catboost": {
        "n_estimators": {"loguniform": [16, 10000]},
        "learning_rate": {"loguniform": [0.005, 0.5]},
        "depth": {"randint": [3, 10]},
        "l2_leaf_reg": {"loguniform": [0.5, 30.0]},
    },
    "extra_trees": {
        "n_estimators": 300,
        "max_features": {"uniform": [0.2, 1.0]},
        "min_samples_leaf": {"randint": [1, 10]},
    },
    "random_forest": {
        "n_estimators": 300,
        "max_features": {"uniform": [0.1, 1.0]},
        "min_samples_leaf": {"randint": [1, 10]},
    },
    "logistic_regression": {"C": {"loguniform": [0.001, 100.0]}},
    "linear": {"alpha": {"loguniform": [0.0001, 100.0]}},
}

#: Families a budget-driven config searches, per task.
DEFAULT_FAMILIES = {
    "classification": (
        "lightgbm",
        "catboost",
        "xgboost",
        "extra_trees",
        "random_forest",
        "logistic_regression",
    ),
    "regression": ("lightgbm", "catboost", "xgboost", "extra_trees", "random_forest", "linear"),
}

#: The portfolio, in the order it runs. Each entry: (family, params).
PORTFOLIO: tuple[tuple[str, dict[str, Any]], ...] = (
    # the library's own defaults, with room to grow: cheap, and a model within seconds
    ("lightgbm", {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 31,
                  "min_child_samples": 20, "colsample_bytree": 0.9, "reg_lambda": 0.001}),
    # symmetric trees, often the best single model (regression above all), at twice
    # AutoGluon's default rate: about half the rounds, for short budgets
    ("catboost", {"n_estimators": 3000, "learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0}),
    ("xgboost", {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6,
                 "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.8,
                 "reg_lambda": 1.0}),
    ("extra_trees", {"max_features": 0.5, "min_samples_leaf": 1}),
    ("logistic_regression", {"C": 1.0}),
    ("linear", {"alpha": 1.0}),
    # small, heavily regularized boosting: small or noisy tables
    ("lightgbm", {"n_estimators": 500, "learning_rate": 0.02, "num_leaves": 8,
                  "min_child_samples": 10, "colsample_bytree": 0.7, "reg_lambda": 5.0}),
    ("random_forest", {"max_features": 0.3, "min_samples_leaf": 1}),
    ("xgboost", {"n_estimators": 400, "learning_rate": 0.03, "max_depth": 3,
                 "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.6,
                 "reg_lambda": 5.0}),
    # many shallow trees at a high rate: near-additive targets, common in regression
    ("lightgbm", {"n_estimators": 4000, "learning_rate": 0.3, "num_leaves": 4,
                  "min_child_samples": 10, "colsample_bytree": 0.8, "reg_lambda": 1.0}),
    # large leaves, column sampling: bigger tables with interactions
    ("lightgbm", {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 128,
                  "min_child_samples": 3, "colsample_bytree": 0.5, "reg_lambda": 1.0}),
    ("extra_trees", {"max_features": 1.0, "min_samples_leaf": 2}),
    ("logistic_regression", {"C": 0.05}),
    ("linear", {"alpha": 20.0}),
)  # fmt: skip


def in_space(spec: Any, value: Any) -> bool:
    """Whether ``value`` lies in the distribution ``spec`` (a constant matches itself)."""
    if not isinstance(spec, Mapping):
        return spec == value
    kind, args = next(iter(spec.items()))
    if kind in ("choice", "grid"):
        return value in args
    return args[0] <= value <= (args[1] + 1 if kind == "randint" else args[1])


def middle(spec: Mapping[str, Any]) -> Any:
    kind, args = next(iter(spec.items()))
    if kind in ("choice", "grid"):
        return args[0]
    if kind == "loguniform":
        return float((args[0] * args[1]) ** 0.5)
    if kind == "randint":
        return int((args[0] + args[1]) // 2)
    return (args[0] + args[1]) / 2


def points(cfg: SearchConfig, *, family_key: str, sep: str) -> list[dict[str, Any]]:
    """The portfolio entries of the configured families, as complete flat search-space
    points (``family``, ``family__param``, ``features__option``; Tune's warm start needs a
    value for every dimension: those an entry leaves open take the middle of their range).
    An entry with a value outside the configured space is dropped."""
    dims = {
        f"{family}{sep}{k}": spec
        for family, space in cfg.families.items()
        for k, spec in space.items()
        if isinstance(spec, Mapping)
    }
    dims.update({f"features{sep}{k}": v for k, v in cfg.features.items() if isinstance(v, Mapping)})
    out = []
    for family, params in PORTFOLIO:
        space = cfg.families.get(family)
        if space is None:
            continue
        if not all(in_space(space[k], v) for k, v in params.items() if k in space):
            continue
        point: dict[str, Any] = {family_key: family}
        point.update({key: middle(spec) for key, spec in dims.items()})
        point.update({f"{family}{sep}{k}": v for k, v in params.items() if k in space})
        out.append({k: v for k, v in point.items() if k == family_key or k in dims})
    return out


def default_families(task: str) -> dict[str, dict[str, Any]]:
    """The families and spaces a budget-driven config searches for ``task``."""
    return {f: SPACES[f] for f in DEFAULT_FAMILIES[task]}
