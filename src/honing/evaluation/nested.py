"""Nested cross-validation: an unbiased estimate of the whole search procedure.

The search (algorithm, scheduler, CV inside) runs again on each outer fold's training rows,
its best model is refit there and scored on the held-out outer fold. The mean of those scores
estimates what the procedure delivers on new data, without the optimism of reporting the best
of many CV scores. It is reported, never used to choose the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from honing.config import RaySettings, SearchConfig
from honing.data.folds import forward_splits, group_splits
from honing.metrics import lower_is_better, metric_value, scorer
from honing.modeling.training import TrainingSetup, train_model
from honing.search import run_search


@dataclass(frozen=True)
class NestedCVResult:
    metric: str
    outer_scores: list[float]
    inner_best: list[float]
    chosen: list[str]

    @property
    def mean(self) -> float:
        return float(np.mean(self.outer_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.outer_scores))

    @property
    def optimism(self) -> float:
        """How much better the inner best CV scores look than the outer scores: the selection
        bias, in the metric's units (positive: CV was optimistic)."""
        gap = float(np.mean(self.inner_best) - self.mean)
        return -gap if lower_is_better(self.metric) else gap

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std, "optimism": self.optimism}


def nested_cv(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    setup: TrainingSetup,
    ray_settings: RaySettings,
    experiment_name: str,
) -> NestedCVResult:
    score = scorer(cfg.metric)
    if setup.forward_gap is not None:  # rows in time order: the outer folds are forward too
        outer_splits = forward_splits(
            len(y), folds=cfg.nested_cv.outer_folds, holdout=None, gap=setup.forward_gap
        )
    elif setup.groups is not None:  # a group's rows on one side of every outer fold too
        outer_splits = group_splits(
            y, setup.groups, folds=cfg.nested_cv.outer_folds, seed=cfg.seed + 1,
            holdout=None, stratify=setup.task == "classification",
        )  # fmt: skip
    else:
        splitter = StratifiedKFold if setup.task == "classification" else KFold
        outer = splitter(cfg.nested_cv.outer_folds, shuffle=True, random_state=cfg.seed + 1)
        outer_splits = list(outer.split(X, y))
    scores, inner, chosen = [], [], []
    for i, (train_idx, test_idx) in enumerate(outer_splits):
        X_in, y_in = X.iloc[train_idx].reset_index(drop=True), y[train_idx]
        inner_setup = setup.of_rows(train_idx)
        result = run_search(
            X_in,
            y_in,
            cfg=cfg,
            setup=inner_setup,
            ray_settings=ray_settings,
            experiment_name=f"{experiment_name}-outer{i}",
        )
        best = result.best
        model = train_model(
            X_in,
            y_in,
            best.spec,
            inner_setup,
        ).model
        scores.append(metric_value(cfg.metric, score(model, X.iloc[test_idx], y[test_idx])))
        inner.append(metric_value(cfg.metric, float(best.score or np.nan)))
        chosen.append(best.spec.effective().label())
    return NestedCVResult(cfg.metric, scores, inner, chosen)
