"""Choosing the model after the search: ensembles from the trials, and nested CV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from honing import ensembles, nested
from honing.config import EnsembleConfig, RaySettings, SearchConfig
from honing.search import SearchResult, TrialResult
from honing.training import ModelSpec, TrainingSetup
from honing_flows.tasks import compute_task, logged


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
