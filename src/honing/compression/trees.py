"""Tree compression: the fewest boosting rounds (or forest trees), and the fewest members of
a weighted vote, that still answer within tolerance of the model.

A boosted model's first rounds carry most of its signal, a forest's trees are exchangeable,
and ensemble selection often keeps members of small weight. Cutting either shrinks the
served graph and its latency in proportion. The cuts are tried from the smallest up, each
scored natively on the rows the pick judges, and the first one whose every metric stays
within the margin is kept (:func:`smallest_within`); it is then exported like any other
model.

Rounds are cut with each library's own API (LightGBM's model text up to an iteration,
XGBoost's booster slice, CatBoost's ``shrink``; a forest keeps its first trees), so a cut
model is the full model's first rounds exactly, not a model trained again."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from honing.compression.candidates import (
    Candidate,
    n_parameters,
    native_candidate,
    onnx_candidate,
)
from honing.compression.members import final_step, named_members, with_final, with_members
from honing.compression.onnx import onnx_bytes
from honing.metrics import within
from honing.modeling.decision import DecisionRule
from honing.models.tree_graphs import FOREST_NAMES

#: The shares of a booster's rounds that are tried, smallest first.
ROUND_SHARES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75)
#: Fewer rounds than this are never tried (a cut that small is not worth its accuracy).
MIN_ROUNDS = 8
VOTES = ("VotingClassifier", "VotingRegressor")


@dataclass(frozen=True)
class Trim:
    """A smaller version of a model: ``model``, and what was cut, in words."""

    model: Any
    note: str


def rounds(estimator: Any) -> int | None:
    """The boosting rounds of a fitted LightGBM, XGBoost or CatBoost estimator, or the trees
    of a fitted forest; None for any other model."""
    if type(estimator).__name__ in FOREST_NAMES:
        return len(estimator.estimators_)
    if hasattr(estimator, "booster_"):
        return int(estimator.booster_.current_iteration())
    if hasattr(estimator, "tree_count_"):
        return int(estimator.tree_count_)
    if hasattr(estimator, "get_booster"):
        return int(estimator.get_booster().num_boosted_rounds())
    return None


def first_rounds(estimator: Any, kept: int) -> Any:
    """A copy of a fitted booster (or forest) that keeps its first ``kept`` rounds (trees);
    the original is left as it was."""
    if type(estimator).__name__ in FOREST_NAMES:
        cut = copy.copy(estimator)
        cut.estimators_ = estimator.estimators_[:kept]
    elif hasattr(estimator, "booster_"):  # LightGBM: its model text up to that iteration
        import lightgbm as lgb

        cut = copy.copy(estimator)
        text = estimator.booster_.model_to_string(num_iteration=kept)
        cut._Booster = lgb.Booster(model_str=text)
    elif hasattr(estimator, "tree_count_"):  # CatBoost
        cut = estimator.copy()
        cut.shrink(ntree_end=kept)
        return cut
    else:  # XGBoost: a slice of its booster
        cut = copy.copy(estimator)
        cut._Booster = estimator.get_booster()[:kept]
    cut.set_params(n_estimators=kept)
    return cut


def cut_rounds(model: Any, share: float) -> Any | None:
    """``model`` (a pipeline, a booster, or a vote of them) with every booster in it cut to
    ``share`` of its rounds; None when nothing in it would lose a round."""
    final = final_step(model)
    if type(final).__name__ in VOTES:
        members = [cut_rounds(m, share) for m in final.estimators_]
        if all(m is None for m in members):
            return None
        pairs = zip(members, final.estimators_, strict=True)
        return with_members(model, [cut if cut is not None else whole for cut, whole in pairs])
    total = rounds(final)
    if not total or _kept(total, share) >= total:
        return None
    return with_final(model, first_rounds(final, _kept(total, share)))


def _kept(total: int, share: float) -> int:
    """The rounds a cut to ``share`` of ``total`` keeps (at least :data:`MIN_ROUNDS`)."""
    return max(MIN_ROUNDS, round(share * total))


def cuttable(model: Any) -> bool:
    """Whether ``model`` has anything to cut: a vote of two members or more, or a booster
    (or forest) that would lose rounds at the smallest share (in the model or a member);
    decided without building any cut."""
    final = final_step(model)
    if type(final).__name__ in VOTES:
        return len(final.estimators_) > 1 or any(cuttable(m) for m in final.estimators_)
    total = rounds(final)
    return bool(total) and _kept(total, ROUND_SHARES[0]) < total


def keep_members(model: Any, kept: list[int]) -> Any:
    """A vote (or a pipeline ending in one) keeping only the members at indices ``kept``,
    their weights in the same proportions; one member is returned on its own."""
    final = final_step(model)
    if len(kept) == 1:
        return with_final(model, final.estimators_[kept[0]])
    vote = copy.copy(final)
    weights = list(final.weights or [1.0] * len(final.estimators_))
    vote.estimators = [final.estimators[i] for i in kept]
    vote.estimators_ = [final.estimators_[i] for i in kept]
    vote.weights = [weights[i] for i in kept]
    vote.named_estimators_ = named_members(vote)
    if hasattr(final, "le_"):
        vote.le_, vote.classes_ = final.le_, final.classes_
    return with_final(model, vote)


def member_trims(model: Any) -> Iterator[Trim]:
    """A vote's smaller versions, fewest members first: its heaviest member alone, then
    the two heaviest, and so on (nothing for a model that is not a vote)."""
    final = final_step(model)
    if type(final).__name__ not in VOTES or len(final.estimators_) < 2:
        return
    weights = list(final.weights or [1.0] * len(final.estimators_))
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    for n in range(1, len(order)):
        kept = sorted(order[:n])
        names = ", ".join(final.estimators[i][0] for i in kept)
        yield Trim(keep_members(model, kept), f"{n} of {len(order)} members ({names})")


def round_trims(model: Any) -> Iterator[Trim]:
    """``model`` with its boosters cut to each of :data:`ROUND_SHARES` of their rounds,
    fewest first (nothing for a model with no booster)."""
    total = rounds(final_step(model))
    for share in ROUND_SHARES:
        cut = cut_rounds(model, share)
        if cut is None:
            continue
        if total:  # one booster or forest
            yield Trim(cut, f"{rounds(final_step(cut))} of {total} rounds")
        else:
            yield Trim(cut, f"each member's first {share:.0%} of its rounds")


def smallest_within(model: Any, fits: Callable[[Any], bool]) -> Trim | None:
    """The smallest version of ``model`` that ``fits`` accepts: first the fewest vote
    members, then the fewest boosting rounds of what is left; None when no cut is
    accepted."""
    chosen: Trim | None = next((t for t in member_trims(model) if fits(t.model)), None)
    base = chosen.model if chosen is not None else model
    cut = next((t for t in round_trims(base) if fits(t.model)), None)
    if cut is None:
        return chosen
    note = f"{chosen.note}; {cut.note}" if chosen is not None else cut.note
    return Trim(cut.model, note)


def trimmed_candidate(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: list[Any],
    *,
    reference: dict[str, float],
    rule: DecisionRule | None,
    metric: str,
    tolerance: float,
    numeric: list[str],
    categorical: list[str],
) -> tuple[Candidate | None, str]:
    """``trimmed``: the smallest cut of ``pipeline`` (:func:`smallest_within`) whose every
    metric on ``X``, ``y`` under the decision ``rule`` stays within ``tolerance`` of the
    whole model's ``reference`` metrics on those rows, by the pick's own rule
    (:func:`honing.metrics.within`), served as one ONNX graph (native skops when it has
    none). None, and the reason, when the model has nothing to cut or no cut stays within."""
    from honing.evaluation import evaluate

    def fits(model: Any) -> bool:
        values = evaluate(model, X, y, classes, rule).metrics
        return within(values, reference, metric, tolerance)

    if not cuttable(pipeline):
        return None, "no boosting rounds, forest trees or vote members to cut"
    trim = smallest_within(pipeline, fits)
    if trim is None:
        return None, f"no cut stays within {tolerance:g} of the whole model on every metric"
    try:
        data = onnx_bytes(trim.model, numeric, categorical, rows=X)
    except Exception as exc:  # noqa: BLE001 - served natively instead
        native = native_candidate(trim.model)
        native.name, native.note = "trimmed", f"{trim.note}; native (no ONNX: {type(exc).__name__})"
        return native, ""
    task = "classification" if is_classifier(trim.model) else "regression"
    params = n_parameters(trim.model)
    return onnx_candidate("trimmed", data, numeric, categorical, trim.note, task, params), ""
