"""Decision rules: from a classifier's probabilities to a decision, and the one output
contract of every flavor of a model.

A binary classifier's probabilities are calibrated (sigmoid or isotonic, cross-fitted on the
chosen model's out-of-fold predictions, kept only when that lowers the Brier score) and its
threshold is tuned on the same out-of-fold rows for the configured objective. Both are
stored as a :class:`DecisionRule` inside every flavor of the model (the manifest of the
registered and the served artifacts), so that ``honing predict``, the served flavor, the
gates and monitoring decide the same way. Multiclass tasks decide by argmax; their
probabilities may be temperature-scaled (one scale on the log-probabilities, cross-fitted the
same way, kept only when it lowers the log loss), which leaves every row's argmax unchanged.
A boosted model cut early by its budget is under-confident, and this restores its
probabilities without another fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from honing.config import DecisionConfig
from honing.metrics import METRICS, metric_value, of_labels, score_predictions
from honing.modeling.calibration import (
    calibrated,
    cross_fitted,
    cross_fitted_temperature,
    fit_calibration,
    fit_temperature,
    tempered,
)

#: Objectives computed from confusion counts (arrays over candidate thresholds).
_EPS = 1e-12


def _objective(name: str, tp: Any, fp: Any, tn: Any, fn: Any, costs: tuple[float, float]) -> Any:
    tpr = tp / np.maximum(tp + fn, _EPS)
    tnr = tn / np.maximum(tn + fp, _EPS)
    if name == "f1":
        return 2 * tp / np.maximum(2 * tp + fp + fn, _EPS)
    if name == "accuracy":
        return (tp + tn) / np.maximum(tp + fp + tn + fn, _EPS)
    if name == "balanced_accuracy":
        return (tpr + tnr) / 2
    if name == "youden":
        return tpr + tnr - 1
    if name == "cost":  # negated mean cost per row: greater is better like the others
        return -(costs[0] * fp + costs[1] * fn) / np.maximum(tp + fp + tn + fn, _EPS)
    raise ValueError(f"unknown decision objective {name!r}")


#: The columns every flavor's answer adds to a batch (:meth:`DecisionRule.outputs`), and the
#: prefix of each class's probability column.
OUTPUT_COLUMNS = ("prediction", "probability", "threshold")
CLASS_PROBABILITY = "probability_"


def named_like_output(column: object) -> bool:
    """Whether a batch column's name is one the model's answer adds (``honing predict`` would
    write it twice)."""
    name = str(column)
    return name in OUTPUT_COLUMNS or name.startswith(CLASS_PROBABILITY)


@dataclass(frozen=True)
class DecisionRule:
    """How probabilities become decisions. ``classes``: the labels in the user's own values
    (binary: ``[negative, positive]``; empty for regression). ``threshold``: a binary task
    predicts the positive label when the calibrated P(positive) is at least this; None means
    argmax. ``calibration``: ``none``, ``sigmoid`` (``params`` = [a, b] on the logit),
    ``isotonic`` (``params`` = knots x, then ``values`` y, interpolated) or, for a
    multiclass task, ``temperature`` (``params`` = [a], the scale of the log-probabilities)."""

    classes: list[Any]
    threshold: float | None = None
    objective: str = "argmax"
    calibration: str = "none"
    params: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @classmethod
    def argmax(cls, classes: list[Any]) -> DecisionRule:
        return cls(classes=list(classes))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionRule:
        return cls(**data)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> DecisionRule:
        """The rule an artifact's manifest carries; argmax of its labels without one."""
        if "decision" in manifest:
            return cls.from_dict(manifest["decision"])
        return cls.argmax(list(manifest.get("classes", [])))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def calibrate(self, proba: np.ndarray) -> np.ndarray:
        """The class-probability matrix after calibration (unchanged when there is none)."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.calibration == "temperature":
            return tempered(proba, self.params[0])
        if self.calibration == "none" or not self.binary:
            return proba
        p = calibrated(self.calibration, self.params, self.values, proba[:, 1])
        return np.column_stack([1.0 - p, p])

    def codes(self, proba: np.ndarray) -> np.ndarray:
        """Class indices from calibrated probabilities: the threshold on P(positive) for a
        binary task, argmax otherwise."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.binary and self.threshold is not None:
            return (proba[:, 1] >= self.threshold).astype(int)
        return proba.argmax(axis=1)

    def outputs(self, raw_proba: np.ndarray) -> pd.DataFrame:
        """The output contract of every flavor: ``prediction`` (the label in the user's own
        values), ``probability`` (of the positive class; of the predicted label for a
        multiclass task), ``probability_<label>`` for each class, and ``threshold`` (the one
        used; NaN where argmax decides)."""
        proba = self.calibrate(raw_proba)
        codes = self.codes(proba)
        labels = np.empty(len(self.classes), dtype=object)
        labels[:] = self.classes
        columns: dict[str, Any] = {
            "prediction": labels[codes],
            "probability": proba[:, 1] if self.binary else proba[np.arange(len(proba)), codes],
        }
        for i, label in enumerate(self.classes):
            columns[f"probability_{label}"] = proba[:, i]
        threshold = float("nan") if self.threshold is None else float(self.threshold)
        columns["threshold"] = np.full(len(proba), threshold)
        return pd.DataFrame(columns)  # built at once: a request of one row pays little

    def describe(self) -> str:
        if not self.classes:
            return "the predicted value (regression)"
        if self.threshold is None:
            scaled = self.calibration == "temperature"
            how = f" (log-probabilities scaled by {self.params[0]:.3f})" if scaled else ""
            return f"argmax of the class probabilities{how}"
        cal = "" if self.calibration == "none" else f" after {self.calibration} calibration"
        return (
            f"{self.classes[1]!r} when P({self.classes[1]!r}) >= {self.threshold:.4f}{cal} "
            f"(tuned for {self.objective})"
        )


class Decided:
    """A loaded model with its decision rule, as every loader returns it: ``predict_proba``
    gives calibrated probabilities, ``predict`` class indices decided by the rule (the
    predicted values for regression), ``outputs`` the output contract."""

    def __init__(self, predictor: Any, rule: DecisionRule) -> None:
        self.predictor = predictor
        self.rule = rule

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predictor.predict_proba(X), dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.rule.calibrate(self.raw_proba(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not self.rule.classes:
            return np.asarray(self.predictor.predict(X), dtype=np.float64)
        return self.rule.codes(self.predict_proba(X))

    def outputs(self, X: pd.DataFrame) -> pd.DataFrame:
        if not self.rule.classes:
            return pd.DataFrame({"prediction": self.predict(X)})
        return self.rule.outputs(self.raw_proba(X))


@dataclass(frozen=True)
class Answers:
    """A model's answers on test rows: calibrated class probabilities (rows x classes) and
    the decided class codes; for regression the predicted values and no codes."""

    values: np.ndarray
    codes: np.ndarray | None

    def score(self, metric: str, y: np.ndarray) -> float:
        """``metric`` of these answers against ``y``, in the metric's own units: label
        metrics from the decided codes, the others from the probabilities or values."""
        pred = self.values
        if METRICS[metric].labels and self.codes is not None:
            pred = of_labels(pred, self.codes)
        return metric_value(metric, score_predictions(metric, y, pred))


def answers(
    model: Any, X: pd.DataFrame, classes: list[Any], rule: DecisionRule | None = None
) -> Answers:
    """What ``model`` answers on ``X`` under ``rule`` (default: its own)."""
    if not classes:
        return Answers(np.asarray(model.predict(X), dtype=np.float64), None)
    predictor, own = raw_and_rule(model, classes)
    rule = rule or own
    proba = rule.calibrate(np.asarray(predictor.predict_proba(X), dtype=np.float64))
    return Answers(proba, rule.codes(proba))


class Realigned:
    """A :class:`Decided` model's probabilities laid out over other ``classes`` (a champion
    trained before a class was taken into the label): 0 for a class it never saw; one that
    ``classes`` lacks is left out, each row rescaled to sum to 1."""

    def __init__(self, model: Decided, classes: list[Any]) -> None:
        own = list(model.rule.classes)
        self.model = model
        self.columns = [own.index(c) if c in own else -1 for c in classes]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        mine = self.model.predict_proba(X)
        out = np.zeros((len(mine), len(self.columns)))
        for i, j in enumerate(self.columns):
            if j >= 0:
                out[:, i] = mine[:, j]
        total, even = out.sum(axis=1, keepdims=True), np.full_like(out, 1 / len(self.columns))
        return np.divide(out, total, out=even, where=total > 0)


def raw_and_rule(model: Any, classes: list[Any]) -> tuple[Any, DecisionRule]:
    """The predictor under ``model`` and its rule: a :class:`Decided` model's own, argmax of
    ``classes`` for a bare estimator; a :class:`Decided` model of other classes answers
    :class:`Realigned` to ``classes``, by argmax."""
    if isinstance(model, Decided):
        own = list(model.rule.classes)
        if own and classes and own != list(classes):
            return Realigned(model, classes), DecisionRule.argmax(classes)
        return model.predictor, model.rule
    return model, DecisionRule.argmax(classes)


@dataclass(frozen=True)
class ThresholdCurve:
    """The objective, precision and recall at each candidate threshold (out-of-fold rows)."""

    thresholds: list[float]
    objective: list[float]
    precision: list[float]
    recall: list[float]


def threshold_curve(
    y: np.ndarray, p: np.ndarray, objective: str, costs: tuple[float, float], points: int = 400
) -> ThresholdCurve:
    """Confusion counts at up to ``points`` candidate thresholds (quantiles of ``p``, plus
    0.5), in one pass over the sorted scores."""
    y = np.asarray(y, dtype=int)
    qs = np.unique(np.quantile(p, np.linspace(0, 1, points)))
    cands = np.unique(np.concatenate([qs, [0.5]]))
    order = np.sort(p)
    # rows with p >= t: n - (rows with p < t)
    below = np.searchsorted(order, cands, side="left")
    pos_sorted = np.sort(p[y == 1])
    pos_below = np.searchsorted(pos_sorted, cands, side="left")
    n, n_pos = len(p), int(y.sum())
    tp = (n_pos - pos_below).astype(np.float64)
    predicted = (n - below).astype(np.float64)
    fp = predicted - tp
    fn = n_pos - tp
    tn = (n - n_pos) - fp
    obj = _objective(objective, tp, fp, tn, fn, costs)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, _EPS), 1.0)
    recall = tp / max(n_pos, 1)
    return ThresholdCurve(
        thresholds=cands.tolist(),
        objective=obj.tolist(),
        precision=precision.tolist(),
        recall=recall.tolist(),
    )


@dataclass(frozen=True)
class DecisionFit:
    """The rule and what chose it: the cross-fitted Brier score and log loss of each
    calibration tried (``none``: the raw probabilities), the threshold curve, and the
    objective at the tuned threshold and at 0.5 (out-of-fold rows)."""

    rule: DecisionRule
    calibration_scores: dict[str, dict[str, float]]
    curve: ThresholdCurve | None
    objective_tuned: float | None
    objective_default: float | None
    rows: int
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_lines(self) -> list[str]:
        lines = [f"decision: {self.rule.describe()}"]
        if self.objective_tuned is not None and self.objective_default is not None:
            lines.append(
                f"decision: out-of-fold {self.rule.objective} {self.objective_tuned:.4f} at the "
                f"tuned threshold vs {self.objective_default:.4f} at 0.5 ({self.rows} rows)"
            )
        return lines + [f"decision: {n}" for n in self.notes]


def _objective_name(cfg: DecisionConfig, metric: str) -> str:
    """``auto``: the search metric when it scores labels (accuracy, f1 ...), else f1."""
    if cfg.objective != "auto":
        return cfg.objective
    return metric if metric in ("accuracy", "f1", "balanced_accuracy") else "f1"


def fit_decision(
    y: np.ndarray,
    oof: np.ndarray | None,
    classes: list[Any],
    cfg: DecisionConfig,
    *,
    metric: str,
    seed: int,
    rows: np.ndarray | None = None,
    forward: bool = False,
) -> DecisionFit:
    """The decision rule of a classifier from its out-of-fold predictions ``oof`` (rows x
    classes) of the training labels ``y`` (codes; ``rows``: the rows of ``y`` that ``oof``
    predicts, all when None). Without predictions, or for a multiclass task, argmax of the
    uncalibrated probabilities (and a note saying why); regression has no rule.

    ``forward`` (the training rows are in time order, as under ``split.kind: time``): the
    calibrations are judged forward, each fitted on earlier rows than those it is scored on
    (:func:`cross_fitted`)."""
    if not classes:
        return DecisionFit(DecisionRule([]), {}, None, None, None, 0, [])
    if rows is not None:
        y = np.asarray(y)[rows]
        if forward:  # the out-of-fold rows in time order, as the training rows are
            order = np.argsort(rows, kind="stable")
            y, oof = y[order], None if oof is None else np.asarray(oof)[order]
    argmax = DecisionRule.argmax(classes)
    if oof is not None and len(classes) > 2:
        return _fit_multiclass(y, oof, classes, cfg, seed=seed, forward=forward)
    if oof is None:
        why = "multiclass: argmax" if len(classes) != 2 else "no out-of-fold predictions: 0.5"
        rule = argmax if len(classes) != 2 else DecisionRule(list(classes), 0.5, "default")
        return DecisionFit(rule, {}, None, None, None, 0, [why])
    if cfg.calibration == "temperature":
        cfg = cfg.model_copy(update={"calibration": "sigmoid"})  # the binary form of it
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(oof, dtype=np.float64).reshape(len(y), -1)[:, -1], 0.0, 1.0)
    notes: list[str] = []
    scores = {"none": _prob_scores(y, p)}
    methods = {"auto": ["sigmoid", "isotonic"], "none": []}.get(cfg.calibration, [cfg.calibration])
    if cfg.calibration == "auto" and metric in ("roc_auc", "average_precision"):
        methods = ["sigmoid"]  # isotonic steps tie scores and move a ranking metric
        notes.append(f"isotonic calibration not tried: its ties change {metric}")
    folds = min(5, int(min(y.sum(), len(y) - y.sum())))
    best, y_used, p_used, params, values = "none", y, p, [], []
    reference = scores["none"]  # the raw probabilities on the rows the calibrations score
    if folds >= 2:
        for method in methods:
            p_cal = cross_fitted(method, y, p, folds=folds, seed=seed, forward=forward)
            held = ~np.isnan(p_cal)  # forward: the rows after the first window
            if held.sum() < 2 or len(np.unique(y[held])) < 2:
                notes.append(f"{method} calibration not tried: too few rows after the first")
                continue
            scores[method] = _prob_scores(y[held], p_cal[held])
            if not held.all():  # forward: the same rows, uncalibrated
                reference = scores["none_forward"] = _prob_scores(y[held], p[held])
            incumbent = reference if best == "none" else scores[best]
            better = scores[method]["brier"] < incumbent["brier"] - 1e-6
            if better and scores[method]["log_loss"] <= reference["log_loss"]:
                best, y_used, p_used = method, y[held], p_cal[held]
    elif methods:
        notes.append("too few rows of the rarer class to cross-fit a calibration")
    if best != "none":
        params, values = fit_calibration(best, y, p)
        judged = "forward-fitted" if forward else "cross-fitted"
        notes.append(
            f"{best} calibration kept: {judged} Brier {scores[best]['brier']:.4f} vs "
            f"{reference['brier']:.4f} uncalibrated"
        )
    elif methods:
        notes.append(
            "calibration not kept: no method lowered the cross-fitted Brier score without "
            "raising the log loss"
        )
    objective = _objective_name(cfg, metric)
    if objective == "none":
        rule = DecisionRule(list(classes), 0.5, "none (0.5)", best, params, values)
        return DecisionFit(rule, scores, None, None, None, len(y), notes)
    costs = (
        (cfg.costs.false_positive, cfg.costs.false_negative) if cfg.costs is not None else (1, 1)
    )
    curve = threshold_curve(y_used, p_used, objective, costs)
    t, tuned, note = _choose(curve, cfg)
    if note:
        notes.append(note)
    default = float(_objective(objective, *_counts(y_used, p_used >= 0.5), costs))
    rule = DecisionRule(list(classes), t, objective, best, params, values)
    return DecisionFit(rule, scores, curve, tuned, default, len(y_used), notes)


#: Fewest out-of-fold rows a multiclass calibration is cross-fitted on.
MIN_CALIBRATION_ROWS = 50


def _fit_multiclass(
    y: np.ndarray,
    oof: np.ndarray,
    classes: list[Any],
    cfg: DecisionConfig,
    *,
    seed: int,
    forward: bool,
) -> DecisionFit:
    """Argmax, with the out-of-fold probabilities temperature-scaled when a cross-fitted
    (``forward``: forward-fitted) scale lowers their log loss without raising their Brier
    score."""
    argmax = DecisionRule.argmax(classes)
    if cfg.calibration not in ("auto", "temperature"):
        why = "" if cfg.calibration == "none" else f" ({cfg.calibration} is for binary tasks)"
        return DecisionFit(argmax, {}, None, None, None, 0, [f"multiclass: argmax{why}"])
    y = np.asarray(y, dtype=int)
    proba = np.clip(np.asarray(oof, dtype=np.float64).reshape(len(y), -1), 0.0, 1.0)
    proba /= np.maximum(proba.sum(axis=1, keepdims=True), _EPS)
    scores = {"none": _class_scores(y, proba)}
    if len(y) < MIN_CALIBRATION_ROWS:
        note = f"multiclass: argmax, uncalibrated (fewer than {MIN_CALIBRATION_ROWS} rows)"
        return DecisionFit(argmax, scores, None, None, None, len(y), [note])
    held_out = cross_fitted_temperature(y, proba, folds=5, seed=seed, forward=forward)
    held = ~np.isnan(held_out[:, 0])
    reference = scores["none"]
    if not held.all():  # forward: the same rows, uncalibrated
        reference = scores["none_forward"] = _class_scores(y[held], proba[held])
    scores["temperature"] = _class_scores(y[held], held_out[held])
    judged = "forward-fitted" if forward else "cross-fitted"
    kept = scores["temperature"]["log_loss"] < reference["log_loss"] - 1e-6
    if not kept or scores["temperature"]["brier"] > reference["brier"]:
        note = (
            f"multiclass: argmax; temperature calibration not kept ({judged} log loss "
            f"{scores['temperature']['log_loss']:.4f} vs {reference['log_loss']:.4f} uncalibrated)"
        )
        return DecisionFit(argmax, scores, None, None, None, len(y), [note])
    scale = fit_temperature(y, proba)
    rule = DecisionRule(list(classes), None, "argmax", "temperature", [scale], [])
    note = (
        f"temperature calibration kept: {judged} log loss {scores['temperature']['log_loss']:.4f}"
        f" vs {reference['log_loss']:.4f} uncalibrated (log-probabilities x {scale:.3f})"
    )
    return DecisionFit(rule, scores, None, None, None, len(y), [note])


def _class_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The multiclass Brier score (the mean squared distance to the one-hot label) and log
    loss of a class-probability matrix."""
    onehot = np.eye(proba.shape[1])[y]
    return {
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "log_loss": METRICS["log_loss"].from_predictions(y, proba),
    }


def _counts(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return tp, fp, tn, fn


def _choose(curve: ThresholdCurve, cfg: DecisionConfig) -> tuple[float, float, str]:
    """The threshold with the best objective among those meeting the precision and recall
    floors (ties: the middle one of the tied run). When no threshold meets the floors, the
    objective's best, with a note."""
    obj = np.asarray(curve.objective)
    ok = np.ones(len(obj), dtype=bool)
    if cfg.min_precision is not None:
        ok &= np.asarray(curve.precision) >= cfg.min_precision
    if cfg.min_recall is not None:
        ok &= np.asarray(curve.recall) >= cfg.min_recall
    note = ""
    if not ok.any():
        note = "no threshold meets the precision/recall floors on the out-of-fold rows"
        ok[:] = True
    masked = np.where(ok, obj, -np.inf)
    top = np.flatnonzero(masked >= masked.max() - 1e-12)
    i = int(top[len(top) // 2])
    return float(curve.thresholds[i]), float(obj[i]), note


def _prob_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": METRICS["log_loss"].from_predictions(y, p),
    }
