"""Search, training and evaluation tasks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger

from honing import evaluation, planner, search, slices, summary, training
from honing.compression import CompressionResult, n_parameters
from honing.config import PipelineConfig, RaySettings, SearchConfig, SliceGateConfig
from honing.data import CleaningReport
from honing.decision import DecisionFit, DecisionRule, fit_decision
from honing.ensembles import EnsembleDecision
from honing.explain import Importance
from honing.lineage import Lineage
from honing.nested import NestedCVResult
from honing.registry import RegistrationResult, ServedRegistration
from honing.unchanged import UnchangedVersion
from honing_flows.tasks import compute_task, logged


@compute_task
def plan_budget(
    budget_s: float | None, elapsed_s: float, compression: bool, search_cap_s: float | None
) -> planner.BudgetPlan:
    return logged(
        planner.plan(
            budget_s, elapsed_s=elapsed_s, compression=compression, search_cap_s=search_cap_s
        )
    )


@compute_task
def refit_budget(budget_s: float | None, left_s: float | None, compression: bool) -> float | None:
    return planner.refit_budget(budget_s, left_s, compression=compression)


@compute_task
def trim_to_budget(
    budget_s: float | None,
    left_s: float | None,
    predict_s: float,
    columns: int,
    techniques: tuple[str, ...],
    compression: bool,
    model: Any,
) -> planner.Trims:
    return logged(
        planner.trim(
            budget_s,
            left_s,
            predict_s=predict_s,
            columns=columns,
            techniques=techniques,
            compression=compression,
            model_size=n_parameters(model) or 0,
        )
    )


@compute_task
def training_setup(cfg: PipelineConfig, X_train: pd.DataFrame) -> training.TrainingSetup:
    return training.training_setup(cfg, X_train)


@compute_task
def run_search(
    X: pd.DataFrame,
    y: np.ndarray,
    cfg: SearchConfig,
    setup: training.TrainingSetup,
    ray_settings: RaySettings,
    experiment_name: str,
) -> search.SearchResult:
    return logged(
        search.run_search(
            X,
            y,
            cfg=cfg,
            setup=setup,
            ray_settings=ray_settings,
            experiment_name=experiment_name,
            progress=get_run_logger().info,
        )
    )


@compute_task
def train_model(
    X: pd.DataFrame, y: np.ndarray, spec: training.ModelSpec, setup: training.TrainingSetup
) -> training.TrainResult:
    return training.train_model(X, y, spec, setup)


@compute_task
def tune_decision(
    y_train: np.ndarray, choice: EnsembleDecision, classes: list, cfg: PipelineConfig
) -> DecisionFit:
    return logged(
        fit_decision(
            y_train,
            choice.oof,
            classes,
            cfg.decision,
            metric=cfg.search.metric,
            seed=cfg.search.seed,
            rows=choice.oof_rows,
        )
    )


@compute_task
def evaluate(
    model: Any, X: pd.DataFrame, y: np.ndarray, classes: list, rule: DecisionRule
) -> evaluation.EvaluationReport:
    return evaluation.evaluate(model, X, y, classes, rule)


@compute_task
def evaluate_slices(
    model: Any,
    rule: DecisionRule,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: list,
    cfg: PipelineConfig,
) -> slices.SliceReport | None:
    return logged(
        slices.evaluate_slices(
            model, rule, X, y, classes, cfg.evaluation, metric=cfg.registry.metric, task=cfg.task
        )
    )


@compute_task
def quality_gate(
    report: evaluation.EvaluationReport,
    thresholds: dict[str, float],
    slice_report: slices.SliceReport | None,
    slice_gate: SliceGateConfig,
) -> None:
    evaluation.gate(report, thresholds, slice_report, slice_gate)


@compute_task
def plot_figures(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    report: evaluation.EvaluationReport,
    fit: DecisionFit,
) -> dict[str, Any]:
    return evaluation.plot_figures(model, X, y, report, fit)


@compute_task
def summarize(
    run: summary.RunRef,
    task: str,
    time_budget_s: float | None,
    search: search.SearchResult,
    choice: EnsembleDecision,
    nested: NestedCVResult | None,
    evaluation: evaluation.EvaluationReport,
    importances: list[Importance],
    registration: RegistrationResult,
    compressed: CompressionResult | None,
    served: ServedRegistration | None,
    lineage: Lineage,
    cleaning: CleaningReport,
    timings: dict[str, float],
    trims: planner.Trims,
    decision: DecisionFit,
) -> summary.TrainingSummary:
    return logged(
        summary.summarize(
            run=run,
            task=task,
            time_budget_s=time_budget_s,
            search=search,
            choice=choice,
            nested=nested,
            evaluation=evaluation,
            importances=importances,
            registration=registration,
            compressed=compressed,
            served=served,
            lineage=lineage,
            cleaning=cleaning,
            timings=timings,
            trims=trims,
            decision=decision,
        )
    )


@compute_task
def summarize_unchanged(
    run: summary.RunRef,
    task: str,
    time_budget_s: float | None,
    same: UnchangedVersion,
    metric: str,
    lineage: Lineage,
    timings: dict[str, float],
) -> summary.TrainingSummary:
    return logged(
        summary.unchanged(
            run=run,
            task=task,
            time_budget_s=time_budget_s,
            same=same,
            metric=metric,
            lineage=lineage,
            timings=timings,
        )
    )
