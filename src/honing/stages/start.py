"""Starting a run: the config, the services of the environment profile, and the MLflow run."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from honing import config, metrics, runtime, tracking
from honing.config import EnvSettings, PipelineConfig
from honing.registry.aliases import served_name
from honing.stages.context import RunRef
from honing.tracking import links, stale


@dataclass(frozen=True)
class Started:
    """A run under way: its config, the services it talks to and where it is tracked.
    ``started``: ``time.monotonic()`` when it began (the time budget counts from there)."""

    cfg: PipelineConfig
    settings: EnvSettings
    run: RunRef
    healed: stale.Healed
    started: float

    def log_lines(self) -> list[str]:
        return [
            *self.healed.log_lines(),
            f"{self.cfg.name}: MLflow run {self.run.run_id} in experiment "
            f"{self.cfg.tracking.experiment!r} ({self.settings.profile} profile)",
        ]


def connect(env_path: str | None, environ: MutableMapping[str, str]) -> EnvSettings:
    """Quiet the process, load the environment profile, and point Ray and MLflow at it
    (failing early, with a :class:`~honing.exceptions.ServiceError`, when the tracking
    server is unreachable)."""
    runtime.quiet_environment(environ)
    settings = config.load_env_settings(env_path, environ=environ)
    environ.update(runtime.ray_environment(settings.ray.address))
    tracking.configure(settings.mlflow)  # a tracking server must answer first
    return settings


def load(config_path: str, environ: MutableMapping[str, str]) -> PipelineConfig:
    """The pipeline config at ``config_path`` (data folders outside the project as the
    environment allows)."""
    return config.load_config(Path(config_path), extra_roots=config.data_roots(environ))


def review_tags(cfg: PipelineConfig) -> dict[str, str]:
    """The experiment's review view (:func:`honing.tracking.links.review_view`) for the task's test
    metrics, best by the search's metric, and its kind (classic model training)."""
    task = "regression" if cfg.task == "regression" else "classification"
    others = [m.name for m in metrics.METRICS.values() if m.task == task]
    return links.review_view(
        cfg.search.metric,
        others,
        lower_is_better=metrics.lower_is_better(cfg.search.metric),
        now_ms=int(time.time() * 1000),
    )


def start(
    config_path: str,
    env_path: str | None,
    *,
    run_name: str,
    tags: dict[str, str],
    environ: MutableMapping[str, str],
    started_at: float | None = None,
) -> Started:
    """Load the config, connect to the services, heal what killed runs left behind, and
    start the training run (named ``run_name``, tagged with ``tags``). The time budget
    counts from ``started_at`` (``time.time()`` seconds; now when None)."""
    started = time.monotonic()
    if started_at is not None:  # the command's start, as a point of the monotonic clock
        started -= max(0.0, time.time() - started_at)
    cfg = load(config_path, environ)
    settings = connect(env_path, environ)
    experiment_id = tracking.ensure_experiment(
        cfg.tracking.experiment, settings.mlflow.artifact_root
    )
    tracking.set_experiment_tags(experiment_id, review_tags(cfg))
    name = cfg.registry.model_name
    healed = stale.heal(experiment_id, [name, served_name(name)])
    run_id = tracking.start_run(
        experiment_id,
        run_name or f"{cfg.name} train",
        {"honing.kind": "training", "honing.profile": settings.profile, **tags},
    )
    return Started(
        cfg=cfg,
        settings=settings,
        run=RunRef(run_id, experiment_id, settings.mlflow.tracking_uri),
        healed=healed,
        started=started,
    )
