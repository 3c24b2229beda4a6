"""``train_model``: the one training function. The Ray Tune trainable and the training task both
call it, so a trial's score and the refit model come from the same code."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from honing.config import FeaturesConfig
from honing.features import FeatureColumns, build_preprocessor, build_reducers, resample
from honing.models import ITERATIVE, build_estimator

SCORERS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "average_precision": "average_precision",
    # scikit-learn scorers are greater-is-better: errors come negated, see metric_value()
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
}


def metric_value(metric: str, score: float) -> float:
    """A CV score (scikit-learn's greater-is-better convention) in the metric's own units."""
    return -score if SCORERS[metric].startswith("neg_") else score


@dataclass(frozen=True)
class ModelSpec:
    """A point of the search space: a model family, its hyperparameters, and the feature
    options (overrides of :class:`FeaturesConfig`) searched with it."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        def show(items: dict[str, Any]) -> str:
            return ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in sorted(items.items())
            )

        extra = f" + features({show(self.features)})" if self.features else ""
        return f"{self.family}({show(self.params)}){extra}"


@dataclass(frozen=True)
class CVResult:
    metric: str
    fold_scores: list[float]
    fit_seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))


@dataclass
class TrainResult:
    spec: ModelSpec
    model: Pipeline | None
    cv: CVResult | None


def effective_features(spec: ModelSpec, features: FeaturesConfig) -> FeaturesConfig:
    """The feature config for ``spec``: the pipeline config with the trial's overrides,
    validated (a bad searched value is an error naming the option)."""
    if not spec.features:
        return features
    return FeaturesConfig.model_validate({**features.model_dump(), **spec.features})


ENSEMBLES = ("soft_voting", "stacking")


def make_model(
    spec: ModelSpec,
    columns: FeatureColumns,
    features: FeaturesConfig,
    *,
    seed: int,
    n_jobs: int = 1,
    task: str = "classification",
) -> Pipeline:
    """The unfitted pipeline for ``spec``: encoding, optional selection and PCA, estimator.

    An ensemble spec (family ``soft_voting`` or ``stacking``, ``params["members"]`` a list of
    member specs as dicts) gives a pipeline around a voting or stacking classifier whose
    members are full pipelines, each with its own feature options."""
    if spec.family in ENSEMBLES:
        return Pipeline(
            [("model", _ensemble(spec, columns, features, seed=seed, n_jobs=n_jobs, task=task))]
        )
    cfg = effective_features(spec, features)
    return Pipeline(
        [
            ("features", build_preprocessor(columns, cfg)),
            *build_reducers(cfg, seed=seed, task=task),
            (
                "model",
                build_estimator(spec.family, spec.params, seed=seed, n_jobs=n_jobs, task=task),
            ),
        ]
    )


def _ensemble(
    spec: ModelSpec,
    columns: FeatureColumns,
    features: FeaturesConfig,
    *,
    seed: int,
    n_jobs: int,
    task: str,
) -> Any:
    from sklearn.ensemble import (
        StackingClassifier,
        StackingRegressor,
        VotingClassifier,
        VotingRegressor,
    )
    from sklearn.linear_model import LogisticRegression, RidgeCV

    members = [ModelSpec(**m) for m in spec.params["members"]]
    estimators = [
        (f"m{i}_{m.family}", make_model(m, columns, features, seed=seed, n_jobs=n_jobs, task=task))
        for i, m in enumerate(members)
    ]
    if task == "regression":  # soft voting of regressors: the mean prediction
        if spec.family == "soft_voting":
            return VotingRegressor(estimators)
        return StackingRegressor(estimators, final_estimator=RidgeCV(), cv=3)
    if spec.family == "soft_voting":
        return VotingClassifier(estimators, voting="soft")
    return StackingClassifier(
        estimators,
        final_estimator=LogisticRegression(max_iter=2000),
        cv=3,  # an int, not a splitter object: skops stores it without a trusted type
        stack_method="predict_proba",
    )


StepCallback = Callable[[int, list[float], float], None]


def _rungs(model: Pipeline, rungs: int) -> tuple[str, list[int]] | None:
    """(parameter, cumulative budgets) that cut an iterative estimator's budget into
    ``rungs`` steps; None for estimators trained in one go."""
    estimator = model.steps[-1][1]
    name = {
        "TorchMLPClassifier": ITERATIVE["mlp"],
        "TorchMLPRegressor": ITERATIVE["mlp"],
        "HistGradientBoostingClassifier": ITERATIVE["hist_gradient_boosting"],
        "HistGradientBoostingRegressor": ITERATIVE["hist_gradient_boosting"],
    }.get(type(estimator).__name__)
    if name is None or rungs <= 1:
        return None
    total = int(estimator.get_params()[name])
    budgets = sorted({max(1, round(total * (i + 1) / rungs)) for i in range(rungs)})
    return name, budgets


def cross_validate_model(
    model: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    metric: str,
    seed: int,
    sampling: str = "none",
    rungs: int = 1,
    on_step: StepCallback | None = None,
) -> CVResult:
    """Stratified k-fold CV score of ``model`` (cloned per fold; ``model`` is left unfitted).

    ``sampling`` rebalances each fold's training rows only. With ``rungs > 1`` an iterative
    estimator (MLP epochs, boosting iterations) is trained in that many growing steps, warm
    started, and ``on_step(rung, fold scores, seconds so far)`` is called after each: the hook
    through which a Ray Tune scheduler stops unpromising trials early."""
    scorer = get_scorer(SCORERS[metric])
    if is_classifier(model):
        splitter: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(X, y))
    start = time.perf_counter()
    fold_data = []
    for train_idx, valid_idx in splits:
        X_fit, y_fit = resample(X.iloc[train_idx], y[train_idx], sampling, seed=seed)
        fold_data.append((X_fit, y_fit, X.iloc[valid_idx], y[valid_idx]))
    ladder = _rungs(model, rungs)
    if ladder is None:
        scores = []
        for X_fit, y_fit, X_val, y_val in fold_data:
            fold_model = clone(model).fit(X_fit, y_fit)
            scores.append(float(scorer(fold_model, X_val, y_val)))
        if on_step is not None:  # trained with its whole budget: the last rung
            on_step(max(rungs, 1), scores, time.perf_counter() - start)
        return CVResult(metric, scores, time.perf_counter() - start)
    name, budgets = ladder
    # features are fitted once per fold; only the estimator grows from rung to rung
    folds_ready = []
    for X_fit, y_fit, X_val, y_val in fold_data:
        features = Pipeline(clone(model).steps[:-1]).fit(X_fit, y_fit)
        estimator = clone(model.steps[-1][1]).set_params(warm_start=True)
        folds_ready.append((features, estimator, features.transform(X_fit), y_fit, X_val, y_val))
    done = 0
    scores = []
    for rung, budget in enumerate(budgets, start=1):
        scores = []
        for features, estimator, Z_fit, y_fit, X_val, y_val in folds_ready:
            # MLP: each fit adds max_epochs epochs; boosting: max_iter is the running total
            step = budget - done if name == "max_epochs" else budget
            estimator.set_params(**{name: step}).fit(Z_fit, y_fit)
            fitted = Pipeline([*features.steps, ("model", estimator)])
            scores.append(float(scorer(fitted, X_val, y_val)))
        done = budget
        if on_step is not None:
            on_step(rung, scores, time.perf_counter() - start)
    return CVResult(metric, scores, time.perf_counter() - start)


def train_model(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: ModelSpec,
    *,
    columns: FeatureColumns,
    features: FeaturesConfig,
    seed: int,
    metric: str = "roc_auc",
    cv_folds: int | None = None,
    refit: bool = True,
    n_jobs: int = 1,
    rungs: int = 1,
    on_step: StepCallback | None = None,
    task: str = "classification",
) -> TrainResult:
    """Cross-validate ``spec`` on (X, y) when ``cv_folds`` is set, and fit it on all of (X, y)
    when ``refit`` is set. Search trials use ``cv_folds=k, refit=False`` (and ``rungs`` /
    ``on_step`` under a scheduler); the final model uses ``refit=True``."""
    model = make_model(spec, columns, features, seed=seed, n_jobs=n_jobs, task=task)
    sampling = effective_features(spec, features).sampling
    if task == "regression" and sampling != "none":
        raise ValueError(f"sampling={sampling!r}: class rebalancing applies to classification")
    cv = (
        cross_validate_model(
            model,
            X,
            y,
            folds=cv_folds,
            metric=metric,
            seed=seed,
            sampling=sampling,
            rungs=rungs,
            on_step=on_step,
        )
        if cv_folds
        else None
    )
    fitted = None
    if refit:
        X_fit, y_fit = resample(X, y, sampling, seed=seed)
        fitted = model.fit(X_fit, y_fit)
    return TrainResult(spec=spec, model=fitted, cv=cv)
