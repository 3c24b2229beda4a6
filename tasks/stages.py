"""The training pipeline's stages as tasks: one call into :mod:`honing.stages` each.

Each task of a step name is the plain step of :mod:`honing.stages.steps` made a task (its
parameters the step's), writing its decision lines to the task run's log, so that a flow
run reads as a story; :func:`honing.stages.pipeline.train` calls them in the library's
order. The expensive, pure stages (search, choice, refit,
explanations, compression) reuse a result kept by honing
(:class:`honing.stages.cache.StageStore`) under the key :func:`honing.stages.keys.stage_key`
gives (data MD5, commit, the config sections they read), so that a run whose compression
settings changed re-runs only the compression. The records are sealed with the project's
secret and load with honing's reviewed types only; Prefect persists none of them.
"""

from __future__ import annotations

import os

from honing.config import EnvSettings
from honing.lineage import FLOW_RUN_TAG, Lineage
from honing.registry.unchanged import UnchangedVersion
from honing.stages import evaluate as evaluate_stage
from honing.stages import prepare as prepare_stage
from honing.stages import register as register_stage
from honing.stages import start as start_stage
from honing.stages import steps
from honing.stages.context import RunRef
from honing.stages.summary import TrainingSummary
from honing.tracking import fail_run
from honing_flows import prefect_artifacts
from honing_flows.tasks import compute_task, io_task, logged, run_log, told


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


validate = io_task(told(steps.validate))
validation_gate = compute_task(steps.validation_gate)
unchanged = io_task(told(steps.unchanged))
prepare = compute_task(told(steps.prepare))
# the expensive, pure stages: each result kept and reused by honing (StageStore)
search = compute_task(told(steps.search))
choose = compute_task(told(steps.choose))
nested_cv = compute_task(steps.nested_cv)
refit = compute_task(told(steps.refit))
rebuild = compute_task(told(steps.rebuild))
evaluate = compute_task(told(steps.evaluate))
explain = compute_task(told(steps.explain))
log_evaluation = io_task(steps.log_evaluation)
quality_gate = compute_task(steps.quality_gate)
compress = compute_task(told(steps.compress))
# retried: registration first looks for a version of this run, so a retry never duplicates
register = io_task(told(steps.register))


@io_task
def finish(
    started: start_stage.Started,
    prepared: prepare_stage.Prepared,
    fitted: evaluate_stage.Fitted,
    registered: register_stage.Registered,
    timings: dict[str, float],
) -> TrainingSummary:
    """The library's finish, then the summary as Prefect Markdown and link artifacts."""
    return prefect_artifacts.published(
        steps.finish(
            started=started,
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
