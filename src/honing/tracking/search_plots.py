"""What a reviewer asks of a search, as optuna-dashboard answers it: how the best score grew
trial by trial (the optimization history), and which hyperparameters of each family moved
the score (their importance). Both are pure: data from a :class:`~honing.search.SearchResult`,
and figures from that data; :func:`honing.stages.record.log_evaluation` logs them.

A hyperparameter's importance is the share of a random forest's impurity decrease that its
splits account for, the forest fitted on the family's completed trials (hyperparameters as
inputs, on a log scale where they span more than a decade; the CV score as the target). It
says which settings mattered for this table within the space searched, as fANOVA does, not
that others never matter."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from honing.metrics import lower_is_better
from honing.search.trials import SearchResult, TrialResult

#: Completed trials a family needs before its hyperparameters' importance is estimated.
MIN_TRIALS = 8


@dataclass(frozen=True)
class HistoryPoint:
    """One completed trial: its place in finishing order, the seconds into the search it
    ended at (None: unknown), its family, score and the best score so far."""

    order: int
    seconds: float | None
    family: str
    score: float
    best: float


def history(search: SearchResult) -> list[HistoryPoint]:
    """The completed trials in the order they ended, with the best score so far."""
    done = [t for t in search.trials if t.status == "completed" and _finite(t.score)]
    starts = [t.started_at for t in done if t.started_at is not None]
    origin = min(starts) if starts else None

    def ended(t: TrialResult) -> float | None:
        if origin is None or t.started_at is None:
            return None
        return t.started_at - origin + (t.fit_seconds or 0.0)

    ordered = sorted(enumerate(done), key=lambda it: (ended(it[1]) or 0.0, it[0]))
    better = min if lower_is_better(search.metric) else max
    points: list[HistoryPoint] = []
    for order, (_, trial) in enumerate(ordered, 1):
        score = float(trial.score)  # type: ignore[arg-type]
        best = score if not points else better(points[-1].best, score)
        points.append(HistoryPoint(order, ended(trial), trial.spec.family, score, best))
    return points


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _numeric(trials: list[TrialResult]) -> dict[str, np.ndarray]:
    """Each hyperparameter that every trial of a family set to a number and that varies, as
    a column (log10 where all are positive and span more than a decade)."""
    names = set.intersection(*(set(t.spec.params) for t in trials))
    columns: dict[str, np.ndarray] = {}
    for name in sorted(names):
        values = [t.spec.params[name] for t in trials]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            continue
        column = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(column)) or np.ptp(column) == 0:
            continue
        if column.min() > 0 and column.max() / column.min() > 10:
            column = np.log10(column)
        columns[name] = column
    return columns


def param_importance(
    search: SearchResult, min_trials: int = MIN_TRIALS, seed: int = 0
) -> dict[str, dict[str, float]]:
    """For each family with at least ``min_trials`` completed trials, the share of the CV
    score's explained variation that each of its numeric hyperparameters accounts for
    (summing to 1, largest first); families with fewer trials, or no varying number, are
    left out."""
    from sklearn.ensemble import RandomForestRegressor

    out: dict[str, dict[str, float]] = {}
    by_family: dict[str, list[TrialResult]] = {}
    for t in search.trials:
        if t.status == "completed" and _finite(t.score) and "members" not in t.spec.params:
            by_family.setdefault(t.spec.family, []).append(t)
    for family, trials in sorted(by_family.items()):
        if len(trials) < min_trials:
            continue
        columns = _numeric(trials)
        y = np.asarray([t.score for t in trials], dtype=float)
        if not columns or np.ptp(y) == 0:
            continue
        X = np.column_stack(list(columns.values()))
        forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed)
        forest.fit(X, y)
        shares = sorted(
            zip(columns, forest.feature_importances_, strict=True), key=lambda kv: -kv[1]
        )
        out[family] = {name: round(float(share), 4) for name, share in shares}
    return out


def plot_history(points: list[HistoryPoint], metric: str) -> Any:
    """Each completed trial's score (by family) and the best so far, against the seconds
    into the search it ended at (trial order where times are unknown)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    timed = all(p.seconds is not None for p in points)
    x = [p.seconds if timed else p.order for p in points]
    for family in sorted({p.family for p in points}):
        xs = [xi for xi, p in zip(x, points, strict=True) if p.family == family]
        ys = [p.score for p in points if p.family == family]
        ax.scatter(xs, ys, s=18, alpha=0.7, label=family)
    ax.step(x, [p.best for p in points], where="post", color="black", label="best so far")
    ax.set_xlabel("seconds into the search" if timed else "trial (in the order they ended)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title(f"Optimization history: {len(points)} completed trials")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_importance(importance: dict[str, dict[str, float]]) -> Any:
    """One panel per family: its hyperparameters' importance, largest on top."""
    import matplotlib.pyplot as plt

    families = list(importance)
    fig, axes = plt.subplots(
        len(families), 1, figsize=(6, 1.2 + 0.35 * sum(len(v) for v in importance.values()))
    )
    for ax, family in zip(np.atleast_1d(axes), families, strict=True):
        names = list(importance[family])[::-1]
        ax.barh(names, [importance[family][n] for n in names])
        ax.set_title(f"{family}: hyperparameter importance", fontsize=9)
        ax.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def search_figures(search: SearchResult) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The search's figures by file name (the history; the importances where any family had
    enough trials) and the importances themselves."""
    figures: dict[str, Any] = {}
    points = history(search)
    if points:
        figures["optimization_history.png"] = plot_history(points, search.metric)
    importance = param_importance(search)
    if importance:
        figures["param_importance.png"] = plot_importance(importance)
    return figures, importance
