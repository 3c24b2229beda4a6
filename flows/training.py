"""``training_pipeline``: start, validate, prepare, search, choose, refit, evaluate, explain,
gate, compress, register, finish.

The flow only composes: it starts the run, then hands :func:`honing.stages.pipeline.train`
its tasks, one per stage of :mod:`honing.stages`, to run in the library's order. A flow run
is about fifteen task runs, each named for its stage, each logging its scores and
decisions.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from honing.stages import pipeline
from honing.stages.summary import TrainingSummary
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
    # the library's stage order, each stage one of this flow's tasks
    return pipeline.train(
        stages,
        started,
        repo=repo,
        config_path=config_path,
        flow_run_id=flow_run_id,
        resume_search=resume_search,
        force=force,
    )
