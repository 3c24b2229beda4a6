"""Monitoring tasks: check a batch against the champion, decide, record the decision."""

from __future__ import annotations

from pathlib import Path

from honing import monitoring, registry
from honing.config import MonitoringConfig, PipelineConfig
from honing.stages import monitor as monitor_stage
from honing_flows.tasks import compute_task, io_task, logged


@io_task(run_name="monitor({batch_path})")
def monitor(
    cfg: PipelineConfig, batch_path: str, experiment_id: str, tracking_uri: str, repo: str
) -> monitor_stage.Monitored:
    return logged(
        monitor_stage.monitor(
            cfg,
            Path(batch_path),
            experiment_id=experiment_id,
            tracking_uri=tracking_uri,
            repo=repo,
        )
    )


@compute_task
def drift_gate(report: monitoring.DriftReport, cfg: MonitoringConfig) -> monitoring.RetrainDecision:
    return logged(monitoring.gate(report, cfg))


@io_task
def record_decision(
    monitored: monitor_stage.Monitored, decision: monitoring.RetrainDecision
) -> None:
    monitor_stage.record_decision(monitored, decision)


@io_task(run_name="follow-challenger({batch_path})")
def follow_challenger(
    cfg: PipelineConfig, batch_path: str, repo: str
) -> registry.ChallengerFollowed:
    return logged(monitor_stage.follow_challenger(cfg, Path(batch_path), repo=repo))
