"""Monitoring tasks, one per stage of :mod:`honing.stages.monitor`: the champion's reference,
the batch's drift, the champion's performance on it, the gate, the record; then the evidence
a labelled batch adds to a waiting challenger."""

from __future__ import annotations

from pathlib import Path

from honing import monitoring, registry
from honing.config import MonitoringConfig, PipelineConfig
from honing.stages import monitor as monitor_stage
from honing_flows.tasks import compute_task, io_task, logged


@io_task
def reference(cfg: PipelineConfig, repo: str) -> monitor_stage.Reference:
    return logged(monitor_stage.reference(cfg, repo=repo))


@io_task(run_name="drift({batch_path})")
def drift(
    cfg: PipelineConfig, ref: monitor_stage.Reference, batch_path: str, repo: str
) -> monitor_stage.Drift:
    return logged(monitor_stage.drift(cfg, ref, Path(batch_path), repo=repo))


@io_task
def performance(
    cfg: PipelineConfig, ref: monitor_stage.Reference, found: monitor_stage.Drift, repo: str
) -> monitor_stage.Drift:
    return monitor_stage.performance(cfg, ref, found, repo=repo)


@compute_task
def drift_gate(report: monitoring.DriftReport, cfg: MonitoringConfig) -> monitoring.RetrainDecision:
    return logged(monitoring.gate(report, cfg))


@io_task
def record(
    cfg: PipelineConfig,
    ref: monitor_stage.Reference,
    found: monitor_stage.Drift,
    decision: monitoring.RetrainDecision,
    experiment_id: str,
    tracking_uri: str,
) -> monitor_stage.Monitored:
    return logged(
        monitor_stage.record(
            cfg, ref, found, decision, experiment_id=experiment_id, tracking_uri=tracking_uri
        )
    )


@io_task(run_name="follow-challenger({batch_path})")
def follow_challenger(
    cfg: PipelineConfig, batch_path: str, repo: str
) -> registry.ChallengerFollowed:
    return logged(monitor_stage.follow_challenger(cfg, Path(batch_path), repo=repo))


@compute_task
def summarize(
    monitored: monitor_stage.Monitored,
    decision: monitoring.RetrainDecision,
    followed: registry.ChallengerFollowed | None,
    ingested: object | None,
    retrained_version: str | None,
    retrain_failed: str | None,
) -> monitor_stage.MonitoringSummary:
    return monitor_stage.summarize(
        monitored, decision, followed=followed, ingested=ingested,
        retrained_version=retrained_version, retrain_failed=retrain_failed,
    )  # fmt: skip
