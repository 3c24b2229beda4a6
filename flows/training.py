"""``training_pipeline``: validate, clean/split, search, refit, evaluate, gate, explain,
compress, register.

The flow only composes: each step below is a short composition of tasks (``flows.steps``),
and each task is one call into the ``honing`` library.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from honing.planner import StageClock, budget_report
from honing.registry import served_name
from honing.summary import RunRef, TrainingSummary
from honing.tracking import planned_run_name
from honing_flows.flows.steps import (
    compress_and_log,
    connect_services,
    explain_and_log,
    fit_and_evaluate,
    log_fit,
    register,
    validate_and_version,
)
from honing_flows.tasks import registry as registry_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import tracking as tracking_tasks
from honing_flows.tasks import train as train_tasks


def _run_name() -> str:
    params = flow_run.parameters
    return planned_run_name(params.get("config_path", ""), params.get("repo", "."), "train")


@flow(
    name="training_pipeline",
    flow_run_name=_run_name,
    log_prints=True,
    validate_parameters=True,
)
def training_pipeline(
    config_path: str = "configs/churn.yaml",
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    resume_search: bool = True,
    force: bool = False,
) -> TrainingSummary:
    """Train, evaluate and register a model for the pipeline config at ``config_path``."""
    cfg = setup_tasks.load_pipeline_config(config_path)
    clock = StageClock(cfg.time_budget_s)  # the whole run's budget counts from here
    settings = connect_services(env_path)
    experiment_id = setup_tasks.ensure_experiment(
        cfg.tracking.experiment, settings.mlflow.artifact_root
    )
    setup_tasks.heal_stale(
        experiment_id,
        [cfg.registry.model_name, served_name(cfg.registry.model_name)],
    )
    flow_run_id = str(flow_run.get_id() or "none")
    run_id = tracking_tasks.start_run(
        experiment_id,
        flow_run.get_name() or f"{cfg.name} train",  # the Prefect flow run's name
        {
            "honing.kind": "training",
            "honing.flow_run_id": flow_run_id,
            "honing.profile": settings.profile,
        },
    )
    try:
        # 1-2. load and version, validate: report, log, then gate
        with clock.stage("validation"):
            raw, lineage = validate_and_version(
                cfg=cfg,
                run_id=run_id,
                repo=repo,
                config_path=config_path,
                flow_run_id=flow_run_id,
            )
        # a run of the same data, config and commit as a complete version changes nothing
        same = None if force else registry_tasks.unchanged_version(cfg.registry.model_name, lineage)
        if same is not None:
            summary = train_tasks.summarize_unchanged(
                run=RunRef(run_id, experiment_id, settings.mlflow.tracking_uri),
                task=cfg.task,
                time_budget_s=cfg.time_budget_s,
                same=same,
                metric=cfg.search.metric,
                lineage=lineage,
                timings={**clock.seconds, "total": clock.elapsed()},
            )
            tracking_tasks.log_summary(run_id, summary)
            tracking_tasks.end_run(run_id, "FINISHED")
            return summary
        # 3-6. clean, split, search on Ray Tune, ensembles, refit, evaluate
        search_name = setup_tasks.search_name(cfg.name, cfg.content_hash, lineage, resume_search)
        fitted = fit_and_evaluate(cfg, raw, settings, search_name, clock)
        log_fit(cfg=cfg, run_id=run_id, experiment_id=experiment_id, fitted=fitted)
        with clock.stage("explain"):
            importances = explain_and_log(cfg=cfg, run_id=run_id, fitted=fitted)
        train_tasks.quality_gate(
            fitted.evaluation,
            cfg.evaluation.thresholds,
            fitted.slices,
            cfg.evaluation.slice_gate,
        )
        # 7. compression: candidates measured on the test split, the deployable one picked
        with clock.stage("compression"):
            compressed, served_uri = compress_and_log(cfg=cfg, run_id=run_id, fitted=fitted)
        # 8. champion/challenger gate on the same test data, then register
        with clock.stage("registration"):
            registration, served = register(
                cfg=cfg,
                run_id=run_id,
                fitted=fitted,
                lineage=lineage,
                compressed=compressed,
                served_uri=served_uri,
            )
        timings = {**clock.seconds, "ray_start": fitted.search.startup_s, "total": clock.elapsed()}
        tracking_tasks.log_metrics(run_id, {f"seconds_{k}": v for k, v in timings.items()})
        tracking_tasks.log_json(
            run_id, budget_report(fitted.budget, fitted.trims, timings), "budget.json"
        )
        summary = train_tasks.summarize(
            run=RunRef(run_id, experiment_id, settings.mlflow.tracking_uri),
            task=cfg.task,
            time_budget_s=cfg.time_budget_s,
            search=fitted.search,
            choice=fitted.choice,
            nested=fitted.nested,
            evaluation=fitted.evaluation,
            importances=importances,
            registration=registration,
            compressed=compressed,
            served=served,
            lineage=lineage,
            cleaning=fitted.cleaning,
            timings=timings,
            trims=fitted.trims,
            decision=fitted.decision,
        )
        tracking_tasks.log_summary(run_id, summary)
        tracking_tasks.publish_summary(summary)
    except BaseException:
        tracking_tasks.end_run(run_id, "FAILED")
        raise
    tracking_tasks.end_run(run_id, "FINISHED")
    return summary
