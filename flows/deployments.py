"""Deployments that `honing serve` runs in one process (Prefect's `serve`): scheduled
retraining, retraining on a data-change event and on a drift event, scheduled monitoring,
and the data watcher.
prefect.yaml declares the same deployments for a Prefect server with workers."""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger

from honing_flows.flows.monitoring import DRIFT_DETECTED, monitoring_pipeline
from honing_flows.flows.training import training_pipeline
from honing_flows.flows.watch import DATA_CHANGED, watch_data

#: One run at a time per deployment. Retraining queues (a trigger during a run waits for it);
#: the watcher and the monitor drop a run that would overlap the one in progress, so that
#: scheduled work never piles up behind a slow retraining.
QUEUE_OF_ONE = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
SKIP_IF_BUSY = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


def build_deployments(
    *,
    config_path: str,
    env_path: str,
    watch_paths: list[str],
    batch_path: str | None,
    retrain_cron: str | None,
    monitor_cron: str | None,
    watch_interval_s: float,
    repo: str = ".",
) -> list[Any]:
    train_params = {"config_path": config_path, "env_path": env_path, "repo": repo}
    deployments = [
        training_pipeline.to_deployment(
            name="retrain-scheduled",
            cron=retrain_cron,
            parameters=train_params,
            concurrency_limit=QUEUE_OF_ONE,
            description="Retrain, gate and register on a schedule.",
        ),
        training_pipeline.to_deployment(
            name="retrain-on-data-change",
            parameters={**train_params, "resume_search": False},
            triggers=[
                DeploymentEventTrigger(
                    name="data changed",
                    expect={DATA_CHANGED},
                    match={"prefect.resource.id": "honing.data.*"},
                )
            ],
            concurrency_limit=QUEUE_OF_ONE,
            description=f"Retrain when a watched file changes ({DATA_CHANGED} event).",
        ),
        training_pipeline.to_deployment(
            name="retrain-on-drift",
            parameters={**train_params, "resume_search": False},
            triggers=[
                DeploymentEventTrigger(
                    name="drift detected",
                    expect={DRIFT_DETECTED},
                    match={"prefect.resource.id": "honing.model.*"},
                )
            ],
            concurrency_limit=QUEUE_OF_ONE,
            description=f"Retrain when monitoring finds drift ({DRIFT_DETECTED} event).",
        ),
        watch_data.to_deployment(
            name="watch-data",
            interval=watch_interval_s,
            parameters={"paths": watch_paths, "state_path": f"{repo}/.honing/watch_state.json"},
            concurrency_limit=SKIP_IF_BUSY,
            description="Hash the watched data files; emit an event on change.",
        ),
    ]
    if batch_path:
        deployments.append(
            monitoring_pipeline.to_deployment(
                name="monitor",
                cron=monitor_cron,
                # new rows come in through `honing ingest`, whose data change the watcher
                # turns into a retraining; the scheduled check looks at the batch, decides
                # and emits its event, which the retrain-on-drift deployment acts on
                parameters={
                    **train_params,
                    "batch_path": batch_path,
                    "ingest": False,
                    "retrain": False,
                },
                concurrency_limit=SKIP_IF_BUSY,
                description="Drift check of the current batch; retrains on drift.",
            )
        )
    return deployments


def serve_deployments(deployments: list[Any]) -> None:
    """Run the deployments from this process until interrupted."""
    serve(*deployments)
