"""The one home of metric knowledge: which task a metric serves, its direction, its
scikit-learn scorer, how to compute it from predictions, and how gates compare values of it.

Adding a metric is one entry in :data:`METRICS`; the config's allowed names, the CV scorers,
the out-of-fold ensemble selection and every gate read this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import AfterValidator
from sklearn import metrics as skm

#: ``pred`` is the class-probability matrix (rows x classes, classes in label-code order; a
#: 1-D array is the positive class of a binary task) for classification, and the predicted
#: values (1-D) for regression. Binary metrics are for class 1; multiclass ones are macro
#: averages (ROC-AUC and average precision one-vs-rest).
FromPredictions = Callable[[np.ndarray, np.ndarray], float]


def _matrix(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


def _labels(proba: np.ndarray) -> np.ndarray:
    return _matrix(proba).argmax(axis=1)


def _average(proba: np.ndarray) -> str:
    return "binary" if _matrix(proba).shape[1] == 2 else "macro"


def _ranking(score: Callable[..., float], y: np.ndarray, proba: np.ndarray) -> float:
    """A ranking metric: on P(class 1) for binary tasks, one-vs-rest macro for multiclass
    (over the classes present in ``y``: a fold of a table with rare classes may lack some)."""
    p = _matrix(proba)
    if p.shape[1] == 2:
        return float(score(y, p[:, 1]))
    onehot = np.eye(p.shape[1])[np.asarray(y, dtype=int)]
    # a class with no row (or only rows) here has no ranking: the macro average skips it
    ranked = (onehot.sum(axis=0) > 0) & (onehot.sum(axis=0) < len(onehot))
    return float(score(onehot[:, ranked], p[:, ranked], average="macro"))


def _auc(truth: np.ndarray, score: np.ndarray, average: str | None = None) -> float:
    """ROC-AUC as scikit-learn computes it (ties count a half), the one-vs-rest macro
    average of one-hot ``truth`` columns by the rank-sum statistic in one pass: a bootstrap
    of a 40-class table scores it thousands of times."""
    if np.ndim(truth) == 1:
        return float(skm.roc_auc_score(truth, score))
    from scipy.stats import rankdata

    ranks = rankdata(score, axis=0)
    pos = truth.sum(axis=0)
    neg = len(truth) - pos
    auc = ((ranks * truth).sum(axis=0) - pos * (pos + 1) / 2) / (pos * neg)
    return float(np.mean(auc))


def _label_metric(score: Callable[..., float]) -> FromPredictions:
    return lambda y, p: float(score(y, _labels(p), average=_average(p), zero_division=0))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = _matrix(proba)
    return float(skm.log_loss(y, p, labels=list(range(p.shape[1]))))


@dataclass(frozen=True)
class MetricInfo:
    name: str
    task: str  # "classification" or "regression"
    higher_is_better: bool
    scorer: str  # scikit-learn scorer name (greater-is-better: errors come negated)
    from_predictions: FromPredictions
    bounded: bool = True  # in [0, 1] (r2: at most 1)
    labels: bool = False  # scores decided labels (a threshold moves it), not probabilities


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo(
            "accuracy", "classification", True, "accuracy",
            lambda y, p: float(skm.accuracy_score(y, _labels(p))), labels=True,
        ),
        MetricInfo("precision", "classification", True, "precision",
                   _label_metric(skm.precision_score), labels=True),
        MetricInfo("recall", "classification", True, "recall", _label_metric(skm.recall_score),
                   labels=True),
        MetricInfo("f1", "classification", True, "f1", _label_metric(skm.f1_score), labels=True),
        MetricInfo(
            "roc_auc", "classification", True, "roc_auc",
            lambda y, p: _ranking(_auc, y, p),
        ),
        MetricInfo(
            "average_precision", "classification", True, "average_precision",
            lambda y, p: _ranking(skm.average_precision_score, y, p),
        ),
        MetricInfo(
            "log_loss", "classification", False, "neg_log_loss", _log_loss, bounded=False
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
        MetricInfo(
            "max_error", "regression", False, "max_error",
            lambda y, p: float(skm.max_error(y, p)), bounded=False,
        ),
    )
}  # fmt: skip


def names(task: str) -> tuple[str, ...]:
    """The metrics of ``task``, in table order."""
    return tuple(m.name for m in METRICS.values() if m.task == task)


def of_labels(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """A probability matrix whose argmax is ``codes`` (one-hot): label metrics of it score
    decisions made by a threshold instead of argmax."""
    return np.eye(_matrix(proba).shape[1])[np.asarray(codes, dtype=int)]


def lower_is_better(metric: str) -> bool:
    return not METRICS[metric].higher_is_better


def scorer_name(metric: str) -> str:
    return METRICS[metric].scorer


def scorer(metric: str) -> Callable[..., float]:
    """A scikit-learn scorer of ``metric`` (greater-is-better), built from the table: the
    same numbers as :func:`score_predictions`, for binary, multiclass and regression."""
    from sklearn.metrics import make_scorer

    info = METRICS[metric]
    return make_scorer(
        info.from_predictions,
        greater_is_better=info.higher_is_better,
        response_method="predict" if info.task == "regression" else "predict_proba",
    )


def metric_value(metric: str, score: float) -> float:
    """A score in scikit-learn's greater-is-better convention, in the metric's own units
    (RMSE positive)."""
    return -score if METRICS[metric].scorer.startswith("neg_") else score


def score_predictions(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric`` of predictions, in scikit-learn's greater-is-better convention (the same
    numbers as the CV scorer gives)."""
    # metric_value is its own inverse: units -> greater-is-better
    return metric_value(metric, METRICS[metric].from_predictions(y, pred))


def passes(metric: str, value: float, reference: float, margin: float = 0.0) -> bool:
    """True when ``value`` is at most ``margin`` worse than ``reference`` in the metric's
    direction (errors may be at most ``margin`` larger, scores at most ``margin`` smaller)."""
    if lower_is_better(metric):
        return value <= reference + margin
    return value >= reference - margin


def worse_than(
    values: dict[str, float], reference: dict[str, float], tolerance: float
) -> list[str]:
    """The metrics of :data:`METRICS` on which ``values`` are more than ``tolerance`` worse
    than ``reference`` (relative to the reference for unbounded metrics: log loss, RMSE);
    NaN on both sides is equal."""
    worse = []
    for name, value in values.items():
        if name not in METRICS or not math.isfinite(reference.get(name, math.nan)):
            continue
        base = reference[name]
        margin = tolerance if METRICS[name].bounded else tolerance * abs(base)
        if not math.isfinite(value) or not passes(name, value, base, margin):
            worse.append(name)
    return worse


def within(
    values: dict[str, float], reference: dict[str, float], metric: str, tolerance: float
) -> bool:
    """Whether ``values`` stand within ``tolerance`` of ``reference``: ``metric`` finite and
    at most ``tolerance`` worse, and no other metric worse (:func:`worse_than`). The rule a
    compressed candidate is held to."""
    value = values[metric]
    return (
        math.isfinite(value)
        and passes(metric, value, reference[metric], tolerance)
        and not worse_than(values, reference, tolerance)
    )


def compare(metric: str, value: float, reference: float, margin: float = 0.0) -> tuple[bool, str]:
    """:func:`passes`, and the comparison in words for a gate's reason, e.g.
    ``0.8412 >= 0.8390 - margin 0.01`` or ``12.3000 > 11.9000 + margin 0`` (a failed RMSE)."""
    lower = lower_is_better(metric)
    ok = passes(metric, value, reference, margin)
    op = ("<=" if ok else ">") if lower else (">=" if ok else "<")
    return ok, f"{value:.4f} {op} {reference:.4f} {'+' if lower else '-'} margin {margin:g}"


def known(name: str) -> str:
    """``name`` when it is a metric of :data:`METRICS` (the config's validator)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {list(METRICS)}")
    return name


#: A metric name of :data:`METRICS`, as config fields declare it.
Metric = Annotated[str, AfterValidator(known)]
