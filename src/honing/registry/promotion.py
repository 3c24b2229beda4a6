"""The statistics behind the champion/challenger gate: both models are scored on the same
test rows, and the difference of the registry metric gets a confidence interval (DeLong's
for ROC-AUC of a binary task, a paired bootstrap otherwise), with McNemar's test for label
metrics and the share of rows whose decision flips.

:func:`judge` turns a :class:`Comparison` into one of three outcomes: ``promote`` (the
challenger is, with the configured confidence, at most ``margin`` worse than the champion),
``keep`` (it is surely worse than that) or ``undecidable`` (the test split cannot tell; then
it says how many rows would). Pure functions: :func:`honing.registry.champion.champion_gate` calls
them and writes the words.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from honing.metrics import METRICS
from honing.modeling.decision import Answers


@dataclass(frozen=True)
class Evidence:
    """Both models' answers on the same test rows, and the true labels (codes) or values."""

    y: np.ndarray
    challenger: Answers
    champion: Answers


@dataclass(frozen=True)
class Recorded:
    """Evidence both models gave live, recorded by the endpoint (the champion's answers and
    the shadowing challenger's, on the same requests), with the versions that gave them."""

    champion: str
    challenger: str
    evidence: Evidence


@dataclass(frozen=True)
class Comparison:
    """The registry metric's difference, challenger minus champion, in the metric's units
    (``delta``; positive: the challenger scores higher, which for an error such as RMSE is
    worse), and its confidence interval ``low``..``high`` on the same scale."""

    metric: str
    method: str
    rows: int
    delta: float
    low: float
    high: float
    confidence: float
    p_value: float | None
    mcnemar_p: float | None
    flip_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def gain_interval(self) -> tuple[float, float]:
        """The interval as a gain (greater is better for the challenger)."""
        if METRICS[self.metric].higher_is_better:
            return self.low, self.high
        return -self.high, -self.low


def delong(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[float, float, float]:
    """DeLong's test of two correlated ROC-AUCs on the same rows (the fast midrank form of
    Sun and Xu, 2014): the difference ``auc(first) - auc(second)``, its standard error and
    the two-sided p-value. Both classes must be present. With a single row of a class the
    spread cannot be estimated (each class's variance is taken over its own rows): the
    standard error is then infinite and the p-value 1, no evidence either way."""
    y = np.asarray(y, dtype=int)
    scores = np.vstack([first, second]).astype(np.float64)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = np.apply_along_axis(stats.rankdata, 1, pos)
    ty = np.apply_along_axis(stats.rankdata, 1, neg)
    tz = np.apply_along_axis(stats.rankdata, 1, np.hstack([pos, neg]))
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    if min(m, n) < 2:
        return float(aucs[0] - aucs[1]), math.inf, 1.0
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    se = math.sqrt(max(var, 0.0))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return diff, se, p


def mcnemar(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """Exact McNemar test of two classifiers' decisions on the same rows (p-value)."""
    right1, right2 = first == y, second == y
    b, c = int((right1 & ~right2).sum()), int((~right1 & right2).sum())
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5).pvalue)


def compare(
    evidence: Evidence, metric: str, *, confidence: float = 0.95, seed: int = 0, n_boot: int = 1000
) -> Comparison:
    """The metric's paired difference on the same rows with its confidence interval."""
    y = np.asarray(evidence.y)
    mine, theirs = evidence.challenger, evidence.champion
    delta = mine.score(metric, y) - theirs.score(metric, y)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    codes_known = mine.codes is not None and theirs.codes is not None
    flips = float(np.mean(mine.codes != theirs.codes)) if codes_known else None
    mcn = mcnemar(y, mine.codes, theirs.codes) if codes_known else None
    binary = mine.values.ndim == 2 and mine.values.shape[1] == 2
    if metric == "roc_auc" and binary and len(np.unique(y)) == 2:
        diff, se, p = delong(y, mine.values[:, 1], theirs.values[:, 1])
        return Comparison(
            metric, "DeLong", len(y), diff, diff - z * se, diff + z * se, confidence, p,
            mcn, flips,
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), len(y))
        sample = (
            Answers(a.values[rows], None if a.codes is None else a.codes[rows])
            for a in (mine, theirs)
        )
        a, b = sample
        try:
            diffs.append(a.score(metric, y[rows]) - b.score(metric, y[rows]))
        except ValueError:  # a resample with one class: undefined for ranking metrics
            continue
    tail = (1 - confidence) / 2 * 100
    low, high = (
        (float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail)))
        if diffs
        else (-math.inf, math.inf)
    )
    return Comparison(
        metric, f"paired bootstrap ({len(diffs)} resamples)", len(y), delta, low, high,
        confidence, None, mcn, flips,
    )  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    outcome: str  # promote | keep | undecidable
    reason: str
    rows_needed: int | None = None


def judge(comparison: Comparison, *, margin: float, max_flip_share: float | None) -> Verdict:
    """Promote when the interval's worst case for the challenger is at most ``margin``
    worse; keep when even its best case is more than ``margin`` worse, or when more rows
    than ``max_flip_share`` would change their decision; otherwise undecidable, with the
    rows a split would need for the interval to clear the margin (same effect, same spread)."""
    c = comparison
    low, high = c.gain_interval()
    gain = (low + high) / 2
    ci = (
        f"{c.metric} difference {c.delta:+.4f} ({c.confidence:.0%} interval "
        f"{c.low:+.4f} to {c.high:+.4f}, {c.method}, {c.rows} rows)"
    )
    if max_flip_share is not None and c.flip_share is not None and c.flip_share > max_flip_share:
        return Verdict(
            "keep",
            f"{ci}; {c.flip_share:.1%} of decisions flip, above the cap {max_flip_share:.1%}",
        )
    if not (math.isfinite(low) and math.isfinite(high)):
        return Verdict(
            "undecidable",
            f"{ci}: the test split has too few rows (of a class, for a ranking metric) to "
            "estimate the difference's spread",
        )
    if low >= -margin:
        return Verdict("promote", f"{ci}: at worst {-low:.4f} worse, within margin {margin:g}")
    if high < -margin:
        return Verdict("keep", f"{ci}: worse by more than margin {margin:g}")
    half = (high - low) / 2
    distance = abs(gain + margin)
    needed = math.ceil(c.rows * (half / distance) ** 2) if distance > 1e-9 else None
    more = (
        f"about {needed} test rows would resolve a difference this size"
        if needed is not None
        else "no test split resolves a difference of exactly the margin"
    )
    return Verdict(
        "undecidable", f"{ci}: the test split cannot resolve margin {margin:g}; {more}", needed
    )
