"""MLflow logging tasks (all I/O, all retried)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from honing import model_logging, tracking
from honing.compression import CompressionChoice, CompressionReport
from honing.config import PipelineConfig
from honing.decision import DecisionRule
from honing.search import SearchResult
from honing.slices import SliceReport
from honing.summary import TrainingSummary
from honing_flows import prefect_artifacts
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
def log_params(run_id: str, params: dict[str, Any]) -> None:
    tracking.log_params(run_id, params)


@io_task
def log_metrics(run_id: str, metrics: dict[str, float]) -> None:
    tracking.log_metrics(run_id, metrics)


@io_task(run_name="log_json[{artifact_file}]")
def log_json(run_id: str, payload: Any, artifact_file: str, repo: str | None = None) -> None:
    tracking.log_json(run_id, payload, artifact_file, root=repo)


@io_task(run_name="log_artifact[{folder}]")
def log_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    tracking.log_artifact(run_id, path, folder)


@io_task
def log_figures(run_id: str, figures: dict[str, Any]) -> None:
    tracking.log_figures(run_id, figures)


@io_task
def log_config(run_id: str, cfg: PipelineConfig, repo: str) -> None:
    tracking.log_config(run_id, cfg, Path(repo))


@io_task
def log_summary(run_id: str, summary: TrainingSummary) -> None:
    tracking.log_summary(run_id, summary.markdown())


@io_task(run_name="log_dataset[{source}]")
def log_dataset(run_id: str, df: pd.DataFrame, source: str, name: str, digest: str) -> None:
    tracking.log_dataset(run_id, df, source=source, name=name, digest=digest)


@io_task
def publish_summary(summary: TrainingSummary) -> str:
    """The run's summary as a Prefect Markdown artifact, with a link artifact to the MLflow
    run (the flow run's Artifacts tab)."""
    return prefect_artifacts.publish(summary)


@io_task
def log_trials(parent_run_id: str, experiment_id: str, result: SearchResult) -> list[str]:
    return tracking.log_trials(parent_run_id, experiment_id, result)


@io_task
def log_model(
    run_id: str,
    model: Any,
    input_example: Any,
    rule: DecisionRule,
    name: str,
    metrics: dict[str, float],
) -> str:
    return model_logging.log_native_model(
        run_id, model, input_example, rule, name=name, metrics=metrics
    )


@io_task
def log_compression(
    run_id: str,
    report: CompressionReport,
    choice: CompressionChoice,
    figure: Figure,
) -> None:
    tracking.log_compression(run_id, report, choice, figure)


@io_task
def log_served_model(
    run_id: str,
    files: dict[str, bytes],
    input_example: Any,
    name: str,
    metrics: dict[str, float],
) -> str:
    return model_logging.log_served_model(run_id, files, input_example, name, metrics)


@io_task
def log_slices(run_id: str, report: SliceReport) -> None:
    tracking.log_slices(run_id, report)
