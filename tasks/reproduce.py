"""Tasks of the reproduce flow."""

from __future__ import annotations

from pathlib import Path

from honing.config import PipelineConfig
from honing.stages import reproduce
from honing_flows.tasks import compute_task, io_task


@io_task
def version_lineage(name: str, version: str) -> reproduce.VersionLineage:
    return reproduce.version_lineage(name, version)


@io_task
def recorded_choice(lineage: reproduce.VersionLineage) -> reproduce.RecordedChoice | None:
    return reproduce.recorded_choice(lineage.run_id)


@io_task
def fetch_data_version(repo: str, lineage: reproduce.VersionLineage, dest: Path) -> Path:
    return reproduce.fetch_data_version(
        Path(repo), lineage.data_path, lineage.data_md5, lineage.git_commit, dest
    )


@compute_task
def lineage_config(lineage: reproduce.VersionLineage, data_path: Path, repo: str) -> PipelineConfig:
    return reproduce.lineage_config(lineage, data_path, Path(repo))


@compute_task
def compare(
    lineage: reproduce.VersionLineage, metrics: dict[str, float], tolerance: float
) -> reproduce.ReproReport:
    return reproduce.compare(lineage, metrics, tolerance)


@compute_task
def reproducibility_gate(report: reproduce.ReproReport) -> None:
    reproduce.gate(report)
