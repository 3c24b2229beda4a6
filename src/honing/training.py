"""``train_model``: the one training function. The Ray Tune trainable and the training task both
call it, so a trial's score and the refit model come from the same code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from honing.config import FeaturesConfig
from honing.features import FeatureColumns, build_preprocessor
from honing.models import build_estimator, build_pipeline

SCORERS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "roc_auc": "roc_auc",
    "average_precision": "average_precision",
}


@dataclass(frozen=True)
class ModelSpec:
    """A point of the search space: a model family and its hyperparameters."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        shown = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(self.params.items())
        )
        return f"{self.family}({shown})"


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


def make_model(
    spec: ModelSpec,
    columns: FeatureColumns,
    features: FeaturesConfig,
    *,
    seed: int,
    n_jobs: int = 1,
) -> Pipeline:
    """The unfitted pipeline (features + estimator) for ``spec``."""
    return build_pipeline(
        build_preprocessor(columns, features),
        build_estimator(spec.family, spec.params, seed=seed, n_jobs=n_jobs),
    )


def cross_validate_model(
    model: Pipeline, X: pd.DataFrame, y: np.ndarray, *, folds: int, metric: str, seed: int
) -> CVResult:
    """Stratified k-fold CV score of ``model`` (cloned per fold; ``model`` is left unfitted)."""
    scorer = get_scorer(SCORERS[metric])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: list[float] = []
    start = time.perf_counter()
    for train_idx, valid_idx in splitter.split(X, y):
        fold_model = clone(model).fit(X.iloc[train_idx], y[train_idx])
        scores.append(float(scorer(fold_model, X.iloc[valid_idx], y[valid_idx])))
    return CVResult(metric=metric, fold_scores=scores, fit_seconds=time.perf_counter() - start)


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
) -> TrainResult:
    """Cross-validate ``spec`` on (X, y) when ``cv_folds`` is set, and fit it on all of (X, y)
    when ``refit`` is set. Search trials use ``cv_folds=k, refit=False``; the final model uses
    ``refit=True``."""
    model = make_model(spec, columns, features, seed=seed, n_jobs=n_jobs)
    cv = (
        cross_validate_model(model, X, y, folds=cv_folds, metric=metric, seed=seed)
        if cv_folds
        else None
    )
    fitted = model.fit(X, y) if refit else None
    return TrainResult(spec=spec, model=fitted, cv=cv)
