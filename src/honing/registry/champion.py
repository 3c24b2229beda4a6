"""The champion/challenger gate: pure functions that decide whether a challenger takes the
champion alias, with the decision's reason in words. :func:`champion_gate` compares the two
models on the same test rows, statistically (:mod:`honing.registry.promotion`) or on point values;
:func:`decide` applies the config and the per-slice non-inferiority check. Writing the
decision to the registry is :mod:`honing.registry`'s job."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from honing.config import EvaluationConfig, RegistryConfig
from honing.evaluation import EvaluationReport
from honing.evaluation.slices import slice_regressions
from honing.metrics import compare
from honing.modeling.decision import Answers, DecisionRule, answers
from honing.registry.promotion import Comparison, Evidence, judge
from honing.registry.promotion import compare as compare_models


@dataclass(frozen=True)
class ChampionScore:
    version: str
    report: EvaluationReport | None
    error: str | None = None
    answers: Answers | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    margin: float
    champion_version: str | None
    outcome: str = ""  # promote | keep | undecidable (empty: promote or keep by ``promote``)
    comparison: Comparison | None = None
    rows_needed: int | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.outcome or ("promote" if self.promote else "keep")

    def log_lines(self) -> list[str]:
        return [f"gate: {self.verdict.upper()}: {self.reason}"]

    def tags(self) -> dict[str, str]:
        extra = {}
        if self.comparison is not None:
            c = self.comparison
            extra = {
                "honing.gate.method": c.method,
                "honing.gate.interval": f"{c.low:+.6f}..{c.high:+.6f}",
                "honing.gate.flip_share": "n/a" if c.flip_share is None else f"{c.flip_share:.4f}",
                "honing.gate.rows_needed": str(self.rows_needed or "n/a"),
                "honing.gate.rows": str(c.rows),
            }
        return {
            "honing.gate.outcome": self.verdict,
            **extra,
            "honing.gate.promoted": str(self.promote).lower(),
            "honing.gate.metric": self.metric,
            "honing.gate.challenger": f"{self.challenger:.6f}",
            "honing.gate.champion": "none" if self.champion is None else f"{self.champion:.6f}",
            "honing.gate.champion_version": self.champion_version or "none",
            "honing.gate.margin": f"{self.margin:g}",
            "honing.gate.reason": self.reason,
        }


def champion_gate(
    challenger: EvaluationReport,
    champion: ChampionScore | None,
    *,
    metric: str,
    margin: float,
    evidence: Evidence | None = None,
    confidence: float = 0.95,
    max_flip_share: float | None = None,
    seed: int = 0,
) -> GateDecision:
    """Promote the challenger when there is no champion. With ``evidence`` (both models'
    answers on the same test rows), decide on the confidence interval of the metric
    difference: promote, keep or undecidable (:func:`honing.registry.promotion.judge`). Without it,
    on the point values: ``challenger >= champion - margin`` (``challenger <= champion +
    margin`` for errors such as RMSE). A champion that cannot be scored blocks promotion."""
    value = challenger.metrics[metric]
    if not math.isfinite(value):
        return GateDecision(
            False,
            f"challenger {metric} is not finite",
            metric,
            value,
            None,
            margin,
            champion.version if champion else None,
        )
    if champion is None:
        return GateDecision(
            True, "no champion yet: first model is promoted", metric, value, None, margin, None
        )
    if champion.report is None:
        return GateDecision(
            False,
            f"champion v{champion.version} could not be scored on this test set "
            f"({champion.error}); not promoted, review and set the alias by hand",
            metric,
            value,
            None,
            margin,
            champion.version,
        )
    best = champion.report.metrics[metric]
    theirs = dict(champion.report.metrics)
    if evidence is not None:
        comparison = compare_models(evidence, metric, confidence=confidence, seed=seed)
        verdict = judge(comparison, margin=margin, max_flip_share=max_flip_share)
        return GateDecision(
            verdict.outcome == "promote",
            f"{verdict.outcome} against champion v{champion.version}: {verdict.reason}",
            metric,
            value,
            best,
            margin,
            champion.version,
            outcome=verdict.outcome,
            comparison=comparison,
            rows_needed=verdict.rows_needed,
            champion_metrics=theirs,
        )
    ok, words = compare(metric, value, best, margin)
    mine, op, theirs = words.split(" ", 2)
    reason = (
        f"challenger {metric} {mine} {op} champion v{champion.version} {theirs} "
        f"(delta {value - best:+.4f})" + ("" if ok else "; champion kept")
    )
    return GateDecision(
        ok, reason, metric, value, best, margin, champion.version, champion_metrics=theirs
    )


def decide(
    challenger: EvaluationReport,
    model: Any,
    rule: DecisionRule | None,
    X: pd.DataFrame,
    y: np.ndarray,
    champion: ChampionScore | None,
    cfg: RegistryConfig,
    *,
    seed: int = 0,
    evaluation: EvaluationConfig | None = None,
) -> GateDecision:
    """The gate as configured (``cfg.gate``): statistical on both models' answers on the
    same test rows (the challenger ``model`` deciding by ``rule``), or on point values.
    With ``evaluation.slice_gate.non_inferiority`` set, a challenger that would be promoted
    is kept when any slice of ``evaluation.slices`` is that much worse than the champion's."""
    evidence = None
    if champion is not None and champion.answers is not None:
        evidence = Evidence(
            np.asarray(y), answers(model, X, challenger.classes, rule), champion.answers
        )
    decision = champion_gate(
        challenger,
        champion,
        metric=cfg.metric,
        margin=cfg.promotion_margin,
        evidence=evidence if cfg.gate == "statistical" else None,
        confidence=cfg.confidence,
        max_flip_share=cfg.max_flip_share,
        seed=seed,
    )
    tolerance = evaluation.slice_gate.non_inferiority if evaluation is not None else None
    if not decision.promote or evidence is None or tolerance is None or evaluation is None:
        return decision
    worse = slice_regressions(
        X,
        y,
        evidence.challenger,
        evidence.champion,
        columns=list(evaluation.slices),
        metric=evaluation.slice_gate.metric or cfg.metric,
        tolerance=tolerance,
        min_rows=evaluation.slice_gate.min_rows,
    )
    if not worse:
        return decision
    return replace(
        decision,
        promote=False,
        outcome="keep",
        reason=f"{decision.reason}; but slices are more than {tolerance:g} worse than the "
        f"champion's: {'; '.join(worse)}",
    )
