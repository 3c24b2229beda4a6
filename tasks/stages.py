"""The training pipeline's stages as tasks: one call into :mod:`honing.stages` each.

Each task of a step name runs the plain step of :mod:`honing.stages.steps` with the task
run's logger, so that a flow run reads as a story; :func:`honing.stages.pipeline.train`
calls them in the library's order. The expensive, pure stages (search, choice, refit,
explanations, compression) reuse a result kept by honing
(:class:`honing.stages.cache.StageStore`) under the key :func:`honing.stages.keys.stage_key`
gives (data MD5, commit, the config sections they read), so that a run whose compression
settings changed re-runs only the compression. The records are sealed with the project's
secret and load with honing's reviewed types only; Prefect persists none of them.
"""

from __future__ import annotations

import os
from typing import Any

from honing.compression import CompressionResult
from honing.config import EnvSettings, PipelineConfig, RaySettings
from honing.ensembles import EnsembleDecision
from honing.lineage import FLOW_RUN_TAG, Lineage
from honing.nested import NestedCVResult
from honing.planner import Trims
from honing.reproduce import RecordedChoice
from honing.search import SearchResult
from honing.stages import evaluate as evaluate_stage
from honing.stages import fit, steps
from honing.stages import prepare as prepare_stage
from honing.stages import register as register_stage
from honing.stages import start as start_stage
from honing.stages import validate as validate_stage
from honing.stages.cache import StageStore
from honing.summary import RunRef, TrainingSummary
from honing.tracking import fail_run
from honing.unchanged import UnchangedVersion
from honing_flows import prefect_artifacts
from honing_flows.tasks import compute_task, io_task, logged, run_log


@io_task(run_name="start({config_path})")
def start(
    config_path: str,
    env_path: str | None,
    run_name: str,
    flow_run_id: str,
    started_at: float | None = None,
) -> start_stage.Started:
    return logged(
        start_stage.start(
            config_path,
            env_path,
            run_name=run_name,
            tags={FLOW_RUN_TAG: flow_run_id},
            environ=os.environ,
            started_at=started_at,
        )
    )


@io_task
def connect(env_path: str | None) -> EnvSettings:
    return start_stage.connect(env_path, os.environ)


@io_task
def validate(
    cfg: PipelineConfig, run: RunRef, repo: str, config_path: str, flow_run_id: str
) -> validate_stage.Validated:
    return steps.validate(
        cfg=cfg,
        run=run,
        repo=repo,
        config_path=config_path,
        flow_run_id=flow_run_id,
        log=run_log(),
    )


@compute_task
def validation_gate(validated: validate_stage.Validated) -> None:
    steps.validation_gate(validated=validated)


@io_task
def unchanged(name: str, lineage: Lineage, alias: str) -> UnchangedVersion | None:
    return steps.unchanged(name=name, lineage=lineage, alias=alias, log=run_log())


@compute_task
def prepare(
    cfg: PipelineConfig,
    raw: Any,
    lineage: Lineage,
    elapsed_s: float,
    startup_s: float | None = None,
) -> prepare_stage.Prepared:
    return steps.prepare(
        cfg=cfg, raw=raw, lineage=lineage, elapsed_s=elapsed_s, startup_s=startup_s, log=run_log()
    )


@compute_task  # its result kept and reused by honing (StageStore)
def search(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    ray: RaySettings,
    experiment_name: str,
    store: StageStore,
) -> SearchResult:
    return steps.search(
        cfg=cfg,
        prepared=prepared,
        ray=ray,
        experiment_name=experiment_name,
        store=store,
        log=run_log(),
    )


@compute_task  # its result kept and reused by honing (StageStore)
def choose(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    result: SearchResult,
    refit_s: float | None,
    store: StageStore,
) -> EnsembleDecision:
    return steps.choose(
        cfg=cfg, prepared=prepared, result=result, refit_s=refit_s, store=store, log=run_log()
    )


@compute_task
def nested_cv(
    cfg: PipelineConfig, prepared: prepare_stage.Prepared, ray: RaySettings, experiment_name: str
) -> NestedCVResult:
    return steps.nested_cv(cfg=cfg, prepared=prepared, ray=ray, experiment_name=experiment_name)


@compute_task  # its result kept and reused by honing (StageStore)
def refit(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    choice: EnsembleDecision,
    store: StageStore,
) -> fit.Refit:
    return steps.refit(cfg=cfg, prepared=prepared, choice=choice, store=store, log=run_log())


@compute_task
def rebuild(prepared: prepare_stage.Prepared, recorded: RecordedChoice) -> fit.Refit:
    return steps.rebuild(prepared=prepared, recorded=recorded, log=run_log())


@compute_task
def evaluate(
    cfg: PipelineConfig, prepared: prepare_stage.Prepared, refit: fit.Refit, left_s: float | None
) -> evaluate_stage.Evaluated:
    return steps.evaluate(cfg=cfg, prepared=prepared, refit=refit, left_s=left_s, log=run_log())


@compute_task  # its result kept and reused by honing (StageStore)
def explain(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
) -> evaluate_stage.Explained:
    return steps.explain(
        cfg=cfg, prepared=prepared, refit=refit, trims=trims, store=store, log=run_log()
    )


@io_task
def log_evaluation(
    run: RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
) -> None:
    steps.log_evaluation(run=run, cfg=cfg, prepared=prepared, fitted=fitted)


@compute_task
def quality_gate(cfg: PipelineConfig, evaluated: evaluate_stage.Evaluated) -> None:
    steps.quality_gate(cfg=cfg, evaluated=evaluated)


@compute_task  # its result kept and reused by honing (StageStore)
def compress(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
) -> CompressionResult | None:
    return steps.compress(
        cfg=cfg, prepared=prepared, refit=refit, trims=trims, store=store, log=run_log()
    )


# Retried: registration first looks for a version of this run, so a retry never duplicates.
@io_task
def register(
    run: RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    evaluated: evaluate_stage.Evaluated,
    lineage: Lineage,
    compressed: CompressionResult | None,
) -> register_stage.Registered:
    return steps.register(
        run=run,
        cfg=cfg,
        prepared=prepared,
        refit=refit,
        evaluated=evaluated,
        lineage=lineage,
        compressed=compressed,
        log=run_log(),
    )


@io_task
def finish(
    started: start_stage.Started,
    lineage: Lineage,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    registered: register_stage.Registered,
    timings: dict[str, float],
) -> TrainingSummary:
    """The library's finish, then the summary as Prefect Markdown and link artifacts."""
    return prefect_artifacts.published(
        steps.finish(
            started=started,
            lineage=lineage,
            prepared=prepared,
            fitted=fitted,
            registered=registered,
            timings=timings,
            log=run_log(),
        ),
        started.settings.mlflow.ui_url,
    )


@io_task
def finish_unchanged(
    started: start_stage.Started,
    lineage: Lineage,
    same: UnchangedVersion,
    timings: dict[str, float],
) -> TrainingSummary:
    return prefect_artifacts.published(
        steps.finish_unchanged(
            started=started, lineage=lineage, same=same, timings=timings, log=run_log()
        ),
        started.settings.mlflow.ui_url,
    )


@io_task
def fail(run: RunRef, stage: str, reason: str) -> None:
    """The MLflow run marked FAILED with its reason; the same reason as the flow run's
    Markdown artifact, even when the store cannot take the mark."""
    try:
        fail_run(run.run_id, stage, reason)
    finally:
        prefect_artifacts.publish_failure(run.run_id, stage, reason)
