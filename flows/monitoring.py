"""``monitoring_pipeline``: a batch checked against the champion (drift weighted by what the
champion relies on, its answers, its performance), a pure gate, the batch kept as a data
version when it has labels, and retraining on that newest version when the gate says so."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.events import emit_event

from honing.stages.monitor import MonitoringSummary
from honing_flows.flows.training import training_pipeline
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import monitoring as monitoring_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import stages


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"monitor {Path(flow_run.parameters['batch_path']).name}"


#: What the flow emits when its gate says retrain (an automation may act on it).
DRIFT_DETECTED = "honing.drift.detected"


@flow(
    name="monitoring_pipeline",
    flow_run_name=_run_name,
    log_prints=True,
    validate_parameters=True,
)
def monitoring_pipeline(
    batch_path: str,
    config_path: str = "configs/flights.yaml",
    env_path: str | None = "configs/env/local.yaml",
    repo: str = ".",
    retrain: bool = True,
    ingest: bool = True,
) -> MonitoringSummary:
    """Check ``batch_path`` against the current champion. A labelled batch is then ingested
    (``ingest``) as the newest version of the training data, which a retraining uses."""
    cfg = setup_tasks.load_pipeline_config(config_path)
    settings = stages.connect(env_path)
    experiment_id = setup_tasks.ensure_experiment(
        cfg.tracking.experiment, settings.mlflow.artifact_root
    )
    ref = monitoring_tasks.reference(cfg=cfg, repo=repo)
    found = monitoring_tasks.drift(cfg=cfg, ref=ref, batch_path=batch_path, repo=repo)
    found = monitoring_tasks.performance(cfg=cfg, ref=ref, found=found, repo=repo)
    decision = monitoring_tasks.drift_gate(report=found.report, cfg=cfg.monitoring)
    monitored = monitoring_tasks.record(
        cfg=cfg, ref=ref, found=found, decision=decision, experiment_id=experiment_id,
        tracking_uri=settings.mlflow.tracking_uri,
    )  # fmt: skip
    # a labelled batch is evidence on the challenger its test split could not decide
    followed = (
        monitoring_tasks.follow_challenger(cfg=cfg, batch_path=batch_path, repo=repo)
        if monitored.labelled
        else None
    )
    ingested = (
        data_tasks.ingest(cfg=cfg, batch_path=batch_path, repo=repo)
        if ingest and monitored.labelled
        else None
    )
    retrained = None
    if decision.retrain:
        name = cfg.registry.model_name
        emit_event(
            event=DRIFT_DETECTED,
            resource={"prefect.resource.id": f"honing.model.{name}"},
            payload={
                "version": monitored.version,
                "batch": batch_path,
                "reasons": decision.reasons,
                "data_md5": ingested.md5 if ingested else None,
            },
        )
        if retrain:  # a retraining that fails its gates leaves the champion in place
            retrained = training_pipeline(
                config_path=config_path,
                env_path=env_path,
                repo=repo,
                resume_search=False,
                return_state=True,
            )
    completed = retrained is not None and retrained.is_completed()
    return monitoring_tasks.summarize(
        monitored=monitored, decision=decision, followed=followed, ingested=ingested,
        retrained_version=retrained.result().version if completed else None,
        retrain_failed=str(retrained.message) if retrained and not completed else None,
    )  # fmt: skip
