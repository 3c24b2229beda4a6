"""MLflow logging tasks (all I/O, all retried)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from honing import tracking
from honing_flows.tasks import io_task


@io_task
def start_run(experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
    return tracking.start_run(experiment_id, run_name, tags)


@io_task
def end_run(run_id: str, status: str) -> None:
    tracking.end_run(run_id, status)


@io_task
def set_tags(run_id: str, tags: dict[str, Any]) -> None:
    tracking.set_tags(run_id, tags)


@io_task
def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    tracking.log_metrics(run_id, metrics)


@io_task(run_name="log_json({artifact_file})")
def log_json(run_id: str, payload: Any, artifact_file: str, repo: str | None = None) -> None:
    tracking.log_json(run_id, payload, artifact_file, root=repo)


@io_task(run_name="log_artifact({folder})")
def log_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    tracking.log_artifact(run_id, path, folder)
