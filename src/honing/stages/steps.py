"""The training pipeline's steps as plain functions: the
:class:`honing.stages.pipeline.Steps` that run with no orchestrator, and what the flow's
Prefect task of each name calls (``honing_flows.tasks.stages``).

Each takes keyword arguments, writes its decision lines (scores, choices, what was trimmed or
reused) to ``log`` (the ``honing`` logger unless a caller passes its own, as a Prefect task
passes its run's) and returns its bundle. The expensive, pure steps (search, choice, refit,
explanations, compression) reuse a result kept by ``store``
(:class:`honing.stages.cache.StageStore`) under a key of their real inputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from honing import evaluation, tracking, validation
from honing.compression import CompressionResult
from honing.config import PipelineConfig, RaySettings
from honing.evaluation.nested import NestedCVResult
from honing.lineage import Lineage
from honing.registry import unchanged as unchanged_stage
from honing.registry.unchanged import UnchangedVersion
from honing.search import SearchResult
from honing.search.ensembles import EnsembleDecision
from honing.search.planner import Trims
from honing.stages import compress as compress_stage
from honing.stages import evaluate as evaluate_stage
from honing.stages import finish as finish_stage
from honing.stages import fit, record
from honing.stages import prepare as prepare_stage
from honing.stages import register as register_stage
from honing.stages import validate as validate_stage
from honing.stages.cache import Reused, StageStore
from honing.stages.reproduce import RecordedChoice
from honing.stages.start import Started
from honing.stages.summary import RunRef, TrainingSummary

Log = Callable[[str], None]
T = TypeVar("T")
_LOG = logging.getLogger("honing")


def _said(value: T, log: Log) -> T:
    """``value``, once its decision lines (``log_lines``, where it has them) are logged."""
    lines = getattr(value, "log_lines", None)
    for line in lines() if callable(lines) else []:
        log(line)
    return value


def _kept(reused: Reused[T], log: Log) -> T:
    """The stage's result, once said, with where it came from when it was reused."""
    return _said(reused, log).value


def _trims(trims: Trims) -> str:
    return json.dumps(trims.to_dict(), sort_keys=True, default=str)


def validate(
    *,
    cfg: PipelineConfig,
    run: RunRef,
    repo: str,
    config_path: str,
    flow_run_id: str,
    log: Log = _LOG.info,
) -> validate_stage.Validated:
    validated = validate_stage.validate(
        cfg, run, repo=repo, config_path=config_path, flow_run_id=flow_run_id
    )
    return _said(validated, log)


def validation_gate(*, validated: validate_stage.Validated) -> None:
    validation.gate(validated.report)


def unchanged(
    *, name: str, lineage: Lineage, alias: str, log: Log = _LOG.info
) -> UnchangedVersion | None:
    return _said(unchanged_stage.unchanged(name, lineage, alias), log)


def prepare(
    *,
    cfg: PipelineConfig,
    raw: Any,
    lineage: Lineage,
    elapsed_s: float,
    startup_s: float | None = None,
    log: Log = _LOG.info,
) -> prepare_stage.Prepared:
    prepared = prepare_stage.prepare(cfg, raw, lineage, elapsed_s=elapsed_s, startup_s=startup_s)
    return _said(prepared, log)


def search(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    ray: RaySettings,
    experiment_name: str,
    store: StageStore,
    log: Log = _LOG.info,
) -> SearchResult:
    def run() -> SearchResult:
        return fit.search(cfg, prepared, ray=ray, experiment_name=experiment_name, progress=log)

    return _kept(store.reuse("search", cfg, prepared.lineage, run), log)


def choose(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    result: SearchResult,
    refit_s: float | None,
    store: StageStore,
    log: Log = _LOG.info,
) -> EnsembleDecision:
    def run() -> EnsembleDecision:
        return fit.choose(cfg, prepared, result, refit_s=refit_s)

    return _kept(store.reuse("choose", cfg, prepared.lineage, run), log)


def nested_cv(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    ray: RaySettings,
    experiment_name: str,
) -> NestedCVResult:
    return fit.nested_cv(cfg, prepared, ray=ray, experiment_name=experiment_name)


def refit(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    choice: EnsembleDecision,
    store: StageStore,
    log: Log = _LOG.info,
) -> fit.Refit:
    def run() -> fit.Refit:
        return fit.refit(cfg, prepared, choice)

    return _kept(store.reuse("refit", cfg, prepared.lineage, run), log)


def rebuild(
    *, prepared: prepare_stage.Prepared, recorded: RecordedChoice, log: Log = _LOG.info
) -> fit.Refit:
    return _said(fit.rebuild(prepared, recorded.spec, recorded.rule), log)


def evaluate(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    left_s: float | None,
    log: Log = _LOG.info,
) -> evaluate_stage.Evaluated:
    return _said(evaluate_stage.evaluate(cfg, prepared, refit, left_s=left_s), log)


def explain(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
    log: Log = _LOG.info,
) -> evaluate_stage.Explained:
    def run() -> evaluate_stage.Explained:
        return evaluate_stage.explain(cfg, prepared, refit, trims)

    return _kept(store.reuse("explain", cfg, prepared.lineage, run, extra=_trims(trims)), log)


def log_evaluation(
    *,
    run: RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
) -> None:
    record.log_evaluation(run, cfg, prepared=prepared, fitted=fitted)


def quality_gate(*, cfg: PipelineConfig, evaluated: evaluate_stage.Evaluated) -> None:
    evaluation.gate(
        evaluated.report, cfg.evaluation.thresholds, evaluated.slices, cfg.evaluation.slice_gate
    )


def compress(
    *,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    store: StageStore,
    log: Log = _LOG.info,
) -> CompressionResult | None:
    def run() -> CompressionResult | None:
        return compress_stage.compress(cfg, prepared, refit, trims)

    return _kept(store.reuse("compress", cfg, prepared.lineage, run, extra=_trims(trims)), log)


def register(
    *,
    run: RunRef,
    cfg: PipelineConfig,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    evaluated: evaluate_stage.Evaluated,
    lineage: Lineage,
    compressed: CompressionResult | None,
    log: Log = _LOG.info,
) -> register_stage.Registered:
    registered = register_stage.register(
        run,
        cfg,
        prepared=prepared,
        refit=refit,
        evaluated=evaluated,
        lineage=lineage,
        compressed=compressed,
    )
    return _said(registered, log)


def finish(
    *,
    started: Started,
    lineage: Lineage,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    registered: register_stage.Registered,
    timings: dict[str, float],
    log: Log = _LOG.info,
) -> TrainingSummary:
    summary = finish_stage.finish(
        started,
        lineage=lineage,
        prepared=prepared,
        fitted=fitted,
        registered=registered,
        timings=timings,
    )
    return _said(summary, log)


def finish_unchanged(
    *,
    started: Started,
    lineage: Lineage,
    same: UnchangedVersion,
    timings: dict[str, float],
    log: Log = _LOG.info,
) -> TrainingSummary:
    summary = finish_stage.finish_unchanged(started, lineage=lineage, same=same, timings=timings)
    return _said(summary, log)


def fail(*, run: RunRef, stage: str, reason: str) -> None:
    """The MLflow run marked FAILED, with the stage and the reason."""
    tracking.fail_run(run.run_id, stage, reason)
