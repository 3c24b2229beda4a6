"""``training_pipeline``: start, validate, prepare, search, choose, refit, evaluate, explain,
gate, compress, register, finish.

The flow only composes: each task is one stage of :mod:`honing.stages`. A flow run is about
fifteen task runs, each named for its stage, each logging its scores and decisions.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from honing.exceptions import failure_reason
from honing.experiments import search_name
from honing.planner import StageClock
from honing.stages.cache import StageStore
from honing.stages.evaluate import Fitted
from honing.stages.keys import reusable
from honing.summary import TrainingSummary
from honing.tracking import planned_run_name
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import stages


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
    started_at: float | None = None,
) -> TrainingSummary:
    """Train, evaluate and register a model for the pipeline config at ``config_path``.
    ``started_at`` (``time.time()`` seconds): when the command that runs it started, where
    the time budget counts from (default: the flow's own start)."""
    flow_run_id = str(flow_run.get_id() or "none")
    started = stages.start(
        config_path=config_path,
        env_path=env_path,
        run_name=flow_run.get_name() or "",
        flow_run_id=flow_run_id,
        started_at=started_at,
    )
    if started.healed.flow_runs:  # killed runs' flow runs, RUNNING forever otherwise
        setup_tasks.settle_flow_runs(flow_run_ids=started.healed.flow_runs)
    cfg, run, ray = started.cfg, started.run, started.settings.ray
    clock = StageClock(cfg.time_budget_s, started=started.started)  # counts from the start
    try:
        with clock.stage("validation"):
            validated = stages.validate(
                cfg=cfg, run=run, repo=repo, config_path=config_path, flow_run_id=flow_run_id
            )
            stages.validation_gate(validated=validated)  # reported and logged, then decided
        lineage = validated.lineage
        # a run of the same data, config and commit as a complete version changes nothing
        registry = cfg.registry
        same = (
            None
            if force
            else stages.unchanged(
                name=registry.model_name, lineage=lineage, alias=registry.champion_alias
            )
        )
        if same is not None:
            return stages.finish_unchanged(
                started=started,
                lineage=lineage,
                same=same,
                timings={**clock.seconds, "total": clock.elapsed()},
            )
        prepared = stages.prepare(
            cfg=cfg,
            raw=validated.raw,
            lineage=lineage,
            elapsed_s=clock.elapsed(),
            startup_s=clock.startup(),
        )
        # the expensive stages reuse a result of the same inputs, unless forced or searching
        # anew (nor is an earlier search restored then); their results are kept only when the
        # commit says what code made them
        resume = resume_search and not force
        store = StageStore.for_project(repo, read=resume, write=reusable(lineage))
        name = search_name(cfg.name, cfg.content_hash, lineage, resume=resume)
        with clock.stage("search"):
            result = stages.search(
                cfg=cfg, prepared=prepared, ray=ray, experiment_name=name, store=store
            )
        with clock.stage("ensemble"):
            refit_s = prepared.budget.refit_s(clock.left())
            choice = stages.choose(
                cfg=cfg, prepared=prepared, result=result, refit_s=refit_s, store=store
            )
        nested = None
        if cfg.search.nested_cv.enabled:
            with clock.stage("nested_cv"):
                nested = stages.nested_cv(cfg=cfg, prepared=prepared, ray=ray, experiment_name=name)
        with clock.stage("refit"):
            refit = stages.refit(cfg=cfg, prepared=prepared, choice=choice, store=store)
        with clock.stage("evaluation"):
            evaluated = stages.evaluate(
                cfg=cfg, prepared=prepared, refit=refit, left_s=clock.left()
            )
        with clock.stage("explain"):
            explained = stages.explain(
                cfg=cfg, prepared=prepared, refit=refit, trims=evaluated.trims, store=store
            )
            fitted = Fitted(
                search=result,
                choice=choice,
                nested=nested,
                refit=refit,
                evaluated=evaluated,
                explained=explained,
            )
            stages.log_evaluation(run=run, cfg=cfg, prepared=prepared, fitted=fitted)
        stages.quality_gate(cfg=cfg, evaluated=evaluated)
        with clock.stage("compression"):
            compressed = stages.compress(
                cfg=cfg, prepared=prepared, refit=refit, trims=evaluated.trims, store=store
            )
        with clock.stage("registration"):
            registered = stages.register(
                run=run,
                cfg=cfg,
                prepared=prepared,
                refit=refit,
                evaluated=evaluated,
                lineage=lineage,
                compressed=compressed,
            )
        return stages.finish(
            started=started,
            lineage=lineage,
            prepared=prepared,
            fitted=fitted,
            registered=registered,
            timings={**clock.seconds, "total": clock.elapsed()},
        )
    except BaseException as exc:
        # the run's own failure is what the user sees, even when its store cannot take the
        # FAILED mark either (a full disk): the next run marks it from its dead process
        stages.fail(run=run, stage=clock.current, reason=failure_reason(exc), return_state=True)
        raise
