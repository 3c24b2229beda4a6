"""Search, training and evaluation tasks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from honing import evaluation, search, training
from honing.config import FeaturesConfig, RaySettings, SearchConfig
from honing.features import FeatureColumns
from tasks import compute_task


@compute_task
def run_search(
    X: pd.DataFrame,
    y: np.ndarray,
    cfg: SearchConfig,
    columns: FeatureColumns,
    features: FeaturesConfig,
    ray_settings: RaySettings,
    experiment_name: str,
    task: str = "classification",
) -> search.SearchResult:
    return search.run_search(
        X,
        y,
        cfg=cfg,
        columns=columns,
        features=features,
        ray_settings=ray_settings,
        experiment_name=experiment_name,
        task=task,
    )


@compute_task
def train_model(
    X: pd.DataFrame,
    y: np.ndarray,
    spec: training.ModelSpec,
    columns: FeatureColumns,
    features: FeaturesConfig,
    seed: int,
    metric: str,
    task: str = "classification",
) -> training.TrainResult:
    return training.train_model(
        X,
        y,
        spec,
        columns=columns,
        features=features,
        seed=seed,
        metric=metric,
        cv_folds=None,
        refit=True,
        task=task,
    )


@compute_task
def evaluate(
    model: Any, X: pd.DataFrame, y: np.ndarray, classes: list
) -> evaluation.EvaluationReport:
    return evaluation.evaluate(model, X, y, classes)


@compute_task
def quality_gate(report: evaluation.EvaluationReport, thresholds: dict[str, float]) -> None:
    evaluation.gate(report, thresholds)


@compute_task
def plot_figures(
    model: Any, X: pd.DataFrame, y: np.ndarray, report: evaluation.EvaluationReport
) -> dict[str, Any]:
    return evaluation.plot_figures(model, X, y, report)
