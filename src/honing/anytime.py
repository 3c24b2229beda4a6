"""Anytime search: what makes a search with a time budget end with a model, however short the
budget and however loaded the machine.

* The search has a deadline, and each trial one of its own (:class:`Deadlines`): no trial
  trains longer than :data:`TRIAL_SHARE` of the budget before it reports, and a trial at its
  deadline returns the best model it has (:mod:`honing.fidelity` cuts boosting rounds and
  forest trees), so trials end by themselves rather than being killed without a result.
* The validation scheme is chosen by the cost of a trial (:func:`holdout_share`), which grows
  with the table's rows, columns and, for boosting, its classes.
* If no trial finished all the same, the driver fits the config's cheapest model on the
  search's own splits (:func:`fallback_point`), its growth cut after :data:`FALLBACK_S`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from honing.config import SearchConfig
from honing.portfolio import PORTFOLIO, in_space, middle

#: Rows x columns that k-fold CV affords per hour of search (FLAML's rule of thumb is of the
#: same order): past it, ``validation: auto`` scores trials on one holdout split.
CV_CELLS_PER_HOUR = 10_000_000


def holdout_share(cfg: SearchConfig, rows: int, columns: int, classes: int = 0) -> float | None:
    """The holdout share that scores the trials, or None for k-fold CV. A boosted model of a
    multiclass table grows one tree per class each round, so ``classes`` (more than two)
    multiply the cost of a table's rows x columns."""
    if cfg.validation == "holdout":
        return cfg.holdout_fraction
    if cfg.validation == "cv" or cfg.time_budget_s is None:
        return None
    affordable = CV_CELLS_PER_HOUR * cfg.time_budget_s / 3600.0
    cells = rows * max(columns, 1) * (classes if classes > 2 else 1)
    return cfg.holdout_fraction if cells > affordable else None


def describe_validation(cfg: SearchConfig, holdout: float | None) -> str:
    return f"holdout {holdout:.0%}" if holdout else f"{cfg.cv_folds}-fold CV"


#: No trial trains longer than this share of the search's budget: past it, it reports the best
#: result it has (boosting rounds and forest trees are cut; see :mod:`honing.fidelity`).
TRIAL_SHARE = 0.5
#: Seconds Ray Tune's own budget adds to the search's, so that trials ending at the deadline
#: report before Tune stops them.
TUNE_GRACE_S = 3.0


@dataclass(frozen=True)
class Deadlines:
    """When the search ends and the longest a trial may train (``time.time()`` seconds and
    seconds), or None without a time budget."""

    search: float | None = None
    trial_s: float | None = None

    @classmethod
    def from_budget(cls, budget_s: float | None, now: float | None = None) -> Deadlines:
        if budget_s is None:
            return cls()
        return cls(search=(now or time.time()) + budget_s, trial_s=TRIAL_SHARE * budget_s)

    def for_trial(self, started: float) -> float | None:
        """A trial that started at ``started`` stops growing at this time."""
        if self.search is None or self.trial_s is None:
            return None
        return min(self.search, started + self.trial_s)


#: Families the fallback prefers, cheapest to a good first model first.
FALLBACK_ORDER = ("lightgbm", "xgboost", "logistic_regression", "linear", "random_forest")
#: Seconds the fallback may grow its model (boosting rounds past the first chunk).
FALLBACK_S = 3.0


def fallback_point(cfg: SearchConfig) -> dict[str, Any]:
    """The fallback's model (``family`` and ``params``): the first family of
    :data:`FALLBACK_ORDER` that the config searches, at its first portfolio entry that fits
    the space (constants as configured, open dimensions at their middle)."""
    family = next((f for f in FALLBACK_ORDER if f in cfg.families), sorted(cfg.families)[0])
    space = cfg.families[family]
    entry = next(
        (
            params
            for f, params in PORTFOLIO
            if f == family and all(in_space(space[k], v) for k, v in params.items() if k in space)
        ),
        {},
    )
    out = {}
    for key, spec in space.items():
        if not isinstance(spec, dict):
            out[key] = spec
        else:
            out[key] = entry.get(key, middle(spec))
    return {"family": family, "params": out}


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` within the block, as it was after it."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
