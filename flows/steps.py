"""Task compositions shared by the training and reproduce flows."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from honing.config import EnvSettings, PipelineConfig
from honing.data import CleaningReport, Split
from honing.ensembles import EnsembleDecision
from honing.evaluation import EvaluationReport
from honing.features import FeatureColumns
from honing.nested import NestedCVResult
from honing.planner import BudgetPlan, StageClock, Trims, search_config
from honing.search import SearchResult
from honing.training import TrainResult
from tasks import data as data_tasks
from tasks import search_extras as extra_tasks
from tasks import setup as setup_tasks
from tasks import train as train_tasks


class Fitted(NamedTuple):
    cleaning: CleaningReport
    split: Split
    classes: list
    search: SearchResult
    trained: TrainResult
    evaluation: EvaluationReport
    columns: FeatureColumns
    choice: EnsembleDecision
    nested: NestedCVResult | None
    budget: BudgetPlan
    trims: Trims


def connect_services(env_path: str | None) -> EnvSettings:
    """Quiet the process, load the environment profile, and point Ray and MLflow at it
    (failing early, after retries, when the tracking server is unreachable)."""
    setup_tasks.quiet_environment()
    settings = setup_tasks.load_env_settings(env_path)
    setup_tasks.ray_environment(settings.ray)
    setup_tasks.check_tracking(settings.mlflow)
    setup_tasks.configure_tracking(settings.mlflow)
    return settings


def fit_and_evaluate(
    cfg: PipelineConfig,
    raw: pd.DataFrame,
    settings: EnvSettings,
    search_name: str,
    clock: StageClock | None = None,
) -> Fitted:
    """Clean, split, search on Ray Tune within the planned share of the time budget, select
    an ensemble from the trials' out-of-fold predictions (and score stacking when
    configured), run nested CV when configured, refit the chosen model on the training
    split, evaluate. ``clock`` records the seconds of each stage."""
    clock = clock or StageClock(cfg.time_budget_s)
    cleaned, cleaning = data_tasks.clean(
        raw, cfg.data.target, cfg.cleaning.deduplicate, cfg.cleaning.drop_invalid_labels
    )
    split, classes = data_tasks.split_data(
        cleaned,
        cfg.data.target,
        cfg.data.positive_label,
        cfg.data.drop_columns,
        cfg.split.test_size,
        cfg.split.seed,
        cfg.task,
    )
    columns = data_tasks.infer_columns(split.X_train, cfg.features)
    budget = train_tasks.plan_budget(
        cfg.time_budget_s, clock.elapsed(), cfg.compression.enabled, cfg.search.time_budget_s
    )
    search_cfg = search_config(cfg.search, budget)
    with clock.stage("search"):
        result = train_tasks.run_search(
            split.X_train,
            split.y_train,
            search_cfg,
            columns,
            cfg.features,
            settings.ray,
            search_name,
            cfg.task,
        )
    refit_s = train_tasks.refit_budget(cfg.time_budget_s, clock.left(), cfg.compression.enabled)
    with clock.stage("ensemble"):
        selection, scored, notes = None, [], []
        ensembles = cfg.search.ensemble
        if ensembles.enabled and ensembles.selection:
            selection = extra_tasks.select_ensemble(result, split.y_train, refit_s)
        if ensembles.enabled and ensembles.methods:
            specs = extra_tasks.ensemble_specs(result, ensembles)
            specs, notes = extra_tasks.affordable_ensembles(specs, result, refit_s)
            scored = extra_tasks.score_ensembles(
                split.X_train,
                split.y_train,
                specs,
                columns,
                cfg.features,
                cfg.search.seed,
                cfg.search.cv_folds,
                cfg.search.metric,
                cfg.task,
            )
        choice = extra_tasks.choose_model(result.best, scored, notes, selection, cfg.search.metric)
    nested = None
    if cfg.search.nested_cv.enabled:
        with clock.stage("nested_cv"):
            nested = extra_tasks.nested_cv(
                split.X_train,
                split.y_train,
                search_cfg,
                columns,
                cfg.features,
                settings.ray,
                search_name,
                cfg.task,
            )
    with clock.stage("refit"):
        trained = train_tasks.train_model(
            split.X_train,
            split.y_train,
            choice.spec,
            columns,
            cfg.features,
            cfg.search.seed,
            cfg.search.metric,
            cfg.task,
        )
    with clock.stage("evaluation"):
        evaluation = train_tasks.evaluate(trained.model, split.X_test, split.y_test, classes)
    trims = train_tasks.trim_to_budget(
        cfg.time_budget_s,
        clock.left(),
        clock.seconds["evaluation"],  # about one prediction of the test split
        split.X_test.shape[1],
        tuple(cfg.compression.techniques),
        cfg.compression.enabled,
        trained.model,
    )
    return Fitted(
        cleaning,
        split,
        classes,
        result,
        trained,
        evaluation,
        columns,
        choice,
        nested,
        budget,
        trims,
    )
