"""Task compositions shared by the training and reproduce flows."""

from __future__ import annotations

from typing import Any, NamedTuple

from honing.config import EnvSettings, PipelineConfig
from tasks import data as data_tasks
from tasks import search_extras as extra_tasks
from tasks import setup as setup_tasks
from tasks import train as train_tasks


class Fitted(NamedTuple):
    cleaning: Any
    split: Any
    classes: list
    search: Any
    trained: Any
    evaluation: Any
    columns: Any
    choice: Any
    nested: Any


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
    cfg: PipelineConfig, raw: Any, settings: EnvSettings, search_name: str
) -> Fitted:
    """Clean, split, search on Ray Tune, try ensembles of the best trials (and nested CV when
    configured), refit the chosen model on the training split, evaluate."""
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
    result = train_tasks.run_search(
        split.X_train,
        split.y_train,
        cfg.search,
        columns,
        cfg.features,
        settings.ray,
        search_name,
        cfg.task,
    )
    scored, notes = [], []
    if cfg.search.ensemble.enabled:
        specs = extra_tasks.ensemble_specs(result, cfg.search.ensemble)
        budget = cfg.search.time_budget_s
        specs, notes = extra_tasks.affordable_ensembles(
            specs, result, None if budget is None else budget - result.wall_s
        )
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
    choice = extra_tasks.choose_model(result.best, scored, notes)
    nested = None
    if cfg.search.nested_cv.enabled:
        nested = extra_tasks.nested_cv(
            split.X_train,
            split.y_train,
            cfg.search,
            columns,
            cfg.features,
            settings.ray,
            search_name,
            cfg.task,
        )
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
    evaluation = train_tasks.evaluate(trained.model, split.X_test, split.y_test, classes)
    return Fitted(cleaning, split, classes, result, trained, evaluation, columns, choice, nested)
