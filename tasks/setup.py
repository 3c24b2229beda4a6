"""Configuration and tracking setup tasks."""

from __future__ import annotations

import os
from pathlib import Path

from honing import config, runtime, stale, tracking
from honing import lineage as lineage_mod
from honing_flows.tasks import compute_task, io_task, logged


@compute_task
def quiet_environment() -> None:
    runtime.quiet_environment(os.environ)


@compute_task
def ray_environment(settings: config.RaySettings) -> None:
    os.environ.update(runtime.ray_environment(settings.address))


@io_task
def load_pipeline_config(path: str) -> config.PipelineConfig:
    return config.load_config(Path(path), extra_roots=config.data_roots(os.environ))


@io_task
def load_env_settings(path: str | None) -> config.EnvSettings:
    return config.load_env_settings(path, environ=os.environ)


@io_task
def check_tracking(settings: config.MlflowSettings) -> None:
    tracking.ping(settings.tracking_uri)


@compute_task
def configure_tracking(settings: config.MlflowSettings) -> None:
    tracking.configure(settings)


@io_task
def ensure_experiment(name: str, artifact_root: str | None) -> str:
    return tracking.ensure_experiment(name, artifact_root)


@compute_task
def search_name(
    name: str, config_hash: str, lineage: lineage_mod.Lineage | None, resume: bool
) -> str:
    return tracking.search_name(name, config_hash, lineage, resume=resume)


@io_task
def build_lineage(
    data_path: Path, data_md5: str, repo: str, config_hash: str, config_path: str, flow_run_id: str
) -> lineage_mod.Lineage:
    return lineage_mod.build_lineage(
        data_path=Path(data_path),
        data_md5=data_md5,
        repo=Path(repo),
        config_hash=config_hash,
        config_path=config_path,
        flow_run_id=flow_run_id,
    )


@io_task
def heal_stale(experiment_id: str, model_names: list[str]) -> stale.Healed:
    return logged(stale.heal(experiment_id, model_names))
