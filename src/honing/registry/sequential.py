"""Sequential promotion: a challenger that its test split could not decide is judged again
on every labelled batch, with the evidence of all the batches so far.

Each look (the test split's comparison, then each batch's) gives the registry metric's
difference, challenger minus champion, on rows both models answered, and its standard
error. The looks are pooled by inverse variance (they are disjoint rows) and the pooled
interval is judged as the gate judges one split: promote when its worst case is within the
margin, drop when its best case is not, otherwise wait for the next batch.

Repeated looks would inflate the error rate of a fixed interval, so the k-th batch look is
held at ``(1 - confidence) / 2**k``: all the batch looks together spend at most
``1 - confidence``, on top of what the test split's own gate spent (alpha spending with a
union bound, valid whatever the dependence between looks). Pure functions: the registry
acts on the verdict (:func:`honing.registry.follow_challenger`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from honing.metrics import METRICS
from honing.registry.promotion import Comparison


@dataclass(frozen=True)
class Look:
    """One comparison of challenger and champion: where (``source``), on how many rows, the
    difference (challenger minus champion, in the metric's units) and its standard error."""

    source: str
    rows: int
    delta: float
    se: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def look(comparison: Comparison, source: str) -> Look:
    """The look a comparison gives: its standard error from its interval's half-width."""
    z = float(stats.norm.ppf(0.5 + comparison.confidence / 2))
    width = comparison.high - comparison.low
    se = width / (2 * z) if math.isfinite(width) else math.inf
    return Look(source, comparison.rows, float(comparison.delta), float(se))


@dataclass(frozen=True)
class SequentialVerdict:
    """``promote``, ``drop`` or ``undecidable`` (wait for the next batch), with the pooled
    difference, its interval at this look's confidence, and the reason in words."""

    outcome: str
    reason: str
    delta: float
    low: float
    high: float
    confidence: float
    batch_looks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_looks(
    looks: list[Look], *, metric: str, margin: float, confidence: float, seeded: bool
) -> SequentialVerdict:
    """The verdict on all ``looks`` so far (``seeded``: the first is the test split's, which
    spends no further error; the others are batch looks)."""
    usable = [lk for lk in looks if math.isfinite(lk.se) and lk.se > 0]
    batch_looks = len(looks) - (1 if seeded else 0)
    alpha = (1 - confidence) / 2**batch_looks
    level = 1 - alpha
    if not usable:
        return SequentialVerdict(
            "undecidable", "no look has a finite standard error yet", math.nan, -math.inf,
            math.inf, level, batch_looks,
        )  # fmt: skip
    weights = [1 / lk.se**2 for lk in usable]
    delta = sum(w * lk.delta for w, lk in zip(weights, usable, strict=True)) / sum(weights)
    se = math.sqrt(1 / sum(weights))
    z = float(stats.norm.ppf(1 - alpha / 2))
    low, high = delta - z * se, delta + z * se
    gain_low, gain_high = (low, high) if METRICS[metric].higher_is_better else (-high, -low)
    rows = sum(lk.rows for lk in looks)
    words = (
        f"{metric} difference {delta:+.4f} pooled over {len(looks)} looks ({rows} rows; "
        f"{level:.2%} interval {low:+.4f} to {high:+.4f}, look {batch_looks} of the batches)"
    )
    if gain_low >= -margin:
        how = (
            "better over the whole interval" if gain_low >= 0 else f"at worst {-gain_low:.4f} worse"
        )
        return SequentialVerdict(
            "promote", f"{words}: {how}, within margin {margin:g}",
            delta, low, high, level, batch_looks,
        )  # fmt: skip
    if gain_high < -margin:
        return SequentialVerdict(
            "drop", f"{words}: worse than the champion by more than margin {margin:g}",
            delta, low, high, level, batch_looks,
        )  # fmt: skip
    return SequentialVerdict(
        "undecidable", f"{words}: not resolved yet; the next labelled batch adds its rows",
        delta, low, high, level, batch_looks,
    )  # fmt: skip


def seed_look(tags: dict[str, str], confidence: float) -> Look | None:
    """The test split's look, from the gate's tags on a registered version (None when the
    gate compared point values, without an interval)."""
    interval = tags.get("honing.gate.interval", "")
    if ".." not in interval or tags.get("honing.gate.champion", "none") == "none":
        return None
    low, _, high = interval.partition("..")
    delta = float(tags["honing.gate.challenger"]) - float(tags["honing.gate.champion"])
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = int(tags.get("honing.gate.rows", "0") or 0)
    return Look("test split", rows, delta, (float(high) - float(low)) / (2 * z))
