"""Monitoring tasks: champion lookup, drift report, performance, gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from honing import data, monitoring, registry
from honing.config import MonitoringConfig
from honing.features import FeatureColumns
from honing_flows.tasks import compute_task, io_task


@io_task
def champion_version(name: str, alias: str) -> str | None:
    return registry.champion_version(name, alias)


@compute_task
def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: FeatureColumns,
    html_path: Path,
    cfg: MonitoringConfig,
) -> monitoring.DriftReport:
    return monitoring.drift_report(
        reference,
        current,
        numeric=columns.numeric,
        categorical=columns.categorical,
        html_path=html_path,
        method=cfg.drift_method,
        max_rows=cfg.max_rows,
    )


@io_task
def estimate_champion(name: str, version: str, X: pd.DataFrame) -> dict[str, float]:
    return monitoring.estimate_champion(name, version, X)


@compute_task
def with_estimate(
    report: monitoring.DriftReport, estimated: dict[str, float], reference: dict[str, float]
) -> monitoring.DriftReport:
    return monitoring.with_estimate(report, estimated, reference)


@compute_task
def encode_target(labels: pd.Series, positive_label: object, task: str) -> tuple:
    return data.target_values(labels, task, positive_label)


@compute_task
def with_performance(
    report: monitoring.DriftReport, current: dict[str, float], reference: dict[str, float]
) -> monitoring.DriftReport:
    return monitoring.with_performance(report, current, reference)


@compute_task
def drift_gate(report: monitoring.DriftReport, cfg: MonitoringConfig) -> monitoring.RetrainDecision:
    return monitoring.gate(report, cfg)
