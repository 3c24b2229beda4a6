"""Drift monitoring with Evidently: a report on a current batch against the champion's reference
data, then a separate pure gate that decides whether to retrain."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
    estimated: dict[str, float] = field(default_factory=dict)  # without labels (estimate)

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


#: Effect-size drift: Evidently's stattests and their thresholds (normed Wasserstein distance
#: for numbers, population stability index for categories): unlike p-values, they do not
#: flag trivial shifts because a batch is large.
EFFECT_SIZE = {"num_method": "wasserstein", "num_threshold": 0.1, "cat_method": "psi",
               "cat_threshold": 0.2}  # fmt: skip


def capped(df: pd.DataFrame, max_rows: int | None, seed: int = 0) -> pd.DataFrame:
    """``df``, or a seeded sample of ``max_rows`` of its rows when it is larger."""
    if max_rows is None or len(df) <= max_rows:
        return df
    return df.sample(n=max_rows, random_state=seed)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    html_path: Path | None = None,
    method: str = "auto",
    max_rows: int | None = None,
) -> DriftReport:
    """Per-column data drift. ``method`` ``auto``: Evidently's DataDriftPreset defaults (K-S /
    chi-square p-values on small samples, Wasserstein / Jensen-Shannon on large ones);
    ``effect_size``: :data:`EFFECT_SIZE` whatever the size. Both tables are sampled down to
    ``max_rows`` first (the row counts reported are the batch's own). Writes Evidently's HTML
    to ``html_path``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rows = (len(reference), len(current))
    reference, current = capped(reference, max_rows), capped(current, max_rows)
    columns = [*numeric, *categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(**EFFECT_SIZE) if method == "effect_size" else DataDriftPreset()
    snapshot = Report([preset]).run(
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
    return DriftReport(rows[0], rows[1], drifts, share)


def with_performance(
    report: DriftReport, current: dict[str, float], reference: dict[str, float]
) -> DriftReport:
    """The report plus the champion's metrics on the labeled batch and at registration."""
    return replace(report, performance=dict(current), reference_performance=dict(reference))


def with_estimate(
    report: DriftReport, estimated: dict[str, float], reference: dict[str, float]
) -> DriftReport:
    """The report plus the champion's estimated metrics on an unlabeled batch."""
    return replace(report, estimated=dict(estimated), reference_performance=dict(reference))


def estimate_performance(proba: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """Metrics expected on an unlabeled batch from a model's calibrated probabilities
    (confidence-based performance estimation, as NannyML's CBPE does; NannyML itself pins
    LightGBM < 4.6 and does not co-install): each row counts as P(positive) of a positive and
    1 - P(positive) of a negative, so the confusion counts, and the metrics built from them,
    are expectations. Binary tasks: accuracy, precision, recall, F1 and ROC-AUC; multiclass:
    accuracy. Only as good as the calibration, which the decision rule checked in CV."""
    proba = np.asarray(proba, dtype=np.float64)
    codes = np.asarray(codes)
    if proba.shape[1] != 2:
        return {"accuracy": float(np.mean(proba[np.arange(len(proba)), codes]))}
    p, decided = proba[:, 1], codes == 1
    tp, fp = float(p[decided].sum()), float((1 - p)[decided].sum())
    fn, tn = float(p[~decided].sum()), float((1 - p)[~decided].sum())
    out = {
        "accuracy": (tp + tn) / len(p),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
    }
    # ROC-AUC: expected true and false positive rates, sweeping the score from the top
    order = np.argsort(-p, kind="stable")
    pos, neg = np.cumsum(p[order]), np.cumsum(1 - p[order])
    tpr = np.concatenate([[0.0], pos / pos[-1]]) if pos[-1] > 0 else None
    fpr = np.concatenate([[0.0], neg / neg[-1]]) if neg[-1] > 0 else None
    if tpr is not None and fpr is not None:
        out["roc_auc"] = float(np.trapezoid(tpr, fpr))
    return {k: float(v) for k, v in out.items()}


def estimate_champion(name: str, version: str, X: pd.DataFrame) -> dict[str, float]:
    """:func:`estimate_performance` of version ``version`` of ``name`` on the unlabeled
    batch ``X`` (empty for regression, or for a model registered without a decision rule)."""
    from honing.decision import Decided
    from honing.registry import load_model

    model = load_model(f"models:/{name}/{version}")
    if not isinstance(model, Decided) or not model.rule.classes:
        return {}
    proba = model.predict_proba(X)
    return estimate_performance(proba, model.rule.codes(proba))


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
    for kind, values in (("", report.performance), ("estimated ", report.estimated)):
        if metric not in values or metric not in report.reference_performance:
            continue
        before, now = report.reference_performance[metric], values[metric]
        measured = bool(np.isfinite(now) and np.isfinite(before))
        if measured and not passes(metric, now, before, cfg.max_metric_drop):
            reasons.append(
                f"{kind}{metric} {'rose' if lower_is_better(metric) else 'fell'} by "
                f"{abs(now - before):.4f} (from {before:.4f} to {now:.4f}; allowed "
                f"{cfg.max_metric_drop})"
            )
        break  # measured performance, when there is any, outranks the estimate
    return RetrainDecision(bool(reasons), reasons or ["no drift beyond the thresholds"])
