"""``reproduce_pipeline``: rebuild a registered version from its lineage and compare metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from honing.experiments import search_name
from honing.planner import StageClock
from honing.stages.cache import StageStore
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
    clock = StageClock(cfg.time_budget_s)
    raw = data_tasks.load_table(data_path, cfg.data.format)
    prepared = stages.prepare(cfg=cfg, raw=raw, lineage=lineage, elapsed_s=clock.elapsed())
    recorded = None if search_again else repro_tasks.recorded_choice(lineage)
    if recorded is not None:  # the very model the version was: its spec and its rule
        refit = stages.rebuild(prepared=prepared, recorded=recorded)
    else:  # asked, or a version that recorded no spec: search again, under its config
        name = search_name(cfg.name, cfg.content_hash, None, resume=False)
        off = StageStore.off()  # every stage runs again: nothing is reused, nothing kept
        result = stages.search(
            cfg=cfg, prepared=prepared, ray=settings.ray, experiment_name=name, store=off
        )
        refit_s = prepared.budget.refit_s(clock.left())
        choice = stages.choose(
            cfg=cfg, prepared=prepared, result=result, refit_s=refit_s, store=off
        )
        refit = stages.refit(cfg=cfg, prepared=prepared, choice=choice, store=off)
    evaluated = stages.evaluate(cfg=cfg, prepared=prepared, refit=refit, left_s=clock.left())
    report = repro_tasks.compare(lineage, evaluated.report.metrics, tolerance)
    repro_tasks.reproducibility_gate(report)
    return {
        **report.to_dict(),
        "data_path": str(data_path),
        "git_commit": lineage.git_commit,
        "from_recorded_choice": recorded is not None,
    }
