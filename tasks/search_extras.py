"""Ensembles, nested CV and explainability tasks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from honing import ensembles, explain, nested
from honing.config import EnsembleConfig, RaySettings, SearchConfig
from honing.search import SearchResult, TrialResult
from honing.training import ModelSpec, TrainingSetup
from tasks import compute_task, logged


@compute_task
def ensemble_specs(result: SearchResult, cfg: EnsembleConfig) -> list[ModelSpec]:
    return ensembles.ensemble_specs(result, cfg)


@compute_task
def affordable_ensembles(
    specs: list[ModelSpec], result: SearchResult, time_left_s: float | None
) -> tuple[list[ModelSpec], list[str]]:
    return ensembles.affordable(specs, result, time_left_s)


@compute_task
def score_ensembles(
    X: pd.DataFrame,
    y: np.ndarray,
    specs: list[ModelSpec],
    setup: TrainingSetup,
) -> list[ensembles.EnsembleScore]:
    return ensembles.score_ensembles(X, y, specs, setup)


@compute_task
def select_ensemble(
    result: SearchResult, y: np.ndarray, refit_budget_s: float | None
) -> ensembles.Selection | None:
    return ensembles.select_ensemble(result, y, refit_budget_s=refit_budget_s)


@compute_task
def choose_model(
    best: TrialResult,
    scored: list[ensembles.EnsembleScore],
    notes: list[str],
    selection: ensembles.Selection | None,
    metric: str,
) -> ensembles.EnsembleDecision:
    return logged(ensembles.choose(best, scored, notes, selection=selection, metric=metric))


@compute_task
def nested_cv(
    X: pd.DataFrame,
    y: np.ndarray,
    cfg: SearchConfig,
    setup: TrainingSetup,
    ray_settings: RaySettings,
    experiment_name: str,
) -> nested.NestedCVResult:
    return nested.nested_cv(
        X, y, cfg=cfg, setup=setup, ray_settings=ray_settings, experiment_name=experiment_name
    )


@compute_task
def explain_model(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    seed: int,
    repeats: int = 5,
    shap_rows: int = 100,
) -> tuple[list[explain.Importance], list[str]]:
    return explain.explain_model(
        model, X, y, metric=metric, seed=seed, repeats=repeats, shap_rows=shap_rows
    )


@compute_task
def plot_importance(imp: explain.Importance) -> Any:
    return explain.plot_importance(imp)
