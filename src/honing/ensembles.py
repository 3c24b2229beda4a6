"""Ensembles of the best search trials: soft voting and stacking, kept only when they beat the
best single model.

The candidates are cross-validated by :func:`honing.training.train_model` on the same folds as
the search trials (same splitter and seed), so their scores compare with the trials'; the pure
:func:`choose` then decides which model is refit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from honing.config import EnsembleConfig, FeaturesConfig
from honing.features import FeatureColumns
from honing.search import SearchResult, TrialResult
from honing.training import CVResult, ModelSpec, metric_value, train_model


def ensemble_specs(result: SearchResult, cfg: EnsembleConfig) -> list[ModelSpec]:
    """One spec per configured method over the ``top_k`` best distinct finished trials (none
    when fewer than two finished)."""
    seen: set[str] = set()
    top: list[TrialResult] = []
    for trial in sorted(result.completed, key=lambda t: -(t.score or 0.0)):
        if trial.spec.label() not in seen:
            seen.add(trial.spec.label())
            top.append(trial)
        if len(top) == cfg.top_k:
            break
    if len(top) < 2:
        return []
    members = [asdict(t.spec) for t in top]
    return [ModelSpec(method, {"members": members}) for method in cfg.methods]


#: Cost of cross-validating an ensemble relative to the sum of its members' CV times: soft
#: voting refits each member once per fold; stacking also fits them on 3 inner folds.
COST_FACTOR = {"soft_voting": 1.0, "stacking": 4.0}


def affordable(
    specs: list[ModelSpec], result: SearchResult, time_left_s: float | None
) -> tuple[list[ModelSpec], list[str]]:
    """The ensemble specs whose estimated CV cost (members' measured CV seconds times
    :data:`COST_FACTOR`) fits in what is left of the time budget; notes for those skipped.
    ``time_left_s=None``: no budget, all are kept."""
    if time_left_s is None:
        return specs, []
    seconds = {t.spec.label(): t.fit_seconds or 0.0 for t in result.completed}
    kept, notes = [], []
    for spec in specs:
        members = [ModelSpec(**m).label() for m in spec.params["members"]]
        cost = COST_FACTOR[spec.family] * sum(seconds.get(m, 0.0) for m in members)
        if cost <= time_left_s:
            kept.append(spec)
        else:
            notes.append(
                f"{spec.family} skipped: needs ~{cost:.0f}s, {max(time_left_s, 0):.0f}s "
                "of the time budget left"
            )
    return kept, notes


@dataclass(frozen=True)
class EnsembleScore:
    spec: ModelSpec
    cv: CVResult


def score_ensembles(
    X: pd.DataFrame,
    y: np.ndarray,
    specs: list[ModelSpec],
    *,
    columns: FeatureColumns,
    features: FeaturesConfig,
    seed: int,
    folds: int,
    metric: str,
    task: str = "classification",
) -> list[EnsembleScore]:
    """Cross-validate each ensemble spec exactly as a search trial is."""
    out = []
    for spec in specs:
        res = train_model(
            X,
            y,
            spec,
            columns=columns,
            features=features,
            seed=seed,
            metric=metric,
            cv_folds=folds,
            refit=False,
            task=task,
        )
        assert res.cv is not None
        out.append(EnsembleScore(spec, res.cv))
    return out


@dataclass(frozen=True)
class EnsembleDecision:
    spec: ModelSpec
    reason: str
    scores: dict[str, float]  # CV, scikit-learn's greater-is-better convention (metric_value)

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.spec.family, "reason": self.reason, "cv_scores": self.scores}


def choose(
    best: TrialResult, scored: list[EnsembleScore], notes: list[str] | None = None
) -> EnsembleDecision:
    """The ensemble with the highest CV score when it is strictly above the best single
    trial's; otherwise the best single model. ``notes`` (skipped ensembles) join the reason."""
    assert best.score is not None
    scores = {"best_single": best.score, **{s.spec.family: s.cv.mean for s in scored}}
    metric = scored[0].cv.metric if scored else ""

    def shown(score: float) -> str:  # in the metric's units (RMSE positive)
        return f"{metric_value(metric, score) if metric else score:.4f}"

    winner = max(scored, key=lambda s: s.cv.mean, default=None)
    if winner is not None and winner.cv.mean > best.score:
        return EnsembleDecision(
            winner.spec,
            f"{winner.spec.family} CV {metric} {shown(winner.cv.mean)} beats best single "
            f"{best.spec.family} {shown(best.score)}",
            scores,
        )
    tried = ", ".join([f"{s.spec.family} {shown(s.cv.mean)}" for s in scored] + list(notes or []))
    return EnsembleDecision(
        best.spec,
        f"best single {best.spec.family} {shown(best.score)} kept (ensembles: {tried or 'none'})",
        scores,
    )
