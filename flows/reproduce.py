"""``reproduce_pipeline``: rebuild a registered version from its lineage and compare metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from honing_flows.flows.steps import connect_services, fit_and_evaluate
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import reproduce as repro_tasks
from honing_flows.tasks import setup as setup_tasks


@flow(name="reproduce_pipeline", log_prints=True, validate_parameters=True)
def reproduce_pipeline(
    model_name: str,
    version: str,
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    tolerance: float = 0.005,
) -> dict[str, Any]:
    """Fetch the version's data through DVC, retrain with its config, compare its metrics."""
    settings = connect_services(env_path)
    lineage = repro_tasks.version_lineage(model_name, version)
    dest = Path(repo) / ".honing" / "reproduce" / f"{model_name}-v{version}" / "data.csv"
    data_path = repro_tasks.fetch_data_version(repo, lineage, dest)
    cfg = repro_tasks.lineage_config(lineage, data_path, repo)
    raw = data_tasks.load_table(data_path, cfg.data.format)
    search_name = setup_tasks.search_name(cfg.name, cfg.content_hash, None, False)
    fitted = fit_and_evaluate(cfg, raw, settings, search_name)
    report = repro_tasks.compare(lineage, fitted.evaluation.metrics, tolerance)
    repro_tasks.reproducibility_gate(report)
    return {**report.to_dict(), "data_path": str(data_path), "git_commit": lineage.git_commit}
