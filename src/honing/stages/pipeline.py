"""The order of the training pipeline's stages, written once.

:func:`train` runs the whole sequence over a set of :class:`Steps`: the flow passes its
Prefect tasks (``honing_flows.tasks.stages``, one library call each), ``bench/overhead.py``
the same functions called plainly. :func:`refit_anew` (search, choice, nested CV, refit) is
the part that :func:`reproduce` runs again for a version that recorded no model, and
:func:`fitted` adds the evaluation and the explanations (the :class:`Fitted` bundle).

The stages after the preparation read one :class:`~honing.stages.context.RunContext` (the
config, Ray, the search's name, the store of kept results, the MLflow run), made once the
data's lineage is known. The budget travels with the run: :func:`train` keeps the
:class:`~honing.search.planner.StageClock` that counts from the command's start, times each
stage with it, and asks the plan of ``prepared.budget`` what the later stages may spend, so
the caller does no arithmetic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from honing import runtime
from honing.compression import CompressionResult
from honing.config import PipelineConfig, RaySettings
from honing.evaluation.nested import NestedCVResult
from honing.exceptions import failure_reason
from honing.lineage import Lineage
from honing.registry import infra
from honing.registry.unchanged import UnchangedVersion
from honing.search import SearchResult
from honing.search.ensembles import EnsembleDecision
from honing.search.planner import MachineLoad, StageClock, Trims
from honing.stages.cache import StageStore
from honing.stages.context import RunContext, RunRef
from honing.stages.evaluate import Evaluated, Explained, Fitted
from honing.stages.fit import Refit
from honing.stages.keys import reusable
from honing.stages.prepare import Prepared
from honing.stages.register import Registered
from honing.stages.reproduce import RecordedChoice, VersionLineage
from honing.stages.start import Started
from honing.stages.summary import TrainingSummary
from honing.stages.validate import Validated

#: The steps :func:`train` calls, in this order (``nested_cv`` only when configured; a run
#: of an unchanged version stops at ``unchanged`` and calls ``finish_unchanged``). A flow run
#: shows them as its task runs, after ``start``.
ORDER = ("validate", "validation_gate", "unchanged", "prepare", "search", "choose", "nested_cv",
         "refit", "evaluate", "explain", "log_evaluation", "quality_gate", "compress",
         "register", "finish")  # fmt: skip


class Steps(Protocol):
    """What runs each stage, by the stage's name, with keyword arguments only: the Prefect
    tasks of ``honing_flows.tasks.stages`` in a flow, or plain functions of the same names.
    The stages after the preparation read the run's :class:`RunContext`."""

    def validate(
        self, *, cfg: PipelineConfig, run: RunRef, repo: str, config_path: str, flow_run_id: str
    ) -> Validated: ...
    def validation_gate(self, *, validated: Validated) -> None: ...
    def unchanged(self, *, name: str, lineage: Lineage, alias: str) -> UnchangedVersion | None: ...
    def prepare(
        self,
        *,
        cfg: PipelineConfig,
        raw: Any,
        lineage: Lineage,
        elapsed_s: float,
        load: MachineLoad | None = None,
    ) -> Prepared: ...
    def search(self, *, ctx: RunContext, prepared: Prepared) -> SearchResult: ...
    def choose(
        self, *, ctx: RunContext, prepared: Prepared, result: SearchResult, refit_s: float | None
    ) -> EnsembleDecision: ...
    def nested_cv(self, *, ctx: RunContext, prepared: Prepared) -> NestedCVResult: ...
    def refit(
        self,
        *,
        ctx: RunContext,
        prepared: Prepared,
        choice: EnsembleDecision,
        refit_s: float | None,
    ) -> Refit: ...
    def rebuild(self, *, prepared: Prepared, recorded: RecordedChoice) -> Refit: ...
    def evaluate(
        self, *, ctx: RunContext, prepared: Prepared, refit: Refit, left_s: float | None
    ) -> Evaluated: ...
    def explain(
        self, *, ctx: RunContext, prepared: Prepared, refit: Refit, trims: Trims
    ) -> Explained: ...
    def log_evaluation(self, *, ctx: RunContext, prepared: Prepared, fitted: Fitted) -> None: ...
    def quality_gate(
        self, *, ctx: RunContext, prepared: Prepared, evaluated: Evaluated
    ) -> None: ...
    def compress(
        self, *, ctx: RunContext, prepared: Prepared, refit: Refit, trims: Trims
    ) -> CompressionResult | None: ...
    def register(
        self,
        *,
        ctx: RunContext,
        prepared: Prepared,
        fitted: Fitted,
        compressed: CompressionResult | None,
    ) -> Registered: ...
    def finish(
        self,
        *,
        started: Started,
        prepared: Prepared,
        fitted: Fitted,
        registered: Registered,
        timings: dict[str, float],
    ) -> TrainingSummary: ...
    def finish_unchanged(
        self,
        *,
        started: Started,
        lineage: Lineage,
        same: UnchangedVersion,
        timings: dict[str, float],
    ) -> TrainingSummary: ...
    def fail(self, *, run: RunRef, stage: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Refitted:
    """The search, the choice it led to, nested CV (None unless configured) and the refit
    model."""

    search: SearchResult
    choice: EnsembleDecision
    nested: NestedCVResult | None
    refit: Refit


def _timings(clock: StageClock) -> dict[str, float]:
    return {**clock.seconds, "total": clock.elapsed()}


def refit_anew(
    steps: Steps, ctx: RunContext, prepared: Prepared, clock: StageClock, *, nested: bool = False
) -> Refitted:
    """Search, choose the model (an ensemble's members refit within what the plan leaves
    them), nested CV when ``nested``, and refit the choice on the training rows."""
    with clock.stage("search"):
        result = steps.search(ctx=ctx, prepared=prepared)
    with clock.stage("ensemble"):
        refit_s = prepared.budget.refit_s(clock.left())
        choice = steps.choose(ctx=ctx, prepared=prepared, result=result, refit_s=refit_s)
    outer = None
    if nested:
        with clock.stage("nested_cv"):
            outer = steps.nested_cv(ctx=ctx, prepared=prepared)
    with clock.stage("refit"):
        # the refit grows its model until what is left is the reserve of the stages no run
        # skips (explanations and compression are trimmed to what it leaves)
        refit_s = prepared.budget.refit_limit_s(clock.left())
        refit = steps.refit(ctx=ctx, prepared=prepared, choice=choice, refit_s=refit_s)
    return Refitted(search=result, choice=choice, nested=outer, refit=refit)


def fitted(steps: Steps, ctx: RunContext, prepared: Prepared, clock: StageClock) -> Fitted:
    """:func:`refit_anew` (nested CV as configured), then the test evaluation (which sizes
    the optional work to the time left) and the explanations."""
    done = refit_anew(steps, ctx, prepared, clock, nested=ctx.cfg.search.nested_cv.enabled)
    with clock.stage("evaluation"):
        evaluated = steps.evaluate(
            ctx=ctx, prepared=prepared, refit=done.refit, left_s=clock.left()
        )
    with clock.stage("explain"):
        explained = steps.explain(
            ctx=ctx, prepared=prepared, refit=done.refit, trims=evaluated.trims
        )
    return Fitted(
        search=done.search,
        choice=done.choice,
        nested=done.nested,
        refit=done.refit,
        evaluated=evaluated,
        explained=explained,
    )


def train(
    steps: Steps,
    started: Started,
    *,
    repo: str,
    config_path: str,
    flow_run_id: str,
    resume_search: bool = True,
    force: bool = False,
) -> TrainingSummary:
    """The whole run after :func:`honing.stages.start.start`: validate (reported, logged,
    then gated), stop at an unchanged version unless ``force``, prepare, :func:`fitted`, log
    the evaluation, gate its quality, compress, register and finish. The expensive stages
    reuse a result of the same inputs kept in the project (unless ``force``, or not
    ``resume_search``: then the search starts anew too), and keep theirs when the commit
    says what code made them. A failure marks the run FAILED with the stage and the reason
    before it propagates."""
    cfg, run = started.cfg, started.run
    clock = StageClock(cfg.time_budget_s, started=started.started)  # counts from the start
    try:
        with clock.stage("validation"):
            validated = steps.validate(
                cfg=cfg, run=run, repo=repo, config_path=config_path, flow_run_id=flow_run_id
            )
            steps.validation_gate(validated=validated)
        lineage = validated.lineage
        registry = cfg.registry
        same = (
            None
            if force
            else steps.unchanged(
                name=registry.model_name, lineage=lineage, alias=registry.champion_alias
            )
        )
        if same is not None:  # the same data, config and commit as a complete version
            return steps.finish_unchanged(
                started=started, lineage=lineage, same=same, timings=_timings(clock)
            )
        # how busy the machine is, read before this run starts work beside its own thread
        # (the check's process below imports for seconds): a slow start, or CPU work slower
        # than on an idle core; a run without a budget plans nothing on it
        budgeted = cfg.time_budget_s is not None
        load = MachineLoad(clock.startup(), runtime.contention() if budgeted else None)
        if registry.infra_check.enabled:
            # the load-and-query check's process, started once the run will train: its imports
            # overlap the search (a run refused by validation, or unchanged, starts none)
            infra.warm_up(run.tracking_uri)
        prepared = steps.prepare(
            cfg=cfg,
            raw=validated.raw,
            lineage=lineage,
            elapsed_s=clock.elapsed(),
            load=load,
        )
        resume = resume_search and not force
        store = StageStore.for_project(repo, read=resume, write=reusable(lineage))
        ctx = RunContext.for_run(
            cfg, started.settings.ray, store, run=run, lineage=lineage, resume=resume
        )
        fit = fitted(steps, ctx, prepared, clock)
        with clock.stage("explain"):  # what a reviewer reads, before any gate can stop it
            steps.log_evaluation(ctx=ctx, prepared=prepared, fitted=fit)
        steps.quality_gate(ctx=ctx, prepared=prepared, evaluated=fit.evaluated)
        with clock.stage("compression"):
            compressed = steps.compress(
                ctx=ctx, prepared=prepared, refit=fit.refit, trims=fit.evaluated.trims
            )
        with clock.stage("registration"):
            registered = steps.register(
                ctx=ctx, prepared=prepared, fitted=fit, compressed=compressed
            )
        return steps.finish(
            started=started,
            prepared=prepared,
            fitted=fit,
            registered=registered,
            timings=_timings(clock),
        )
    except BaseException as exc:
        # the run's own failure is what the user sees, even when its store cannot take the
        # FAILED mark either (a full disk): the next run marks it from its dead process
        with contextlib.suppress(Exception):
            steps.fail(run=run, stage=clock.current, reason=failure_reason(exc))
        raise


def reproduce(
    steps: Steps,
    cfg: PipelineConfig,
    raw: Any,
    lineage: VersionLineage,
    recorded: RecordedChoice | None,
    *,
    ray: RaySettings,
) -> Evaluated:
    """Prepare the version's data as its run did, rebuild the model it ``recorded`` (its
    spec and decision rule) or, with none, :func:`refit_anew` under its config (nothing is
    reused from earlier runs, nor kept), and evaluate it on the same split."""
    clock = StageClock(cfg.time_budget_s)
    # the version's lineage stands for the run's: the stages read its data MD5 and commit
    prepared = steps.prepare(
        cfg=cfg,
        raw=raw,
        lineage=lineage,  # type: ignore[arg-type]
        elapsed_s=clock.elapsed(),
    )
    # a fresh search: nothing is reused from earlier runs, nor kept
    ctx = RunContext.for_run(cfg, ray, StageStore.off())
    if recorded is not None:  # the very model the version was: its spec and its rule
        refit = steps.rebuild(prepared=prepared, recorded=recorded)
    else:
        refit = refit_anew(steps, ctx, prepared, clock).refit
    return steps.evaluate(ctx=ctx, prepared=prepared, refit=refit, left_s=clock.left())
