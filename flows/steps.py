"""The steps of the training and reproduce flows: each a short composition of tasks."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from honing import summary, validation
from honing.compression import CompressionResult
from honing.config import EnvSettings, PipelineConfig
from honing.data import CleaningReport, Split
from honing.decision import DecisionFit
from honing.ensembles import EnsembleDecision
from honing.evaluation import EvaluationReport
from honing.explain import Importance
from honing.infra import check_for
from honing.lineage import Lineage
from honing.nested import NestedCVResult
from honing.planner import BudgetPlan, StageClock, Trims, search_config
from honing.registry import RegistrationResult, ServedRegistration
from honing.search import SearchResult
from honing.slices import SliceReport
from honing.training import TrainingSetup, TrainResult
from honing_flows.tasks import compress as compress_tasks
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import explain as explain_tasks
from honing_flows.tasks import registry as registry_tasks
from honing_flows.tasks import selection as selection_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import tracking as tracking_tasks
from honing_flows.tasks import train as train_tasks


class Fitted(NamedTuple):
    cleaning: CleaningReport
    split: Split
    classes: list
    search: SearchResult
    trained: TrainResult
    evaluation: EvaluationReport
    setup: TrainingSetup
    choice: EnsembleDecision
    decision: DecisionFit
    slices: SliceReport | None
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
        cfg.split.time_column,
    )
    setup = train_tasks.training_setup(cfg, split.X_train)
    budget = train_tasks.plan_budget(
        cfg.time_budget_s, clock.elapsed(), cfg.compression.enabled, cfg.search.time_budget_s
    )
    search_cfg = search_config(cfg.search, budget)
    with clock.stage("search"):
        result = train_tasks.run_search(
            split.X_train,
            split.y_train,
            search_cfg,
            setup,
            settings.ray,
            search_name,
        )
    refit_s = train_tasks.refit_budget(cfg.time_budget_s, clock.left(), cfg.compression.enabled)
    with clock.stage("ensemble"):
        selection, scored, notes = None, [], []
        ensembles = cfg.search.ensemble
        if ensembles.enabled and ensembles.selection:
            selection = selection_tasks.select_ensemble(result, split.y_train, refit_s)
        if ensembles.enabled and ensembles.methods:
            specs = selection_tasks.ensemble_specs(result, ensembles)
            specs, notes = selection_tasks.affordable_ensembles(specs, result, refit_s)
            scored = selection_tasks.score_ensembles(split.X_train, split.y_train, specs, setup)
        choice = selection_tasks.choose_model(
            result.best, scored, notes, selection, cfg.search.metric
        )
    nested = None
    if cfg.search.nested_cv.enabled:
        with clock.stage("nested_cv"):
            nested = selection_tasks.nested_cv(
                split.X_train,
                split.y_train,
                search_cfg,
                setup,
                settings.ray,
                search_name,
            )
    with clock.stage("refit"):
        trained = train_tasks.train_model(split.X_train, split.y_train, choice.spec, setup)
        # calibration and threshold from the chosen model's out-of-fold predictions
        decision = train_tasks.tune_decision(split.y_train, choice, classes, cfg)
    with clock.stage("evaluation"):
        evaluation = train_tasks.evaluate(
            trained.model, split.X_test, split.y_test, classes, decision.rule
        )
        slice_report = train_tasks.evaluate_slices(
            trained.model, decision.rule, split.X_test, split.y_test, classes, cfg
        )
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
        cleaning=cleaning,
        split=split,
        classes=classes,
        search=result,
        trained=trained,
        evaluation=evaluation,
        setup=setup,
        choice=choice,
        decision=decision,
        slices=slice_report,
        nested=nested,
        budget=budget,
        trims=trims,
    )


def validate_and_version(
    *, cfg: PipelineConfig, run_id: str, repo: str, config_path: str, flow_run_id: str
) -> tuple[pd.DataFrame, Lineage]:
    """Load the table, record its lineage (data MD5, commit, config hash) on the run, validate
    it against the suite and the quality rules, log the report, then gate on it."""
    raw = data_tasks.load_table(cfg.data.path, cfg.data.format)
    data_md5 = data_tasks.file_md5(cfg.data.path)
    lineage = setup_tasks.build_lineage(
        cfg.data.path, data_md5, repo, cfg.content_hash, config_path, flow_run_id
    )
    tracking_tasks.set_tags(run_id, lineage.tags())
    tracking_tasks.log_dataset(run_id, raw, lineage.data_path, cfg.name, data_md5)
    tracking_tasks.log_config(run_id, cfg, repo)
    suite = data_tasks.load_suite(cfg.validation.suite)
    report = data_tasks.validate_data(
        raw, suite, str(cfg.data.path), validation.QualityRules.from_config(cfg)
    )
    tracking_tasks.log_json(run_id, report.to_dict(), "validation/report.json", repo)
    data_tasks.validation_gate(report)
    return raw, lineage


def log_fit(*, cfg: PipelineConfig, run_id: str, experiment_id: str, fitted: Fitted) -> None:
    """The rows, the trials (nested runs), the search's params and CV scores, the model
    choice, nested CV and the test evaluation, on the training run."""
    split, search, choice = fitted.split, fitted.search, fitted.choice
    tracking_tasks.log_trials(run_id, experiment_id, search)
    tracking_tasks.log_params(
        run_id,
        summary.search_params(
            search, choice, algorithm=cfg.search.algorithm, scheduler=cfg.search.scheduler.kind
        ),
    )
    tracking_tasks.log_metrics(
        run_id,
        summary.data_metrics(fitted.cleaning, len(split.X_train), len(split.X_test))
        | summary.search_metrics(search, choice, fitted.nested)
        | {f"test_{k}": v for k, v in fitted.evaluation.metrics.items()}
        | {f"test_{k}_at_default": v for k, v in fitted.evaluation.at_default.items()}
        | summary.decision_metrics(fitted.decision),
    )
    tracking_tasks.log_json(run_id, choice.to_dict(), "search/model_choice.json")
    tracking_tasks.log_json(run_id, fitted.decision.to_dict(), "evaluation/decision.json")
    if fitted.slices is not None:
        tracking_tasks.log_slices(run_id, fitted.slices)
    if fitted.nested is not None:
        tracking_tasks.log_json(run_id, fitted.nested.to_dict(), "search/nested_cv.json")
    tracking_tasks.log_json(run_id, fitted.evaluation.to_dict(), "evaluation/report.json")


def explain_and_log(*, cfg: PipelineConfig, run_id: str, fitted: Fitted) -> list[Importance]:
    """Evaluation plots, permutation importance and SHAP (as trimmed to the budget)."""
    split, model = fitted.split, fitted.trained.model
    figures = train_tasks.plot_figures(
        model, split.X_test, split.y_test, fitted.evaluation, fitted.decision
    )
    importances, notes = explain_tasks.explain_model(
        model,
        split.X_test,
        split.y_test,
        cfg.search.metric,
        cfg.search.seed,
        fitted.trims.permutation_repeats,
        fitted.trims.shap_rows,
    )
    for imp in importances:
        figures[f"importance_{imp.method}.png"] = explain_tasks.plot_importance(imp)
    tracking_tasks.log_figures(run_id, figures)
    tracking_tasks.log_json(
        run_id,
        {"importances": [imp.to_dict() for imp in importances], "notes": notes},
        "explain/importances.json",
    )
    return importances


def compress_and_log(
    *, cfg: PipelineConfig, run_id: str, fitted: Fitted
) -> tuple[CompressionResult | None, str | None]:
    """Compression candidates measured on the test split and the pick, logged, with the
    picked one logged as the run's served model (its URI). Nothing when disabled or trimmed."""
    compression_cfg = fitted.trims.compression_config(cfg.compression)
    if not compression_cfg.enabled:
        return None, None
    split = fitted.split
    compressed = compress_tasks.compress(
        fitted.trained.model,
        split.X_train,
        split.y_train,
        split.X_test,
        split.y_test,
        fitted.classes,
        fitted.setup.columns,
        compression_cfg,
        cfg.search.seed,
        fitted.decision.rule,
    )
    tracking_tasks.log_compression(
        run_id,
        compressed.report,
        compressed.choice,
        compress_tasks.plot_tradeoff(compressed.report),
    )
    served_uri = tracking_tasks.log_served_model(
        run_id,
        compressed.files,
        split.X_test.head(5),
        f"{cfg.name}-{compressed.choice.name}",
        compressed.report.row(compressed.choice.name).metrics,
    )
    return compressed, served_uri


def register(
    *,
    cfg: PipelineConfig,
    run_id: str,
    fitted: Fitted,
    lineage: Lineage,
    compressed: CompressionResult | None,
    served_uri: str | None,
) -> tuple[RegistrationResult, ServedRegistration | None]:
    """Log the model, score the champion on the same test split, gate, register the version
    (with the alias when promoted) and its served flavor."""
    split = fitted.split
    model_uri = tracking_tasks.log_model(
        run_id,
        fitted.trained.model,
        split.X_test.head(5),
        fitted.decision.rule,
        f"{cfg.name}-{fitted.choice.spec.family}",
        fitted.evaluation.metrics,
    )
    champion = registry_tasks.score_champion(
        cfg.registry.model_name,
        cfg.registry.champion_alias,
        split.X_test,
        split.y_test,
        fitted.classes,
    )
    decision = registry_tasks.champion_gate(
        fitted.evaluation,
        fitted.trained.model,
        fitted.decision.rule,
        split.X_test,
        split.y_test,
        champion,
        cfg.registry,
        cfg.search.seed,
        cfg.evaluation,
    )
    registration = registry_tasks.register_version(
        model_uri,
        cfg.registry.model_name,
        run_id,
        decision,
        fitted.evaluation,
        lineage,
        cfg.registry.champion_alias,
        check_for(cfg.registry.infra_check, split.X_test),
    )
    tracking_tasks.set_tags(
        run_id, {**registration.decision.tags(), "honing.registered_version": registration.version}
    )
    served = None
    if compressed is not None and served_uri is not None:
        served = registry_tasks.register_served(
            served_uri,
            registration,
            compressed.choice.name,
            compressed.choice.reason,
            cfg.registry.champion_alias,
        )
    return registration, served
