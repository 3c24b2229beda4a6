"""The one home of metric knowledge: which task a metric serves, its direction, its
scikit-learn scorer, how to compute it from predictions, and how gates compare values of it.

Adding a metric is one entry in :data:`METRICS`; the config's allowed names, the CV scorers,
the out-of-fold ensemble selection and every gate read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

#: ``pred`` is the class-probability matrix (rows x classes, classes in sorted label order)
#: for classification, and the predicted values (1-D) for regression.
FromPredictions = Callable[[np.ndarray, np.ndarray], float]


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


def _positive(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba)[:, 1]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    task: str  # "classification" or "regression"
    higher_is_better: bool
    scorer: str  # scikit-learn scorer name (greater-is-better: errors come negated)
    from_predictions: FromPredictions
    bounded: bool = True  # in [0, 1] (r2: at most 1)


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo(
            "accuracy", "classification", True, "accuracy",
            lambda y, p: float(skm.accuracy_score(y, _labels(p))),
        ),
        MetricInfo(
            "precision", "classification", True, "precision",
            lambda y, p: float(skm.precision_score(y, _labels(p), zero_division=0)),
        ),
        MetricInfo(
            "recall", "classification", True, "recall",
            lambda y, p: float(skm.recall_score(y, _labels(p), zero_division=0)),
        ),
        MetricInfo(
            "f1", "classification", True, "f1",
            lambda y, p: float(skm.f1_score(y, _labels(p), zero_division=0)),
        ),
        MetricInfo(
            "roc_auc", "classification", True, "roc_auc",
            lambda y, p: float(skm.roc_auc_score(y, _positive(p))),
        ),
        MetricInfo(
            "average_precision", "classification", True, "average_precision",
            lambda y, p: float(skm.average_precision_score(y, _positive(p))),
        ),
        MetricInfo(
            "rmse", "regression", False, "neg_root_mean_squared_error",
            lambda y, p: float(skm.root_mean_squared_error(y, p)), bounded=False,
        ),
        MetricInfo(
            "mae", "regression", False, "neg_mean_absolute_error",
            lambda y, p: float(skm.mean_absolute_error(y, p)), bounded=False,
        ),
        MetricInfo("r2", "regression", True, "r2", lambda y, p: float(skm.r2_score(y, p))),
    )
}  # fmt: skip


def names(task: str) -> tuple[str, ...]:
    """The metrics of ``task``, in table order."""
    return tuple(m.name for m in METRICS.values() if m.task == task)


def lower_is_better(metric: str) -> bool:
    return not METRICS[metric].higher_is_better


def scorer_name(metric: str) -> str:
    return METRICS[metric].scorer


def metric_value(metric: str, score: float) -> float:
    """A score in scikit-learn's greater-is-better convention, in the metric's own units
    (RMSE positive)."""
    return -score if METRICS[metric].scorer.startswith("neg_") else score


def as_score(metric: str, value: float) -> float:
    """The inverse of :func:`metric_value`: the metric's units to greater-is-better."""
    return metric_value(metric, value)


def score_predictions(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric`` of predictions, in scikit-learn's greater-is-better convention (the same
    numbers as the CV scorer gives)."""
    return as_score(metric, METRICS[metric].from_predictions(y, pred))


def passes(metric: str, value: float, reference: float, margin: float = 0.0) -> bool:
    """True when ``value`` is at most ``margin`` worse than ``reference`` in the metric's
    direction (errors may be at most ``margin`` larger, scores at most ``margin`` smaller)."""
    if lower_is_better(metric):
        return value <= reference + margin
    return value >= reference - margin


def better(metric: str, value: float, reference: float) -> bool:
    """True when ``value`` is strictly better than ``reference``."""
    return value < reference if lower_is_better(metric) else value > reference
