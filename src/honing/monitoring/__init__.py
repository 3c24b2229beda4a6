"""Drift monitoring with Evidently: a report on a current batch against the champion's reference
data, then a separate pure gate that decides whether to retrain.

The package also holds the data versions the loop ingests (:mod:`~honing.monitoring.versions`)
and a shadowing challenger's live evidence (:mod:`~honing.monitoring.shadow`)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.config import MonitoringConfig
from honing.drift import DRIFT_METHODS, drifted, is_p_value
from honing.metrics import lower_is_better, passes


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


#: Column names for the model's answers and the label in the drift report's tables.
PREDICTION, TARGET = "__prediction__", "__target__"


@dataclass(frozen=True)
class EstimateAudit:
    """The label-free estimate checked against labels, on one labelled batch: the monitored
    ``metric`` as estimated without the labels and as measured with them, and the error the
    estimate is ``allowed`` (the metric's allowed drop). An estimate off by more does not
    decide a retraining until a later audit agrees."""

    metric: str
    estimated: float
    measured: float
    allowed: float
    batch: str

    @property
    def error(self) -> float:
        return abs(self.estimated - self.measured)

    @property
    def trusted(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.allowed)

    def describe(self) -> str:
        verdict = "within" if self.trusted else "beyond"
        return (
            f"on {self.batch} the estimated {self.metric} was {self.estimated:.4f} and the "
            f"labels measured {self.measured:.4f}: off by {self.error:.4f}, {verdict} the "
            f"allowed {self.allowed:.4g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EstimateAudit:
        return cls(**raw)


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift of the batch against the reference. ``weights``: each feature
    column's share of the model's permutation importance (empty when unknown);
    ``weighted_share``: the importance share of the drifted columns (None without weights);
    ``prediction`` and ``target``: drift of the model's answers and of the labels."""

    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    drifted_share: float
    performance: dict[str, float] = field(default_factory=dict)  # current batch, if labeled
    reference_performance: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)  # without labels (estimate)
    weights: dict[str, float] = field(default_factory=dict)
    weighted_share: float | None = None
    prediction: ColumnDrift | None = None
    target: ColumnDrift | None = None
    #: A labelled batch: its estimate checked against its labels. An unlabelled one: the
    #: champion's latest such check, which says whether its estimate may decide.
    audit: EstimateAudit | None = None
    #: The rows the latest training used (the newest registered version's), and the labelled
    #: rows no training has seen (the data's newest version and this batch); None: not counted.
    trained_rows: int | None = None
    unseen_rows: int | None = None

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        """What the gate compares: the importance-weighted share when known."""
        return self.drifted_share if self.weighted_share is None else self.weighted_share

    def explain(self) -> list[str]:
        """In words: which columns drifted, by how much, and how much they matter; then the
        model's answers and the labels."""
        lines = self.column_lines()
        for role, c in (("the model's answers", self.prediction), ("the labels", self.target)):
            if c is not None:
                lines.append(f"{role} {'drifted' if c.drifted else 'did not drift'} ({_score(c)})")
        return lines

    def column_lines(self) -> list[str]:
        """The feature columns that drifted, those that matter first, in words."""
        lines, unused = [], []
        ranked = sorted(self.columns, key=lambda c: -self.weights.get(c.column, 0.0))
        for c in (c for c in ranked if c.drifted):
            weight = self.weights.get(c.column)
            if weight is not None and weight < 0.01:
                unused.append(c.column)
                continue
            matters = "" if weight is None else f", {weight:.0%} of the model's importance"
            lines.append(f"{c.column} drifted ({_score(c)}{matters})")
        if unused:
            lines.append(f"drifted but unused by the model: {', '.join(unused)}")
        quiet = [c.column for c in ranked if not c.drifted and self.weights.get(c.column, 0) >= 0.2]
        if quiet:
            lines.append(f"stable: {', '.join(quiet)}, which the model relies on most")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted, "explanation": self.explain()}


def _score(c: ColumnDrift) -> str:
    sign = "<" if is_p_value(c.method) else ">="
    sign = sign if c.drifted else {"<": ">=", ">=": "<"}[sign]
    return f"{c.method} {c.score:.3g} {sign} {c.threshold:.3g}"


@dataclass(frozen=True)
class RetrainDecision:
    """Retrain or not, why, and what was seen but did not decide (``warnings``)."""

    retrain: bool
    reasons: list[str]
    warnings: list[str] = field(default_factory=list)

    def log_lines(self) -> list[str]:
        verdict = "retrain" if self.retrain else "keep the champion"
        lines = [f"drift gate: {verdict}: {'; '.join(self.reasons)}"]
        return lines + [f"drift gate: noted, not deciding: {w}" for w in self.warnings]


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
    weights: dict[str, float] | None = None,
) -> DriftReport:
    """Per-column data drift, measured by ``method``, an entry of
    :data:`honing.drift.DRIFT_METHODS` (``auto``: Evidently's DataDriftPreset defaults;
    ``effect_size``: distances with thresholds, whatever the size). Both tables are sampled down to
    ``max_rows`` first (the row counts reported are the batch's own). Writes Evidently's HTML
    to ``html_path``. Columns :data:`PREDICTION` and :data:`TARGET`, when both tables have
    them, are reported apart from the features. ``weights``: importance per feature column
    (negative ones count as 0), giving the report's ``weighted_share``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rows = (len(reference), len(current))
    reference, current = capped(reference, max_rows), capped(current, max_rows)
    columns = [*numeric, *categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(**DRIFT_METHODS[method].preset)
    with warnings.catch_warnings():
        if min(len(current), len(reference)) < 2:
            # a one-row table: Evidently's correlations over it are undefined (numpy's
            # "degrees of freedom <= 0" and divide warnings); the gate acts on no such batch
            # (monitoring.min_rows), and the report is kept as it is
            warnings.simplefilter("ignore", RuntimeWarning)
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
        test = str(cfg.get("method", ""))
        drifts.append(
            ColumnDrift(cfg["column"], test, score, threshold, drifted(test, score, threshold))
        )
    apart = {d.column: d for d in drifts if d.column in (PREDICTION, TARGET)}
    drifts = [d for d in drifts if d.column not in apart]
    share = sum(d.drifted for d in drifts) / len(drifts) if drifts else 0.0
    kept = {d.column: max(float((weights or {}).get(d.column, 0.0)), 0.0) for d in drifts}
    total = sum(kept.values())
    shares = {c: w / total for c, w in kept.items()} if total > 0 else {}
    weighted = sum(shares[d.column] for d in drifts if d.drifted) if shares else None
    return DriftReport(
        rows[0], rows[1], drifts, share, weights=shares, weighted_share=weighted,
        prediction=apart.get(PREDICTION), target=apart.get(TARGET),
    )  # fmt: skip


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


def audit_estimate(report: DriftReport, cfg: MonitoringConfig, batch: str) -> DriftReport:
    """The report of a labelled batch with its estimate checked against its measured
    metric (``cfg.metric``, allowed its ``allowed_drop``); unchanged without both, or when
    the measured metric is undefined on the batch."""
    metric = cfg.metric
    if metric not in report.performance or metric not in report.estimated:
        return report
    if not np.isfinite(report.performance[metric]):  # undefined here: nothing to check
        return report
    before = report.reference_performance.get(metric, float("nan"))
    allowed = cfg.allowed_drop(before) if np.isfinite(before) else cfg.max_metric_drop
    audit = EstimateAudit(
        metric, float(report.estimated[metric]), float(report.performance[metric]),
        float(allowed), batch,
    )  # fmt: skip
    return replace(report, audit=audit)


def _row_keys(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hash per row of ``columns``, alike for the same values however they were read
    (numbers compared as float64, anything else as text)."""
    same = pd.DataFrame(
        {
            c: table[c].astype("float64")
            if pd.api.types.is_numeric_dtype(table[c])
            else table[c].astype(str)
            for c in columns
        }
    )
    return pd.util.hash_pandas_object(same, index=False)


def unseen_rows(trained_on: pd.DataFrame, tables: list[pd.DataFrame], target: str) -> int:
    """The labelled rows of ``tables`` that are not rows of ``trained_on`` (the columns they
    share, compared by value); a row of a later table already in an earlier one counts once,
    a row repeated within a table each time."""
    labelled = [t[t[target].notna()] for t in tables if target in t.columns]
    if not labelled:
        return 0
    columns = sorted(set(trained_on.columns).intersection(*(t.columns for t in labelled)))
    seen, count = set(_row_keys(trained_on, columns)), 0
    for table in labelled:
        keys = _row_keys(table, columns)
        count += int((~keys.isin(seen)).sum())
        seen.update(keys)
    return count


def with_volume(report: DriftReport, trained_rows: int, unseen: int) -> DriftReport:
    """The report plus how many rows the latest training used and how many labelled rows no
    training has seen."""
    return replace(report, trained_rows=trained_rows, unseen_rows=unseen)


def with_audit(report: DriftReport, audit: EstimateAudit | None) -> DriftReport:
    """The report of an unlabelled batch with the champion's latest audit of its estimate."""
    return replace(report, audit=audit)


def estimate_performance(proba: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """Metrics expected on an unlabeled batch from a model's calibrated probabilities
    (confidence-based performance estimation, as NannyML's CBPE does; NannyML itself pins
    LightGBM < 4.6 and does not co-install): each row counts as P(class) of that class and
    1 - P(class) of the others, so the confusion counts, and the metrics built from them,
    are expectations. Binary tasks: accuracy, precision, recall, F1 and ROC-AUC of the
    positive class; multiclass: accuracy, and the macro (one-vs-rest) precision, recall, F1
    and ROC-AUC, as the evaluation reports them. Only as good as the calibration, which the
    decision rule checked in CV."""
    proba = np.asarray(proba, dtype=np.float64)
    codes = np.asarray(codes)
    accuracy = float(np.mean(proba[np.arange(len(proba)), codes]))
    ks = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    per_class = [_expected_one_vs_rest(proba[:, k], codes == k) for k in ks]
    out = {"accuracy": accuracy}
    if len(ks) == 1:
        return out | per_class[0]
    for name in ("precision", "recall", "f1", "roc_auc"):
        # macro: every class counts the same; one never decided has precision 0, as the
        # evaluation counts it (zero_division=0)
        values = [np.nan_to_num(c[name]) for c in per_class if name in c]
        if values:
            out[name] = float(np.mean(values))
    return out


def _expected_one_vs_rest(p: np.ndarray, decided: np.ndarray) -> dict[str, float]:
    """Expected precision, recall, F1 and ROC-AUC of one class against the rest, from the
    probabilities ``p`` of that class and the rows ``decided`` as it. A class with no
    expected row has no recall or ROC-AUC (NaN precision when nothing is decided as it)."""
    tp, fp = float(p[decided].sum()), float((1 - p)[decided].sum())
    fn = float(p[~decided].sum())
    out = {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
    }
    if tp + fn:
        out["recall"] = tp / (tp + fn)
    # ROC-AUC: expected true and false positive rates, sweeping the score from the top
    order = np.argsort(-p, kind="stable")
    pos, neg = np.cumsum(p[order]), np.cumsum(1 - p[order])
    if pos[-1] > 0 and neg[-1] > 0:
        tpr = np.concatenate([[0.0], pos / pos[-1]])
        fpr = np.concatenate([[0.0], neg / neg[-1]])
        out["roc_auc"] = float(np.trapezoid(tpr, fpr))
    return out


#: Rows of held-out reference a loss estimate needs to be fitted at all.
MIN_LOSS_ROWS = 50


def estimate_loss(
    X_ref: pd.DataFrame,
    pred_ref: np.ndarray,
    y_ref: np.ndarray,
    X_cur: pd.DataFrame,
    pred_cur: np.ndarray,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """RMSE and MAE expected on an unlabeled batch of a regression model (direct loss
    estimation, as NannyML's DLE does): a gradient-boosted model of the champion's squared
    and absolute errors, fitted on reference rows the champion did not train on (``X_ref``
    and its predictions ``pred_ref``, labels ``y_ref``), predicts each batch row's error
    from its features and the champion's prediction. Empty with fewer than
    :data:`MIN_LOSS_ROWS` reference rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    if len(X_ref) < MIN_LOSS_ROWS:
        return {}
    ref, cur = _error_features(X_ref, pred_ref, X_cur, pred_cur)
    error = np.asarray(y_ref, dtype=np.float64) - np.asarray(pred_ref, dtype=np.float64)
    out = {}
    for name, target, finish in (
        ("rmse", error**2, lambda m: float(np.sqrt(max(m, 0.0)))),
        ("mae", np.abs(error), lambda m: float(max(m, 0.0))),
    ):
        model = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.05, min_samples_leaf=20, random_state=seed,
            categorical_features="from_dtype",
        )  # fmt: skip
        model.fit(ref, target)
        out[name] = finish(float(np.mean(model.predict(cur))))
    return out


def _error_features(
    X_ref: pd.DataFrame, pred_ref: np.ndarray, X_cur: pd.DataFrame, pred_cur: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns an error model reads: numbers as they are, text as categories of the
    reference (an unseen value is missing), and the champion's prediction."""
    ref, cur = X_ref.copy(), X_cur[X_ref.columns].copy()
    for column in ref.columns:
        if pd.api.types.is_numeric_dtype(ref[column]) and not pd.api.types.is_bool_dtype(
            ref[column]
        ):
            cur[column] = pd.to_numeric(cur[column], errors="coerce")
            continue
        values = ref[column].astype(str).where(ref[column].notna())
        kept = values.value_counts().index[:250]  # the histogram's categorical limit
        kind = pd.CategoricalDtype(categories=list(kept))
        ref[column] = values.astype(kind)
        cur[column] = cur[column].astype(str).where(cur[column].notna()).astype(kind)
    ref["__prediction__"] = np.asarray(pred_ref, dtype=np.float64)
    cur["__prediction__"] = np.asarray(pred_cur, dtype=np.float64)
    return ref, cur


def gate(report: DriftReport, cfg: MonitoringConfig) -> RetrainDecision:
    """Whether to retrain, with the reasons in words. The signals: the drifted columns' share
    (of the model's importance when known, else of the columns) against ``drift_share``; the
    model's answers drifting (``prediction_drift``); the monitored metric falling by more
    than ``max_metric_drop`` (or ``max_metric_drop_relative`` of its value at registration),
    measured on a labelled batch, else estimated.

    ``trigger`` says which decide. ``auto``: on a labelled batch the measured metric alone
    (a shift the model handles is not worth a retraining: the drift is reported as a
    warning), and without labels the drift and the estimate; ``drift``: any signal;
    ``performance``: the metric only.

    Whatever the trigger, with ``retrain_after_new_rows`` the labelled rows no training has
    seen retrain once they reach that share of the rows the latest training used (the
    newest version's, promoted or not: a retraining that was not promoted still saw them).

    A batch of fewer than ``min_rows`` rows decides nothing. A measured metric that is
    undefined on the batch (ROC-AUC on one class) leaves the decision to the estimate.

    The estimate decides only while it is trusted: when the champion's latest labelled
    batch found it off by more than the allowed drop (``report.audit``), a falling estimate
    is noted with that reason, and the drift signals still decide."""
    if report.current_rows < cfg.min_rows:
        return RetrainDecision(
            False,
            [
                f"the batch has {report.current_rows} rows, fewer than monitoring.min_rows "
                f"({cfg.min_rows}): its drift and metrics are reported, not acted on"
            ],
        )
    drift = []
    if report.share >= cfg.drift_share:
        what = "of columns" if report.weighted_share is None else "of the model's importance"
        drift.append(
            f"{report.share:.0%} {what} drifted (threshold {cfg.drift_share:.0%}): "
            + "; ".join(line for line in report.column_lines() if not line.startswith("stable"))
        )
    if cfg.prediction_drift and report.prediction is not None and report.prediction.drifted:
        drift.append(f"the model's answers drifted ({_score(report.prediction)})")
    metric, performance, held, measured = cfg.metric, [], [], False
    audit, distrust = report.audit, []
    for kind, values in (("", report.performance), ("estimated ", report.estimated)):
        if metric not in values or metric not in report.reference_performance:
            continue
        before, now = report.reference_performance[metric], values[metric]
        finite = bool(np.isfinite(now) and np.isfinite(before))
        if not finite and not kind:  # e.g. ROC-AUC on a batch of one class
            distrust.append(f"the measured {metric} is undefined on this batch: not deciding")
            continue
        measured = not kind
        allowed = cfg.allowed_drop(before) if finite else cfg.max_metric_drop
        if finite and not passes(metric, now, before, allowed):
            performance.append(
                f"{kind}{metric} {'rose' if lower_is_better(metric) else 'fell'} by "
                f"{abs(now - before):.4f} (from {before:.4f} to {now:.4f}; allowed "
                f"{allowed:.4g})"
            )
        elif finite and measured:
            held.append(
                f"the measured {metric} held: {now:.4f} on the batch, {before:.4f} at "
                f"registration (allowed change {allowed:.4g})"
            )
        if audit is not None and not audit.trusted:
            if measured:  # this batch's own check: later estimates will not decide
                distrust.append(f"the label-free estimate is off: {audit.describe()}")
            elif performance:  # the estimate falls, but it was last seen off
                distrust.append(
                    f"{performance.pop()}, but the estimate does not decide: "
                    f"{audit.describe()}; it decides again once a labelled batch agrees"
                )
        break  # measured performance, when there is any, outranks the estimate
    decisive = {
        "drift": drift + performance,
        "performance": performance,
        "auto": performance if measured else drift + performance,
    }[cfg.trigger] + _volume(report, cfg)
    noted = [w for w in drift + performance if w not in decisive] + distrust
    reasons = decisive or held or ["no drift beyond the thresholds"]
    return RetrainDecision(bool(decisive), reasons, noted)


def _volume(report: DriftReport, cfg: MonitoringConfig) -> list[str]:
    """The data-volume reason to retrain, when the unseen labelled rows reach
    ``retrain_after_new_rows`` of the rows the latest training used."""
    share, unseen, trained = cfg.retrain_after_new_rows, report.unseen_rows, report.trained_rows
    if share is None or unseen is None or not trained or unseen < share * trained:
        return []
    return [
        f"{unseen} labelled rows no training has seen, {unseen / trained:.2f}x the "
        f"{trained} the latest was trained on (retrain_after_new_rows: {share:g})"
    ]
