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

from honing import tracking, validation
from honing.compression import CompressionResult
from honing.config import PipelineConfig
from honing.evaluation.nested import NestedCVResult
from honing.lineage import QUALITY_MISSED_TAG, Lineage
from honing.registry import unchanged as unchanged_stage
from honing.registry.unchanged import UnchangedVersion
from honing.search import SearchResult
from honing.search.ensembles import EnsembleDecision
from honing.search.planner import MachineLoad, Trims
from honing.stages import compress as compress_stage
from honing.stages import evaluate as evaluate_stage
from honing.stages import finish as finish_stage
from honing.stages import fit, record
from honing.stages import prepare as prepare_stage
from honing.stages import register as register_stage
from honing.stages import validate as validate_stage
from honing.stages.cache import Reused
from honing.stages.context import RunContext, RunRef
from honing.stages.reproduce import RecordedChoice
from honing.stages.start import Started
from honing.stages.summary import TrainingSummary

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
    load: MachineLoad | None = None,
    log: Log = _LOG.info,
) -> prepare_stage.Prepared:
    prepared = prepare_stage.prepare(cfg, raw, lineage, elapsed_s=elapsed_s, load=load)
    return _said(prepared, log)


def search(
    *, ctx: RunContext, prepared: prepare_stage.Prepared, log: Log = _LOG.info
) -> SearchResult:
    def run() -> SearchResult:
        return fit.search(
            ctx.cfg, prepared, ray=ctx.ray, experiment_name=ctx.experiment_name, progress=log
        )

    return _kept(ctx.store.reuse("search", ctx.cfg, prepared.lineage, run), log)


def choose(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    result: SearchResult,
    refit_s: float | None,
    log: Log = _LOG.info,
) -> EnsembleDecision:
    def run() -> EnsembleDecision:
        return fit.choose(ctx.cfg, prepared, result, refit_s=refit_s)

    return _kept(ctx.store.reuse("choose", ctx.cfg, prepared.lineage, run), log)


def nested_cv(*, ctx: RunContext, prepared: prepare_stage.Prepared) -> NestedCVResult:
    return fit.nested_cv(ctx.cfg, prepared, ray=ctx.ray, experiment_name=ctx.experiment_name)


def refit(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    choice: EnsembleDecision,
    refit_s: float | None = None,
    log: Log = _LOG.info,
) -> fit.Refit:
    def run() -> fit.Refit:
        return fit.refit(ctx.cfg, prepared, choice, refit_s=refit_s)

    return _kept(ctx.store.reuse("refit", ctx.cfg, prepared.lineage, run), log)


def rebuild(
    *, prepared: prepare_stage.Prepared, recorded: RecordedChoice, log: Log = _LOG.info
) -> fit.Refit:
    return _said(fit.rebuild(prepared, recorded.spec, recorded.rule), log)


def evaluate(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    left_s: float | None,
    log: Log = _LOG.info,
) -> evaluate_stage.Evaluated:
    return _said(evaluate_stage.evaluate(ctx.cfg, prepared, refit, left_s=left_s), log)


def explain(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    log: Log = _LOG.info,
) -> evaluate_stage.Explained:
    def run() -> evaluate_stage.Explained:
        return evaluate_stage.explain(ctx.cfg, prepared, refit, trims)

    kept = ctx.store.reuse("explain", ctx.cfg, prepared.lineage, run, extra=_trims(trims))
    return _kept(kept, log)


def log_evaluation(
    *, ctx: RunContext, prepared: prepare_stage.Prepared, fitted: evaluate_stage.Fitted
) -> None:
    record.log_evaluation(ctx.recording, ctx.cfg, prepared=prepared, fitted=fitted)


def quality_gate(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    evaluated: evaluate_stage.Evaluated,
    log: Log = _LOG.warning,
) -> None:
    missed = register_stage.quality_gate(ctx.cfg, prepared, evaluated)
    for words in missed:
        log(f"quality threshold missed, the model goes on: {words}")
    if missed and ctx.run is not None:  # the run's page says it beside its metrics
        tracking.set_tags(ctx.run.run_id, {QUALITY_MISSED_TAG: "; ".join(missed)})


def compress(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    refit: fit.Refit,
    trims: Trims,
    log: Log = _LOG.info,
) -> CompressionResult | None:
    def run() -> CompressionResult | None:
        return compress_stage.compress(ctx.cfg, prepared, refit, trims)

    kept = ctx.store.reuse("compress", ctx.cfg, prepared.lineage, run, extra=_trims(trims))
    return _kept(kept, log)


def register(
    *,
    ctx: RunContext,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    compressed: CompressionResult | None,
    log: Log = _LOG.info,
) -> register_stage.Registered:
    registered = register_stage.register(
        ctx.recording, ctx.cfg, prepared=prepared, fitted=fitted, compressed=compressed
    )
    return _said(registered, log)


def finish(
    *,
    started: Started,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    registered: register_stage.Registered,
    timings: dict[str, float],
    log: Log = _LOG.info,
) -> TrainingSummary:
    summary = finish_stage.finish(
        started, prepared=prepared, fitted=fitted, registered=registered, timings=timings
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
