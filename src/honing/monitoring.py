"""Drift monitoring with Evidently: a report on a current batch against the champion's reference
data, then a separate pure gate that decides whether to retrain."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.config import MonitoringConfig
from honing.metrics import lower_is_better, passes


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    drifted_share: float
    performance: dict[str, float] = field(default_factory=dict)  # current batch, if labeled
    reference_performance: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted}


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: list[str]


def _is_p_value(method: str) -> bool:
    return "p_value" in method.lower()


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    html_path: Path | None = None,
) -> DriftReport:
    """Per-column data drift (Evidently's DataDriftPreset: K-S / chi-square on small samples,
    Wasserstein / Jensen-Shannon on large ones). Writes Evidently's HTML to ``html_path``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*numeric, *categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    if html_path is not None:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    drifts = []
    for metric in snapshot.dict()["metrics"]:
        cfg = metric["config"]
        if not cfg.get("type", "").endswith("ValueDrift"):
            continue
        score, threshold = float(metric["value"]), float(cfg["threshold"])
        method = str(cfg.get("method", ""))
        drifted = score < threshold if _is_p_value(method) else score >= threshold
        drifts.append(ColumnDrift(cfg["column"], method, score, threshold, drifted))
    share = sum(d.drifted for d in drifts) / len(drifts) if drifts else 0.0
    return DriftReport(len(reference), len(current), drifts, share)


def with_performance(
    report: DriftReport, current: dict[str, float], reference: dict[str, float]
) -> DriftReport:
    """The report plus the champion's metrics on the labeled batch and at registration."""
    return DriftReport(
        report.reference_rows,
        report.current_rows,
        report.columns,
        report.drifted_share,
        dict(current),
        dict(reference),
    )


def gate(report: DriftReport, cfg: MonitoringConfig) -> RetrainDecision:
    """Retrain when the share of drifted columns reaches ``drift_share`` or when the monitored
    metric fell by more than ``max_metric_drop`` on a labeled batch."""
    reasons = []
    if report.drifted_share >= cfg.drift_share:
        reasons.append(
            f"{report.drifted_share:.0%} of columns drifted (threshold "
            f"{cfg.drift_share:.0%}): {', '.join(report.drifted)}"
        )
    metric = cfg.metric
    if metric in report.performance and metric in report.reference_performance:
        before, now = report.reference_performance[metric], report.performance[metric]
        measured = bool(np.isfinite(now) and np.isfinite(before))
        if measured and not passes(metric, now, before, cfg.max_metric_drop):
            reasons.append(
                f"{metric} {'rose' if lower_is_better(metric) else 'fell'} by "
                f"{abs(now - before):.4f} (from {before:.4f} to {now:.4f}; allowed "
                f"{cfg.max_metric_drop})"
            )
    return RetrainDecision(bool(reasons), reasons or ["no drift beyond the thresholds"])
