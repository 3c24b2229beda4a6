"""Calibration maps: from a classifier's raw probabilities to calibrated ones.

Binary tasks map P(positive) by a ``sigmoid`` (Platt scaling on the logit) or ``isotonic``
map; multiclass tasks scale the log-probabilities by one ``temperature`` factor, which keeps
every row's argmax. Each map is judged on rows it was not fitted on: cross-fitted over
stratified folds, or forward (expanding windows) when the rows are in time order.
:mod:`honing.modeling.decision` chooses among them and stores the chosen one in a model's rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def calibrated(method: str, params: list[float], values: list[float], p: np.ndarray) -> np.ndarray:
    """P(positive) after a fitted calibration map."""
    p = np.asarray(p, dtype=np.float64)
    if method == "sigmoid":
        a, b = params
        logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
        return 1.0 / (1.0 + np.exp(-(a * logit + b)))
    if method == "isotonic":
        return np.interp(p, params, values)
    return p


def fit_calibration(method: str, y: np.ndarray, p: np.ndarray) -> tuple[list[float], list[float]]:
    """The parameters of a ``sigmoid`` (Platt scaling on the logit) or ``isotonic`` map
    fitted on (P(positive), label) pairs."""
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit.reshape(-1, 1), y)
        return [float(lr.coef_[0, 0]), float(lr.intercept_[0])], []
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


def tempered(proba: np.ndarray, scale: float) -> np.ndarray:
    """Class probabilities with their log-probabilities multiplied by ``scale`` and
    renormalized (temperature 1/``scale``): above 1 sharpens, below 1 softens. Each row's
    order of classes is kept."""
    z = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)) * scale
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y: np.ndarray, proba: np.ndarray) -> float:
    """The scale of the log-probabilities (in [0.05, 20]) that minimizes the log loss of
    the class codes ``y`` under the class-probability matrix ``proba``."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=int)
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    rows = np.arange(len(y))

    def nll(log_scale: float) -> float:
        z = logp * np.exp(log_scale)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, y]))

    found = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def calibration_splits(y: np.ndarray, folds: int, seed: int, forward: bool) -> Any:
    """(fit rows, held rows) pairs: expanding windows when ``forward``, else stratified
    folds (plain folds when a class has fewer rows than folds)."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    index = np.zeros((len(y), 1))
    if forward:
        return TimeSeriesSplit(n_splits=folds).split(index)
    if np.bincount(np.asarray(y, dtype=int)).min() >= folds:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(index, y)
    return KFold(n_splits=folds, shuffle=True, random_state=seed).split(index)


def cross_fitted_temperature(
    y: np.ndarray, proba: np.ndarray, *, folds: int, seed: int, forward: bool = False
) -> np.ndarray:
    """Each row's temperature-scaled class probabilities, from a scale fitted on the other
    folds' rows (``forward``: on the earlier rows only; the first window's rows are NaN)."""
    out = np.full(proba.shape, np.nan, dtype=np.float64)
    for fit_rows, held in calibration_splits(y, folds, seed, forward):
        out[held] = tempered(proba[held], fit_temperature(y[fit_rows], proba[fit_rows]))
    return out


def cross_fitted(
    method: str, y: np.ndarray, p: np.ndarray, *, folds: int, seed: int, forward: bool = False
) -> np.ndarray:
    """Each row's calibrated probability from a map fitted on the other folds' rows.

    ``forward`` (rows in time order): each fold's map is fitted on the rows before it only
    (expanding windows), so no future row calibrates a past one; the rows of the first
    window, and of any fold whose past lacks a class, have none (NaN)."""
    out = np.full(len(p), np.nan, dtype=np.float64)
    for fit_rows, held in calibration_splits(y, folds, seed, forward):
        if len(np.unique(y[fit_rows])) < 2:
            continue  # a forward window with one class only: nothing to calibrate against
        params, values = fit_calibration(method, y[fit_rows], p[fit_rows])
        out[held] = calibrated(method, params, values, p[held])
    return out
