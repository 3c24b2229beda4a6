"""Configuration and tracking setup tasks (the monitoring flow's; the training flow starts
with :func:`honing_flows.tasks.stages.start`)."""

from __future__ import annotations

import os
from pathlib import Path

from honing import config, tracking
from honing_flows import flow_runs
from honing_flows.tasks import io_task, logged


@io_task
def load_pipeline_config(path: str) -> config.PipelineConfig:
    return config.load_config(Path(path), extra_roots=config.data_roots(os.environ))


@io_task
def load_env_settings(path: str | None) -> config.EnvSettings:
    return config.load_env_settings(path, environ=os.environ)


@io_task
def ensure_experiment(name: str, artifact_root: str | None) -> str:
    return tracking.ensure_experiment(name, artifact_root)


@io_task
def settle_flow_runs(flow_run_ids: list[str]) -> flow_runs.Settled:
    return logged(flow_runs.settle(flow_run_ids))
