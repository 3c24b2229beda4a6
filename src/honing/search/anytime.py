"""Anytime search: what makes a search with a time budget end with a model, however short the
budget and however loaded the machine.

* The search has a deadline, and each trial one of its own (:class:`Deadlines`): no trial
  trains longer than :data:`TRIAL_SHARE` of the budget before it reports, and a trial at its
  deadline returns the best model it has (:mod:`honing.models.fidelity` cuts boosting rounds and
  forest trees), so trials end by themselves rather than being killed without a result.
* The validation scheme is chosen by the cost of a trial (:func:`holdout_share`), which grows
  with the table's rows, columns and, for boosting, its classes.
* A short or small search runs here, in this process (:func:`search_here`, :func:`runs_here`):
  Ray Tune's start (its controller, and a worker per trial that imports the training stack)
  takes about 6 s on two cores, most of a search of a few seconds or a few trials. The same
  family scheduler and portfolio (or a random search's draws) propose the trials, one after
  another, each on every core. ``search.executor`` chooses for the user.
* If no trial finished all the same, the driver fits the config's cheapest model on the
  search's own splits (:func:`fallback_trial`), its growth cut after :data:`FALLBACK_S`.
* On a large table (:func:`sample_rows`), the trials fit a sample of each split's training
  rows, scored on all its validation rows: a first rung over rows, so that many more
  configurations are judged in the budget. The search keeps :data:`PROMOTE_SHARE` of its
  budget to fit its best sampled trials on all rows, with early stopping up to their
  configured rounds (:func:`finish_cut`), before the model is chosen.
* A boosted trial that its deadline cut while its validation loss still fell (ten rounds of a
  thousand, say) would be refit as cut, underfitted. After the search, the best such trials
  are grown again on the same splits, with early stopping, in the time the refit can spare
  (:func:`finish_cut`): a short or busy search's first trials become finished models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from honing.config import SearchConfig
from honing.metrics import METRICS, metric_value
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.models import FAMILY_TABLE
from honing.search.portfolio import PORTFOLIO, in_space, middle
from honing.search.search_space import FAMILY_KEY, SEP, RandomDraws, spec_from_trial_config
from honing.search.tpe import FamilyState
from honing.search.trials import SearchResult, TrialResult

#: Rows x columns that k-fold CV affords per hour of search (FLAML's rule of thumb is of the
#: same order): past it, ``validation: auto`` scores trials on one holdout split.
CV_CELLS_PER_HOUR = 10_000_000


#: ``validation: auto`` scores a large table's trials on about this many holdout rows at
#: most (``holdout_fraction`` of a smaller one): at that size a score's standard error (some
#: 0.003 ROC-AUC) is below the differences the search acts on, while every trial transforms
#: and predicts all of them after each chunk of rounds. On a loaded machine, a 226,000-row
#: holdout of an 11-class table of 1.4 million rows left no trial finished in an 8 s search.
MAX_HOLDOUT_ROWS = 25_000
#: ... and never on less than this share of the rows.
MIN_HOLDOUT_SHARE = 0.01


def holdout_share(cfg: SearchConfig, rows: int, columns: int, classes: int = 0) -> float | None:
    """The holdout share that scores the trials, or None for k-fold CV. A boosted model of a
    multiclass table grows one tree per class each round, so ``classes`` (more than two)
    multiply the cost of a table's rows x columns. Chosen here (``validation: auto``), the
    holdout keeps :data:`MAX_HOLDOUT_ROWS` rows at most (the rest train); a configured
    ``validation: holdout`` keeps its ``holdout_fraction``."""
    if cfg.validation == "holdout":
        return cfg.holdout_fraction
    if cfg.validation == "cv" or cfg.time_budget_s is None:
        return None
    affordable = CV_CELLS_PER_HOUR * cfg.time_budget_s / 3600.0
    cells = rows * max(columns, 1) * (classes if classes > 2 else 1)
    if cells <= affordable:
        return None
    capped = max(MIN_HOLDOUT_SHARE, MAX_HOLDOUT_ROWS / max(rows, 1))
    return round(min(cfg.holdout_fraction, capped), 4)


def describe_validation(
    cfg: SearchConfig, holdout: float | None, fit_rows: int | None = None
) -> str:
    scheme = f"holdout {holdout:.1%}".replace(".0%", "%") if holdout else f"{cfg.cv_folds}-fold CV"
    return scheme + (f", trials fitted on {fit_rows:,} sampled rows" if fit_rows else "")


#: ``sample_rows: auto``: the cells (rows x columns, x classes past two) a trial fits per
#: second of the search's budget. On 2 cores a LightGBM trial of ~20 columns fits and scores
#: about 10,000 rows a second under load: a search of 40 s gets samples of ~16,000 rows.
SAMPLE_CELLS_PER_S = 8_000
#: The smallest sample ...
FIRST_SAMPLE_ROWS = 25_000
#: ... and a table is sampled only when it has this many times the sample's rows: where
#: trials on all rows would be so few (three on 260,000 rows of NYC flights in a 50 s search)
#: that a sample's ranking of many configurations is worth more than their full-row scores.
SAMPLE_FACTOR = 4
#: Share of a sampled search's budget kept for fitting its best trials on more rows.
PROMOTE_SHARE = 0.25
#: At most this many of the best sampled trials are fitted on more rows after the search.
PROMOTE_TOP = 3
#: Share of its time a promotion plans to use, at the pace its sample took.
SAFETY = 0.7


def sample_rows(cfg: SearchConfig, rows: int, columns: int, classes: int = 0) -> int | None:
    """The training rows each trial of a search over ``rows`` training rows of ``columns``
    columns fits (see ``search.sample_rows``), or None for all of them. ``auto`` scales the
    sample with the search's budget and the cost of a row (its columns, and its classes past
    two: a boosted round grows a tree per class)."""
    if cfg.sample_rows == "auto":
        if cfg.time_budget_s is None:
            return None
        cost = max(columns, 1) * (classes if classes > 2 else 1)
        sample = max(FIRST_SAMPLE_ROWS, int(SAMPLE_CELLS_PER_S * cfg.time_budget_s / cost))
        return sample if rows >= SAMPLE_FACTOR * sample else None
    return cfg.sample_rows if cfg.sample_rows is not None and cfg.sample_rows < rows else None


#: No trial trains longer than this share of the search's budget: past it, it reports the best
#: result it has (boosting rounds and forest trees are cut; see :mod:`honing.models.fidelity`).
TRIAL_SHARE = 0.5
#: Seconds Ray Tune's own budget adds to the search's, so that trials ending at the deadline
#: report before Tune stops them (their checkpoint of out-of-fold predictions, on a large
#: table, takes more than half a second: a trial Tune stops is lost, and stopping it took
#: Tune seconds more).
TUNE_GRACE_S = 1.5


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


#: Searches shorter than this run in this process (``tpe`` on this machine, no scheduler):
#: Ray Tune's start takes too much of them. At B = 60 s on a quiet 2-core machine the search
#: gets 30-36 s; on Ray, starting Ray took 4-6 s of it and the first trials' workers
#: reported after 10 s (credit_data, MplsStops, leaf_id_flavia). In process, trials report
#: from the first seconds, each on every core (boosting gains ~1.6x from two), and every
#: family ends at its deadline (:mod:`honing.models.fidelity`).
SEARCH_HERE_S = 40.0


#: The most trials a search may plan in all to run in this process when ``executor`` is
#: ``auto``: Ray's start (a controller, daemons and a worker per trial, some 12 s of CPU and
#: 6-8 s of waiting on two cores) costs more than it saves on so few.
SMALL_SEARCH_TRIALS = 4


def planned_trials(cfg: SearchConfig) -> int | None:
    """The trials a ``tpe`` or ``random`` search runs at most (``trials_per_family`` per
    family); None when only its budget ends it, or for another algorithm."""
    if cfg.algorithm not in ("tpe", "random") or cfg.trials_per_family is None:
        return None
    return cfg.trials_per_family * len(cfg.families)


def runs_here(cfg: SearchConfig, address: str | None) -> bool:
    """Whether a search of ``cfg`` runs in this process rather than on Ray Tune: as its
    ``executor`` says, or for ``auto`` a search without a scheduler, on no cluster, that is
    short (``tpe`` with a budget under :data:`SEARCH_HERE_S` s) or small (at most
    :data:`SMALL_SEARCH_TRIALS` trials planned)."""
    if cfg.executor != "auto":
        return cfg.executor == "process"
    if address or cfg.scheduler.kind != "none":
        return False
    short = (
        cfg.algorithm == "tpe"
        and cfg.time_budget_s is not None
        and cfg.time_budget_s < SEARCH_HERE_S
    )
    planned = planned_trials(cfg)
    return short or (planned is not None and planned <= SMALL_SEARCH_TRIALS)


def rounds_to_grow(configured: ModelSpec, reached: int | None, unfinished: bool) -> int | None:
    """The rounds a boosted trial's ``configured`` spec allows, when it is ``unfinished``
    (its deadline cut it, or it fitted a sample of the rows) at ``reached`` rounds, fewer
    than those; else None."""
    info = FAMILY_TABLE.get(configured.family)
    if not unfinished or reached is None or info is None or info.booster is None:
        return None
    allowed = int(configured.params.get("n_estimators") or 0)
    return allowed if allowed > reached else None


def _fit(
    trial_id: str,
    spec: ModelSpec,
    X: pd.DataFrame,
    y: np.ndarray,
    setup: TrainingSetup,
    *,
    holdout: float | None,
    deadline: float | None,
    n_jobs: int = 1,
    fit_rows: int | None = None,
) -> TrialResult:
    """One trial here: ``spec`` scored on the search's splits (fitted on ``fit_rows`` of
    their rows when set), cut at ``deadline``; an error is a failed trial, as on Ray."""
    started = time.time()
    try:
        res = train_model(
            X, y, spec, setup, cross_validate=True, refit=False, holdout=holdout,
            deadline=deadline, n_jobs=n_jobs, fit_rows=fit_rows,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a failed trial, reported as one
        return TrialResult(
            trial_id, spec, None, None, [], time.time() - started,
            error=f"{type(exc).__name__}: {exc}", node="driver", started_at=started,
        )  # fmt: skip
    cv = res.cv
    assert cv is not None
    return TrialResult(
        trial_id=trial_id,
        spec=spec.with_rounds(cv.rounds),
        score=cv.mean,
        score_std=cv.std,
        fold_scores=cv.fold_scores,
        fit_seconds=cv.fit_seconds,
        node="driver",
        oof=cv.oof,
        oof_rows=cv.oof_rows,
        started_at=started,
        cut=cv.cut,
        grows_to=rounds_to_grow(spec, cv.rounds, cv.cut or cv.fit_rows is not None),
        fit_rows=cv.fit_rows,
        threads=n_jobs,
    )


def search_here(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    setup: TrainingSetup,
    holdout: float | None,
    deadlines: Deadlines,
    n_jobs: int,
    progress: Callable[[str], None] | None = None,
    every_s: float = 5.0,
    fit_rows: int | None = None,
) -> SearchResult:
    """The search in this process: the family scheduler and portfolio of ``tpe``
    (:class:`honing.search.tpe.FamilyState`), or a ``random`` search's draws
    (:class:`honing.search.search_space.RandomDraws`), propose trials until the search's
    deadline or cap, each trained on ``n_jobs`` cores (on ``fit_rows`` rows) and cut at its
    own deadline."""
    state: FamilyState | RandomDraws = (
        RandomDraws(cfg)
        if cfg.algorithm == "random"
        else FamilyState(cfg, family_key=FAMILY_KEY, sep=SEP, bounded=METRICS[cfg.metric].bounded)
    )
    result = SearchResult(
        metric=cfg.metric, validation=describe_validation(cfg, holdout, fit_rows),
        nodes=["driver"],
    )  # fmt: skip
    said = time.time()
    while deadlines.search is None or time.time() < deadlines.search:
        trial_id = f"here_{len(result.trials):05d}"
        config = state.suggest(trial_id)
        if config is None:  # every family reached its cap
            break
        begun = time.time()
        trial = _fit(
            trial_id, spec_from_trial_config(config), X, y, setup, holdout=holdout,
            deadline=deadlines.for_trial(begun), n_jobs=n_jobs, fit_rows=fit_rows,
        )  # fmt: skip
        took = time.time() - begun
        scored = None if trial.score is None else {"score": trial.score, "time_total_s": took}
        state.complete(trial_id, scored, trial.error is not None)
        result.trials.append(trial)
        if progress is not None and time.time() - said >= every_s:
            said = time.time()
            best = max((t.score for t in result.completed), default=None)
            shown = (
                "no score yet"
                if best is None
                else f"best {cfg.metric} {metric_value(cfg.metric, best):.4f}"
            )
            progress(f"search (in process): {len(result.completed)} trials done; {shown}")
    return result


def fallback_trial(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    cfg: SearchConfig,
    setup: TrainingSetup,
    holdout: float | None,
    seconds: float = FALLBACK_S,
) -> TrialResult:
    """The model a search ends with when none of its trials finished (a loaded machine, a
    budget shorter than Ray's start, a table whose classes make every trial slow): the
    cheapest family of the config, trained here in the driver on the search's own splits,
    its growth cut after ``seconds``. A trial like the others (``trial_id`` ``fallback``)."""
    spec = ModelSpec(**fallback_point(cfg))
    return _fit("fallback", spec, X, y, setup, holdout=holdout, deadline=time.time() + seconds)


#: At most this many of the best cut trials are grown again after the search.
FINISH_TOP = 3
#: Share of the refit's seconds that growing cut trials may take: the rest refits the model
#: (a grown booster costs about its folds' time over their number again to refit).
FINISH_SHARE = 0.4
#: A cut trial is grown again (from its first round) only with this many times the seconds
#: it took to spare: less would not take it much past where it was cut ...
GROWTH_FACTOR = 2.0
#: ... unless its table is this small (training rows x columns) and at least
#: :data:`MIN_GROWTH_S` are left: then its features and a chunk of rounds take a fraction of
#: a second, and the seconds its trial took were mostly a cold process warming up (on a
#: loaded machine, the only trial of a 60 s run took 10 s for 10 rounds of 2,300 rows, and
#: the 10-round model was refit: RMSE 40,000 on ames, where grown ones reach 22,000).
SMALL_GROWTH_CELLS = 2_000_000
MIN_GROWTH_S = 1.0


@dataclass(frozen=True)
class Finished:
    """The search's trials after :func:`finish_cut`: the cut trials that grew replaced by
    their grown selves, and a line for each one tried."""

    result: SearchResult
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


def finish_cut(
    result: SearchResult,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    setup: TrainingSetup,
    seconds: float,
    n_jobs: int,
    top: int = FINISH_TOP,
    samples: bool = True,
) -> Finished:
    """Finish, on the search's own splits and with early stopping, the best ``top`` completed
    trials that did not, within ``seconds`` in all, best first:

    * a trial fitted on a sample of the rows (``TrialResult.fit_rows``; unless ``samples`` is
      off) is fitted on all of them, or on as many as the time left affords at its sample's
      pace (at least twice its sample; the pace counts a trial's fixed costs as rows, so
      more usually fit);
    * a boosted trial cut by its deadline while its validation loss still fell
      (``TrialResult.grows_to``) is grown, up to its configured rounds, when twice what it
      took is left, or, on a small table (:data:`SMALL_GROWTH_CELLS`), a second; the growth
      stops at the deadline with its best round so far.

    A finished trial replaces its unfinished self when it scores at least as well, or, from
    a sample, when its deadline did not cut it (it is nearer the model the refit fits); its
    out-of-fold predictions feed the ensembles and the decision rule like any trial's."""
    begun = time.time()
    end = begun + max(seconds, 0.0)
    rows = int(len(y) * (1 - (result.holdout or 1 / max(setup.folds, 2))))  # a split's
    small = len(y) * max(X.shape[1], 1) <= SMALL_GROWTH_CELLS
    ranked = [
        t
        for t in sorted(result.completed, key=lambda t: -(t.score or 0.0))[:top]
        if (t.grows_to is not None and (samples or not t.fit_rows)) or (samples and t.fit_rows)
    ]
    trials, notes = list(result.trials), []
    for trial in ranked:
        left = end - time.time()
        reached = int(trial.spec.params.get("n_estimators") or 0)
        name = f"trial {trial.trial_id} ({trial.spec.family}"
        # seconds per row fitted, more when a cut left rounds to grow
        pace = (trial.fit_seconds or 0.0) * (GROWTH_FACTOR if trial.cut else 1.0)
        fit_rows: int | None = None
        if trial.fit_rows:  # the rows the time left affords, all when it can
            affords = int(SAFETY * left * trial.fit_rows / max(pace, 1e-9))
            fit_rows = None if affords >= rows else affords
            if fit_rows is not None and fit_rows < 2 * trial.fit_rows:
                notes.append(
                    f"{name}) not fitted on more rows than {trial.fit_rows:,}: {left:.1f}s "
                    f"to spare, it took {trial.fit_seconds:.1f}s"
                )
                continue
            more = "all" if fit_rows is None else f"{fit_rows:,}"
            said = f"fitted {name}) on {more} rows, not {trial.fit_rows:,}"
        elif pace > left and not (small and left >= MIN_GROWTH_S):
            notes.append(
                f"cut {name}, {reached} rounds) not grown: {max(left, 0):.1f}s to spare, "
                f"it took {trial.fit_seconds:.1f}s"
            )
            continue
        else:
            said = f"grew cut {name}) from {reached} rounds"
        grown = _fit(
            trial.trial_id, trial.spec.with_rounds(trial.grows_to), X, y, setup,
            holdout=result.holdout, deadline=end, n_jobs=n_jobs, fit_rows=fit_rows,
        )  # fmt: skip
        rounds = int(grown.spec.params.get("n_estimators") or 0)
        was, now = (metric_value(result.metric, s) for s in (trial.score, grown.score or 0.0))
        better = grown.score is not None and grown.score >= (trial.score or 0.0)
        if grown.score is None or not (better or (trial.fit_rows and not grown.cut)):
            why = grown.error or f"{result.metric} {now:.4f}, not above {was:.4f}"
            notes.append(f"{said}: kept as it was ({why})")
            continue
        trials[trials.index(trial)] = grown
        stop = "its deadline" if grown.cut else "early stopping"
        grew = (
            ""
            if not rounds or not (trial.grows_to or grown.cut)
            else (f", {rounds} rounds ({stop})" if trial.fit_rows else f" to {rounds} ({stop})")
        )
        notes.append(f"{said}{grew}: {result.metric} {was:.4f} -> {now:.4f}")
    return Finished(replace(result, trials=trials), tuple(notes), time.time() - begun)
