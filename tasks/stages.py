"""The training pipeline's stages as tasks: one call into :mod:`honing.stages` each.

The expensive, pure stages (search, choice, refit, explanations, compression) reuse a result
kept by honing (:class:`honing.stages.cache.StageStore`) under the key
:func:`honing.stages.keys.stage_key` gives (data MD5, commit, the config sections they read),
so that a run whose compression settings changed re-runs only the compression. The records
are sealed with the project's secret and load with honing's reviewed types only; Prefect
persists none of them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from prefect import get_run_logger

from honing import evaluation, summary, tracking, validation
from honing.compression import CompressionResult
from honing.config import EnvSettings, PipelineConfig, RaySettings
from honing.ensembles import EnsembleDecision
from honing.lineage import FLOW_RUN_TAG, Lineage
from honing.nested import NestedCVResult
from honing.planner import Trims
from honing.reproduce import RecordedChoice
from honing.search import SearchResult
from honing.stages import compress as compress_stage
from honing.stages import evaluate as evaluate_stage
from honing.stages import finish as finish_stage
from honing.stages import fit, record
from honing.stages import prepare as prepare_stage
from honing.stages import register as register_stage
from honing.stages import start as start_stage
from honing.stages import validate as validate_stage
from honing.stages.cache import StageStore
from honing.unchanged import UnchangedVersion, unchanged_version
from honing_flows import prefect_artifacts
from honing_flows.tasks import compute_task, io_task, logged


def _trims(trims: Trims) -> str:
    return json.dumps(trims.to_dict(), sort_keys=True, default=str)


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
    cfg: PipelineConfig, run: summary.RunRef, repo: str, config_path: str, flow_run_id: str
) -> validate_stage.Validated:
    return logged(
        validate_stage.validate(
            cfg, run, repo=repo, config_path=config_path, flow_run_id=flow_run_id
        )
    )


@compute_task
def validation_gate(validated: validate_stage.Validated) -> None:
    validation.gate(validated.report)


@io_task
def unchanged(name: str, lineage: Lineage, alias: str) -> UnchangedVersion | None:
    return logged(unchanged_version(name, lineage, alias))


@compute_task
def prepare(
    cfg: PipelineConfig,
    raw: Any,
    lineage: Lineage,
    elapsed_s: float,
    startup_s: float | None = None,
) -> prepare_stage.Prepared:
    return logged(
        prepare_stage.prepare(cfg, raw, lineage, elapsed_s=elapsed_s, startup_s=startup_s)
    )


@compute_task  # its result kept and reused by honing (StageStore)
def search(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    ray: RaySettings,
    experiment_name: str,
    store: StageStore,
) -> SearchResult:
    return logged(
        store.reuse(
            "search",
            cfg,
            prepared.lineage,
            lambda: fit.search(
                cfg,
                prepared,
                ray=ray,
                experiment_name=experiment_name,
                progress=get_run_logger().info,
            ),
        )
    ).value


@compute_task  # its result kept and reused by honing (StageStore)
def choose(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    result: SearchResult,
    refit_s: float | None,
    store: StageStore,
) -> EnsembleDecision:
    return logged(
        store.reuse(
            "choose",
            cfg,
            prepared.lineage,
            lambda: fit.choose(cfg, prepared, result, refit_s=refit_s),
        )
    ).value


@compute_task
def nested_cv(
    cfg: PipelineConfig, prepared: prepare_stage.Prepared, ray: RaySettings, experiment_name: str
) -> NestedCVResult:
    return fit.nested_cv(cfg, prepared, ray=ray, experiment_name=experiment_name)


@compute_task  # its result kept and reused by honing (StageStore)
def refit(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    choice: EnsembleDecision,
    store: StageStore,
) -> fit.Refit:
    return logged(
        store.reuse("refit", cfg, prepared.lineage, lambda: fit.refit(cfg, prepared, choice))
    ).value


@compute_task
def rebuild(prepared: prepare_stage.Prepared, recorded: RecordedChoice) -> fit.Refit:
    return logged(fit.rebuild(prepared, recorded.spec, recorded.rule))


@compute_task
def evaluate(
    cfg: PipelineConfig, prepared: prepare_stage.Prepared, refit: fit.Refit, left_s: float | None
) -> evaluate_stage.Evaluated:
    return logged(evaluate_stage.evaluate(cfg, prepared, refit, left_s=left_s))


@compute_task  # its result kept and reused by honing (StageStore)
def explain(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
) -> evaluate_stage.Explained:
    return logged(
        store.reuse(
            "explain",
            cfg,
            prepared.lineage,
            lambda: evaluate_stage.explain_model(cfg, prepared, refit, trims),
            extra=_trims(trims),
        )
    ).value


@io_task
def log_evaluation(
    run: summary.RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
) -> None:
    record.log_evaluation(run, cfg, prepared=prepared, fitted=fitted)


@compute_task
def quality_gate(cfg: PipelineConfig, evaluated: evaluate_stage.Evaluated) -> None:
    evaluation.gate(
        evaluated.report, cfg.evaluation.thresholds, evaluated.slices, cfg.evaluation.slice_gate
    )


@compute_task  # its result kept and reused by honing (StageStore)
def compress(
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
) -> CompressionResult | None:
    return logged(
        store.reuse(
            "compress",
            cfg,
            prepared.lineage,
            lambda: compress_stage.compress(cfg, prepared, refit, trims),
            extra=_trims(trims),
        )
    ).value


# Retried: registration first looks for a version of this run, so a retry never duplicates.
@io_task
def register(
    run: summary.RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    evaluated: evaluate_stage.Evaluated,
    lineage: Lineage,
    compressed: CompressionResult | None,
) -> register_stage.Registered:
    return logged(
        register_stage.register(
            run,
            cfg,
            prepared=prepared,
            refit=refit,
            evaluated=evaluated,
            lineage=lineage,
            compressed=compressed,
        )
    )


@io_task
def finish(
    started: start_stage.Started,
    lineage: Lineage,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    registered: register_stage.Registered,
    timings: dict[str, float],
) -> summary.TrainingSummary:
    """The library's finish, then the summary as Prefect Markdown and link artifacts."""
    return logged(
        prefect_artifacts.published(
            finish_stage.finish(
                started,
                lineage=lineage,
                prepared=prepared,
                fitted=fitted,
                registered=registered,
                timings=timings,
            ),
            started.settings.mlflow.ui_url,
        )
    )


@io_task
def finish_unchanged(
    started: start_stage.Started,
    lineage: Lineage,
    same: UnchangedVersion,
    timings: dict[str, float],
) -> summary.TrainingSummary:
    return logged(
        prefect_artifacts.published(
            finish_stage.finish_unchanged(started, lineage=lineage, same=same, timings=timings),
            started.settings.mlflow.ui_url,
        )
    )


@io_task
def fail(run: summary.RunRef, stage: str, reason: str) -> None:
    """The MLflow run marked FAILED with its reason; the same reason as the flow run's
    Markdown artifact, even when the store cannot take the mark."""
    try:
        tracking.fail_run(run.run_id, stage, reason)
    finally:
        prefect_artifacts.publish_failure(run.run_id, stage, reason)
