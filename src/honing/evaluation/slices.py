"""Slices and fairness: test metrics per group of rows, gates on them, and fairness
differences for sensitive columns (fairlearn).

A slice is the test rows sharing one value of a column named in ``evaluation.slices``
(numeric columns with many values are cut into quartiles). Each gets every metric of the
task under the model's decision rule, with its row count. :func:`slice_gate` checks a
minimum and a maximum gap to the overall figure; :func:`slice_regressions` compares a
challenger with the champion slice by slice (the promotion gate's non-inferiority check).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from honing.config import EvaluationConfig, SliceGateConfig
from honing.metrics import METRICS, lower_is_better
from honing.modeling.decision import Answers, DecisionRule, answers

#: A numeric column with more distinct values than this is cut into quartiles.
MAX_LEVELS = 12


@dataclass(frozen=True)
class Slice:
    column: str
    value: str
    rows: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class SliceReport:
    metric: str
    overall: dict[str, float]
    slices: list[Slice]
    fairness: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> dict[str, list[Any]]:
        """Column-oriented (MLflow ``log_table``): one row per slice."""
        names = list(self.overall)
        cols: dict[str, list[Any]] = {k: [] for k in ("column", "value", "rows", *names)}
        for s in self.slices:
            cols["column"].append(s.column)
            cols["value"].append(s.value)
            cols["rows"].append(s.rows)
            for k in names:
                cols[k].append(round(s.metrics.get(k, math.nan), 6))
        return cols

    def log_lines(self) -> list[str]:
        lines = []
        for column in dict.fromkeys(s.column for s in self.slices):
            parts = ", ".join(
                f"{s.value} {s.metrics.get(self.metric, math.nan):.3f} (n={s.rows})"
                for s in self.slices
                if s.column == column
            )
            lines.append(f"slices: {self.metric} by {column}: {parts}")
        for column, diffs in self.fairness.items():
            words = ", ".join(f"{k} {v:.3f}" for k, v in diffs.items())
            lines.append(f"fairness: {column}: {words}")
        return lines + [f"slices: {n}" for n in self.notes]


def evaluate_slices(
    model: Any,
    rule: DecisionRule | None,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: list[Any],
    cfg: EvaluationConfig,
    *,
    metric: str,
    task: str,
) -> SliceReport | None:
    """:func:`slice_report` of ``model``'s answers under ``rule`` for the configured slices
    and sensitive columns (None when neither is configured)."""
    if not cfg.slices and not cfg.sensitive:
        return None
    return slice_report(
        X,
        y,
        answers(model, X, classes, rule),
        columns=list(cfg.slices),
        sensitive=list(cfg.sensitive),
        metric=metric,
        task=task,
    )


def groups(X: pd.DataFrame, column: str) -> pd.Series:
    """The slice label of each row for ``column``: its value, or its quartile when the
    column is numeric with many values; missing values form their own slice."""
    values = X[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_LEVELS:
        binned = pd.qcut(values, 4, duplicates="drop")
        labels = binned.astype(str)
    else:
        labels = values.astype(str)
    return labels.where(values.notna(), "missing")


def _metrics(y: np.ndarray, answers: Answers, task_metrics: list[str]) -> dict[str, float]:
    out = {}
    for name in task_metrics:
        try:
            out[name] = answers.score(name, y)
        except ValueError:  # e.g. ROC-AUC on a slice of one class
            out[name] = math.nan
    return out


def _subset(answers: Answers, rows: np.ndarray) -> Answers:
    return Answers(answers.values[rows], None if answers.codes is None else answers.codes[rows])


def slice_report(
    X: pd.DataFrame,
    y: np.ndarray,
    answers: Answers,
    *,
    columns: list[str],
    sensitive: list[str],
    metric: str,
    task: str,
) -> SliceReport:
    """Every metric of ``task`` overall and per slice of each of ``columns``, and the
    demographic-parity and equalized-odds differences for each ``sensitive`` column
    (binary tasks)."""
    y = np.asarray(y)
    names = [m.name for m in METRICS.values() if m.task == task]
    overall = _metrics(y, answers, names)
    slices, notes = [], []
    for column in columns:
        labels = groups(X, column).to_numpy()
        for value in sorted(set(labels), key=str):
            rows = np.flatnonzero(labels == value)
            slices.append(
                Slice(
                    column, str(value), len(rows), _metrics(y[rows], _subset(answers, rows), names)
                )
            )
    fairness = {}
    binary = answers.codes is not None and answers.values.ndim == 2 and answers.values.shape[1] == 2
    if sensitive and not binary:
        notes.append("fairness differences are computed for binary classification only")
    for column in sensitive if binary else []:
        fairness[column] = _fairness(y, np.asarray(answers.codes), groups(X, column))
    return SliceReport(metric, overall, slices, fairness, notes)


def _fairness(y: np.ndarray, codes: np.ndarray, group: pd.Series) -> dict[str, float]:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    return {
        "demographic_parity_difference": float(
            demographic_parity_difference(y, codes, sensitive_features=group.to_numpy())
        ),
        "equalized_odds_difference": float(
            equalized_odds_difference(y, codes, sensitive_features=group.to_numpy())
        ),
    }


def _worse_by(metric: str, value: float, reference: float) -> float:
    """How much ``value`` is worse than ``reference`` (positive: worse)."""
    return value - reference if lower_is_better(metric) else reference - value


def slice_gate(report: SliceReport, cfg: SliceGateConfig) -> list[str]:
    """The slice gate's failures in words (empty: passed): slices of at least
    ``cfg.min_rows`` rows whose metric is below ``cfg.minimum`` or more than
    ``cfg.max_gap`` worse than the overall figure; fairness differences above
    ``cfg.max_fairness_difference``."""
    metric = cfg.metric or report.metric
    failures = []
    overall = report.overall.get(metric, math.nan)
    for s in report.slices:
        value = s.metrics.get(metric, math.nan)
        if s.rows < cfg.min_rows or not math.isfinite(value):
            continue
        where = f"{s.column}={s.value} ({s.rows} rows)"
        if cfg.minimum is not None and _worse_by(metric, value, cfg.minimum) > 0:
            failures.append(f"{where}: {metric} {value:.4f} past the minimum {cfg.minimum:g}")
        if cfg.max_gap is not None and _worse_by(metric, value, overall) > cfg.max_gap:
            failures.append(
                f"{where}: {metric} {value:.4f} is more than {cfg.max_gap:g} worse than "
                f"overall {overall:.4f}"
            )
    if cfg.max_fairness_difference is not None:
        for column, diffs in report.fairness.items():
            for name, value in diffs.items():
                if value > cfg.max_fairness_difference:
                    failures.append(
                        f"{column}: {name} {value:.4f} above {cfg.max_fairness_difference:g}"
                    )
    return failures


def slice_regressions(
    X: pd.DataFrame,
    y: np.ndarray,
    challenger: Answers,
    champion: Answers,
    *,
    columns: list[str],
    metric: str,
    tolerance: float,
    min_rows: int,
) -> list[str]:
    """Slices (of at least ``min_rows`` rows) where the challenger is more than
    ``tolerance`` worse than the champion on the same rows, in words."""
    y = np.asarray(y)
    out = []
    for column in columns:
        labels = groups(X, column).to_numpy()
        for value in sorted(set(labels), key=str):
            rows = np.flatnonzero(labels == value)
            if len(rows) < min_rows:
                continue
            mine = _metrics(y[rows], _subset(challenger, rows), [metric])[metric]
            theirs = _metrics(y[rows], _subset(champion, rows), [metric])[metric]
            if math.isfinite(mine) and math.isfinite(theirs):
                if _worse_by(metric, mine, theirs) > tolerance:
                    out.append(
                        f"{column}={value} ({len(rows)} rows): {metric} {mine:.4f} vs champion "
                        f"{theirs:.4f}"
                    )
    return out


def plot_slices(report: SliceReport) -> Any:
    """The metric per slice, one panel row per column, with the overall figure as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(s.column for s in report.slices))
    fig, axes = plt.subplots(len(columns), 1, figsize=(6, 2.2 * len(columns)), squeeze=False)
    for ax, column in zip(axes[:, 0], columns, strict=True):
        rows = [s for s in report.slices if s.column == column]
        ax.barh(
            [f"{s.value} (n={s.rows})" for s in rows],
            [s.metrics.get(report.metric, math.nan) for s in rows],
        )
        ax.axvline(report.overall.get(report.metric, math.nan), color="red", ls="--", lw=0.9)
        ax.set_title(f"{report.metric} by {column} (red: overall)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig
