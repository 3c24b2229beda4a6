"""Evaluation on the held-out test split: a report, plots, and a separate quality gate.

The package also holds slices and fairness (:mod:`~honing.evaluation.slices`), explanations
(:mod:`~honing.evaluation.explain`) and nested cross-validation
(:mod:`~honing.evaluation.nested`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    brier_score_loss,
    confusion_matrix,
    precision_recall_curve,
    roc_curve,
)

from honing.config import SliceGateConfig
from honing.evaluation.slices import SliceReport
from honing.evaluation.slices import slice_gate as check_slices
from honing.exceptions import ModelQualityError
from honing.metrics import METRICS, lower_is_better, of_labels, passes
from honing.modeling.decision import DecisionFit, DecisionRule, raw_and_rule


@dataclass(frozen=True)
class EvaluationReport:
    """Test metrics. Label metrics (accuracy, f1 ...) are those of the decisions the model's
    rule makes (``threshold``: the tuned one; None: argmax); ``at_default`` holds them at the
    uncalibrated 0.5/argmax decision, for comparison."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    classes: list[Any]
    n_test: int
    threshold: float | None = None
    at_default: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def positive_scores(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Probability of class 1 (or a decision score where the model has no probabilities)."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1]
    return np.asarray(model.decision_function(X))


def evaluate(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: list[Any],
    rule: DecisionRule | None = None,
) -> EvaluationReport:
    """Classification (``classes``: [negative, positive], or the labels of a multiclass
    task): every classification metric of :data:`honing.metrics.METRICS` (binary: for class
    1; multiclass: macro averages, ROC-AUC one-vs-rest), the Brier score (binary) and the
    confusion matrix (rows: true class, columns: predicted), all under the decision ``rule``
    (default: the model's own, see :func:`honing.modeling.decision.raw_and_rule`). Regression
    (``classes`` = []): every regression metric of :data:`honing.metrics.METRICS` (RMSE,
    MAE, R² and the largest absolute error)."""
    if not classes:
        return _evaluate_regression(model, X, y)
    predictor, own = raw_and_rule(model, classes)
    raw = np.asarray(predictor.predict_proba(X), dtype=np.float64)
    return evaluate_proba(raw, y, classes, rule or own)


def evaluate_proba(
    raw: np.ndarray, y: np.ndarray, classes: list[Any], rule: DecisionRule
) -> EvaluationReport:
    """:func:`evaluate` from uncalibrated class probabilities ``raw``."""
    y = np.asarray(y)
    proba = rule.calibrate(raw)
    codes = rule.codes(proba)
    decided = of_labels(proba, codes)
    label_metrics = [m for m in METRICS.values() if m.task == "classification" and m.labels]
    metrics = {
        info.name: _or_nan(info.from_predictions, y, decided if info.labels else proba)
        for info in METRICS.values()
        if info.task == "classification"
    }
    if len(classes) == 2:
        metrics["brier"] = brier_score_loss(y, np.clip(proba[:, 1], 0, 1))
    changed = rule.threshold is not None or rule.calibration != "none"
    at_default = (
        {m.name: _or_nan(m.from_predictions, y, raw) for m in label_metrics} if changed else {}
    )
    cm = confusion_matrix(y, codes, labels=list(range(len(classes))))
    return EvaluationReport(
        metrics={k: float(v) for k, v in metrics.items()},
        confusion_matrix=cm.tolist(),
        classes=[c.item() if hasattr(c, "item") else c for c in classes],
        n_test=int(len(y)),
        threshold=rule.threshold,
        at_default={k: float(v) for k, v in at_default.items()},
    )


def _or_nan(metric: Any, y: np.ndarray, proba: np.ndarray) -> float:
    """The metric, or NaN where it is undefined (ROC-AUC on rows of a single class)."""
    try:
        return float(metric(y, proba))
    except ValueError:
        return float("nan")


def _evaluate_regression(model: Any, X: pd.DataFrame, y: np.ndarray) -> EvaluationReport:
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(model.predict(X), dtype=np.float64)
    metrics = {
        info.name: _or_nan(info.from_predictions, y, pred)
        for info in METRICS.values()
        if info.task == "regression"
    }
    return EvaluationReport(
        metrics={k: float(v) for k, v in metrics.items()},
        confusion_matrix=[],
        classes=[],
        n_test=int(len(y)),
    )


def threshold_misses(report: EvaluationReport, thresholds: dict[str, float]) -> list[str]:
    """The metrics of ``report`` past their limit in ``thresholds`` (not computed counts)."""
    return [
        name
        for name, limit in sorted(thresholds.items())
        if (value := report.metrics.get(name)) is None
        or not np.isfinite(value)
        or not passes(name, value, limit)
    ]


def gate(
    report: EvaluationReport,
    thresholds: dict[str, float],
    slices: SliceReport | None = None,
    slice_gate: SliceGateConfig | None = None,
    champion: EvaluationReport | None = None,
) -> list[str]:
    """Raise :class:`ModelQualityError` when any metric is past its limit: below a minimum,
    or above a maximum for errors (rmse, mae); or when a slice fails ``slice_gate``
    (:func:`honing.evaluation.slices.slice_gate`).

    ``champion``: the serving champion's report on the same test rows. A limit the model
    misses where the champion misses it too, and scores no better, does not stop the model:
    refusing it would leave the worse model serving (a retrain on a window the world moved
    away from, where no model reaches the floor). Such misses are returned, one line each,
    for the run to say; the champion/challenger gate then decides the promotion."""
    failed, excused = [], []
    if slices is not None and slice_gate is not None:
        failed += [f"  - slice {words}" for words in check_slices(slices, slice_gate)]
    for name in threshold_misses(report, thresholds):
        limit, value = thresholds[name], report.metrics.get(name)
        if value is None:
            failed.append(f"  - {name}: not computed")
            continue
        bound = "maximum" if lower_is_better(name) else "minimum"
        op = ">" if lower_is_better(name) else "<"
        words = f"{name}: {value:.4f} {op} {bound} {limit:.4f}"
        theirs = None if champion is None else champion.metrics.get(name)
        if (
            theirs is not None
            and np.isfinite(value)
            and np.isfinite(theirs)
            and not passes(name, theirs, limit)
            and passes(name, value, theirs)
        ):
            excused.append(f"{words}, where the champion scores {theirs:.4f} on the same rows")
        else:
            failed.append(f"  - {words}")
    if failed:
        raise ModelQualityError(
            f"model below the quality thresholds on {report.n_test} test rows; "
            "nothing is registered:\n" + "\n".join(failed),
            report=report,
        )
    return excused


#: Classes up to which the confusion matrix plot writes each cell's count, and names each
#: class on its axes (past that, a colour scale, and class indices). Drawing 10,000 counts
#: took 7 s for 100 classes, and a figure is rendered twice (MLflow's figure and image).
CM_COUNTS_UP_TO = 30
CM_LABELS_UP_TO = 60


def plot_figures(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    report: EvaluationReport,
    decision: DecisionFit | None = None,
) -> dict[str, Any]:
    """Confusion matrix, ROC and precision-recall curves, and reliability plots before and
    after calibration; with a tuned ``decision``, the objective, precision and recall
    against the threshold on the out-of-fold rows. For regression, predicted against actual
    and the residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    if not report.classes:
        pred = np.asarray(model.predict(X), dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(y, pred, s=6, alpha=0.5)
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title(f"Predicted vs actual (R² = {report.metrics['r2']:.3f})")
        fig.tight_layout()
        figures["predicted_vs_actual.png"] = fig
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.hist(pred - y, bins=40)
        ax.set_xlabel("residual (predicted - actual)")
        ax.set_title(f"Residuals (RMSE = {report.metrics['rmse']:.3g})")
        fig.tight_layout()
        figures["residuals.png"] = fig
        return figures

    cm = np.asarray(report.confusion_matrix)
    k = len(cm)
    side = min(4.5 + 0.1 * max(k - 10, 0), 12.0)  # room for the labels of many classes
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    shown = ax.imshow(cm, cmap="Blues")
    if k <= CM_COUNTS_UP_TO:
        for (i, j), v in np.ndenumerate(cm):
            color = "white" if v > cm.max() / 2 else "black"
            ax.text(j, i, str(v), ha="center", va="center", color=color)
    else:  # a count in each of k x k cells costs seconds to draw and cannot be read
        fig.colorbar(shown, ax=ax, label="test rows")
    if k <= CM_LABELS_UP_TO:
        labels = [str(c) for c in report.classes]
        small = {"fontsize": 7} if k > 20 else {}
        ax.set_xticks(range(k), labels, rotation=90 if k > 12 else 45 if k > 3 else 0, **small)
        ax.set_yticks(range(k), labels, **small)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    figures["confusion_matrix.png"] = fig
    if len(report.classes) != 2:  # ROC and calibration curves are drawn for binary tasks
        return figures
    predictor, own = raw_and_rule(model, report.classes)
    rule = decision.rule if decision is not None else own
    raw = np.asarray(predictor.predict_proba(X), dtype=np.float64)[:, 1]
    scores = rule.calibrate(np.column_stack([1 - raw, raw]))[:, 1]

    fpr, tpr, _ = roc_curve(y, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC = {report.metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    figures["roc_curve.png"] = fig

    precision, recall, _ = precision_recall_curve(y, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, label=f"AP = {report.metrics['average_precision']:.3f}")
    ax.scatter(
        [report.metrics["recall"]],
        [report.metrics["precision"]],
        color="red",
        zorder=3,
        label=f"threshold {rule.threshold if rule.threshold is not None else 0.5:.3f}",
    )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall (test)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    figures["precision_recall.png"] = fig

    fig, ax = plt.subplots(figsize=(4.5, 4))
    curves = [("uncalibrated", raw)]
    if rule.calibration != "none":
        curves.append((f"{rule.calibration}", scores))
    for name, p in curves:
        prob_true, prob_pred = calibration_curve(y, np.clip(p, 0, 1), n_bins=10)
        brier = brier_score_loss(y, np.clip(p, 0, 1))
        ax.plot(prob_pred, prob_true, "o-", label=f"{name}: Brier = {brier:.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction of positives")
    ax.set_title("Reliability (test)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    figures["calibration.png"] = fig

    if decision is not None and decision.curve is not None:
        curve = decision.curve
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(curve.thresholds, curve.objective, label=decision.rule.objective)
        ax.plot(curve.thresholds, curve.precision, label="precision", lw=0.9)
        ax.plot(curve.thresholds, curve.recall, label="recall", lw=0.9)
        ax.axvline(0.5, color="grey", ls=":", lw=0.8, label="0.5")
        if rule.threshold is not None:
            ax.axvline(rule.threshold, color="red", ls="--", lw=0.9, label="tuned")
        ax.set_xlabel("threshold on P(positive)")
        ax.set_title(f"Metric vs threshold (out-of-fold, {decision.rows} rows)")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        figures["threshold.png"] = fig
    return figures
