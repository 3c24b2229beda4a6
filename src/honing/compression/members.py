"""How a fitted model is composed: the estimator at its end, the member pipelines of a vote
or stack, and copies of it with either replaced. Compression reads models through these
(cutting rounds, members and inputs) and never fits them again."""

from __future__ import annotations

import copy
from typing import Any


def final_step(model: Any) -> Any:
    """The estimator at the end of a pipeline (the model itself when it is not one)."""
    return model.steps[-1][1] if hasattr(model, "steps") else model


def vote_members(model: Any) -> list[Any]:
    """The member pipelines of a vote or stack at the end of ``model``; [] for one model."""
    last = final_step(model)
    members = getattr(last, "estimators_", None)
    if type(last).__name__.startswith(("Voting", "Stacking")) and members:
        return list(members)
    return []


def with_final(model: Any, final: Any) -> Any:
    """``model`` with its final estimator replaced (feature steps shared, not copied). A
    pipeline of that one step (an ensemble's wrapper) gives way to the replacement: a kept
    member is itself a whole pipeline."""
    if not hasattr(model, "steps") or len(model.steps) == 1:
        return final
    from sklearn.pipeline import Pipeline

    return Pipeline([*model.steps[:-1], (model.steps[-1][0], final)])


def named_members(ensemble: Any) -> Any:
    """A vote's or stack's ``named_estimators_`` for its fitted members, by their names."""
    from sklearn.utils import Bunch

    names = [name for name, _ in ensemble.estimators]
    return Bunch(**dict(zip(names, ensemble.estimators_, strict=True)))


def with_members(model: Any, members: list[Any]) -> Any:
    """``model`` (a vote or stack, or a pipeline ending in one) with its fitted members
    replaced, one for one (the ensemble copied, the members' names kept)."""
    ensemble = copy.copy(final_step(model))
    ensemble.estimators_ = list(members)
    ensemble.named_estimators_ = named_members(ensemble)
    return with_final(model, ensemble)
