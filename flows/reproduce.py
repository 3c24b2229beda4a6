"""``reproduce_pipeline``: rebuild a registered version from its lineage and compare metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from honing.stages import pipeline
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import reproduce as repro_tasks
from honing_flows.tasks import stages


@flow(name="reproduce_pipeline", log_prints=True, validate_parameters=True)
def reproduce_pipeline(
    model_name: str,
    version: str,
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    tolerance: float = 1e-6,
    search_again: bool = False,
) -> dict[str, Any]:
    """Fetch the version's data through DVC, refit the model its training run recorded
    (spec and decision rule) on the same split, and compare its metrics. Nothing is reused
    from earlier runs. ``search_again`` (and a version that recorded no spec) runs the whole
    search again under the version's config instead."""
    settings = stages.connect(env_path)
    lineage = repro_tasks.version_lineage(model_name, version)
    dest = Path(repo) / ".honing" / "reproduce" / f"{model_name}-v{version}" / "data.csv"
    data_path = repro_tasks.fetch_data_version(repo, lineage, dest)
    cfg = repro_tasks.lineage_config(lineage, data_path, repo)
    raw = data_tasks.load_table(data_path, cfg.data)
    recorded = None if search_again else repro_tasks.recorded_choice(lineage)
    # the model the version recorded, or (asked, or none recorded) a search under its config
    evaluated = pipeline.reproduce(stages, cfg, raw, lineage, recorded, ray=settings.ray)
    report = repro_tasks.compare(lineage, evaluated.report.metrics, tolerance)
    repro_tasks.reproducibility_gate(report)
    return {
        **report.to_dict(),
        "data_path": str(data_path),
        "git_commit": lineage.git_commit,
        "from_recorded_choice": recorded is not None,
    }
