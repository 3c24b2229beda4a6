"""Low-fidelity rungs: how one trial is trained in growing steps, so that a scheduler (ASHA,
HyperBand, median stopping) can stop an unpromising trial before it has spent its full cost.

Each family's resource is named in :data:`honing.models.FAMILY_TABLE`:

- **boosting rounds** (LightGBM, XGBoost, CatBoost): every fold's booster is grown a chunk of
  rounds at a time, continuing from the previous chunk's trees, with its validation loss
  recorded per round. Training stops early when the mean validation loss over the folds has
  not improved for :func:`patience` rounds, and the trial's score, out-of-fold predictions and
  refit round count are taken at the best round (one round count for all folds, as ``xgb.cv`` does);
- **a warm-started parameter** (MLP epochs, HistGradientBoosting iterations, forest trees):
  the estimator is refit with a larger budget, keeping what it already learned;
- **rows**, for the families with neither (linear models, SVM, k-NN): the rung trains on a
  stratified subsample that doubles from rung to rung, from :data:`MIN_SAMPLE_ROWS`, so a slow
  family on a large table is judged on a few thousand rows first.

A family trained in one go on a small table reports once, at the last rung, so it never sets
the bar for partial trainings. The ladders never see the validation rows while fitting.

**Anytime.** A ladder given a ``deadline`` (``time.time()`` seconds, shared by every process of
the search) grows only while it fits: before each step it predicts the step's seconds from the
steps so far, shrinks it (boosting rounds) or stops (trees), and returns what it has, a complete
result at the best round so far, marked ``cut``. Without a scheduler, boosting grows in chunks
that double from a few rounds, so a first result exists after seconds even on a large table.
A family trained in one go fits a sample of the rows first, then doubles them while the next
fit ends before the deadline (:func:`deadline_rows`); a warm-started solver (a logistic
regression) runs its iterations in doubling chunks instead (:func:`deadline_iterations`). The
refit on all rows stops at its deadline the same way (:func:`fit_by`): a boosted model's
rounds through its library's stopping hook (:mod:`honing.models.boosters`), a forest's trees
in doubling chunks.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from honing.models.boosters import MIN_FIT_ROUNDS, Booster, Pace, scaled_rate

#: (rung, fold scores, seconds so far): the hook through which a scheduler sees a trial.
StepCallback = Callable[[int, list[float], float], None]
#: (fitted model or estimator, validation rows) -> fold score; also keeps the predictions.
Scorer = Callable[[np.ndarray, np.ndarray], float]

#: The first chunk of rounds when no scheduler cuts the budget into rungs; each next chunk
#: doubles the rounds grown so far (a first result after a few rounds, whatever the total).
MIN_CHUNK = 10
#: Patience never exceeds this many rounds (a search space reaches 10^4 rounds).
MAX_PATIENCE = 100
#: Both libraries' round count when ``n_estimators`` is left unset.
DEFAULT_ROUNDS = 100
#: The smallest training sample of a row-subsample rung.
MIN_SAMPLE_ROWS = 2000


def patience(total_rounds: int) -> int:
    """Rounds without improvement of the mean validation loss before boosting stops: a tenth
    of the rounds, within [20, :data:`MAX_PATIENCE`]."""
    return max(20, min(total_rounds // 10, MAX_PATIENCE))


def chunks(total: int) -> list[int]:
    """Cumulative round budgets that grow ``total`` rounds in doubling chunks, from
    :data:`MIN_CHUNK` rounds."""
    step = MIN_CHUNK
    out = []
    while step < total:
        out.append(step)
        step *= 2
    return [*out, total]


def time_left(deadline: float | None) -> float:
    """Seconds until ``deadline`` (``time.time()`` based); infinite without one."""
    return float("inf") if deadline is None else deadline - time.time()


def predictions(model: Any, X: Any) -> np.ndarray:
    """What ensembles average and metrics score: class probabilities (rows x classes), or
    predicted values."""
    if is_classifier(model):
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64)


@dataclass
class Fold:
    """One validation split, ready for a ladder: the training rows (already rebalanced when
    sampling is on) and the validation rows."""

    X_fit: pd.DataFrame
    y_fit: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray


@dataclass
class LadderResult:
    """The last rung's fold scores and validation predictions; ``rounds``: the boosting rounds
    at the best mean validation loss, or the trees a deadline left a forest (None for other
    resources); ``cut``: a deadline stopped the growth before its configured end."""

    scores: list[float]
    preds: list[np.ndarray]
    rounds: int | None = None
    cut: bool = False
    fit_rows: int | None = None  # the training rows a deadline left each fold (None: all)


def budgets(total: int, rungs: int) -> list[int]:
    """Cumulative budgets that cut ``total`` into ``rungs`` growing steps."""
    return sorted({max(1, round(total * (i + 1) / rungs)) for i in range(rungs)})


def _prepared(model: Pipeline, folds: Sequence[Fold]) -> list[tuple[Pipeline, Any, Any]]:
    """Per fold: the fitted feature steps and the transformed training and validation rows
    (features are fitted once per fold; only the estimator grows from rung to rung). The
    training rows are transformed by ``fit_transform``, as a pipeline's own fit does: a target
    encoder then gives them cross-fitted values, where ``fit`` then ``transform`` would hand
    the booster each row's own label inside its category's mean (on a few rows per category,
    boosting then fits that leak and its validation loss rises after a few rounds)."""
    out = []
    for f in folds:
        features = Pipeline(clone(model).steps[:-1])
        Z_fit = features.fit_transform(f.X_fit, f.y_fit)
        out.append((features, Z_fit, features.transform(f.X_val)))
    return out


def boosting_ladder(
    model: Pipeline,
    folds: Sequence[Fold],
    booster: Booster,
    *,
    rungs: int,
    score: Scorer,
    on_step: StepCallback | None,
    start: float,
    deadline: float | None = None,
) -> LadderResult:
    """Grow every fold's booster in lockstep, rung by rung (or in doubling :func:`chunks`
    when no scheduler cuts the budget), and stop when the mean validation loss has not
    improved for :func:`patience` rounds, or when the next chunk would pass ``deadline``
    (it is shrunk to the rounds that fit first, at the last chunk's pace per round: the first
    chunk's warm-up is not carried into every later one, and since chunks double, a chunk's
    fixed costs spread over more rounds). The pace counts the scoring apart, per round of the
    model scored: predicting with 2,000 rounds of a large validation split takes seconds,
    which a trial past its deadline would spend after it. Scores and predictions are those at
    the best round."""
    template = model.steps[-1][1]
    total = int(template.get_params()["n_estimators"] or DEFAULT_ROUNDS)
    steps = budgets(total, rungs) if rungs > 1 else chunks(total)
    ready = _prepared(model, folds)
    estimators: list[BaseEstimator | None] = [None] * len(folds)
    curves: list[list[float]] = [[] for _ in folds]
    done, result = 0, LadderResult([], [])
    pace = 0.0  # seconds per round grown, in the last chunk
    scoring = 0.0  # seconds per round scored: predicting with every round so far costs more
    for rung, planned in enumerate(steps, start=1):
        budget = planned
        if done and deadline is not None:  # the rounds that fit, at the last chunk's pace
            spare = time_left(deadline) - scoring * done  # then scored on all of them
            budget = min(planned, done + int(spare / max(pace + scoring, 1e-9)))
            if budget <= done:
                result.cut = True
                break
        growing = time.time()
        for i, ((_, Z_fit, Z_val), f) in enumerate(zip(ready, folds, strict=True)):
            estimators[i], curve = booster.grow(
                template, estimators[i], budget - done, (Z_fit, f.y_fit), (Z_val, f.y_val)
            )
            curves[i].extend(curve)
        grown = time.time()
        rounds, done = budget - done, budget
        best = int(np.argmin(np.mean(curves, axis=0))) + 1
        preds = [
            booster.predict(est, Z_val, best)
            for est, (_, _, Z_val) in zip(estimators, ready, strict=True)  # type: ignore[arg-type]
        ]
        scores = [score(f.y_val, p) for f, p in zip(folds, preds, strict=True)]
        result = LadderResult(scores, preds, rounds=best, cut=budget < planned)
        pace, scoring = (grown - growing) / rounds, (time.time() - grown) / max(best, 1)
        if on_step is not None and rungs > 1:
            on_step(rung, scores, time.perf_counter() - start)
        if done - best >= patience(total) or result.cut:
            break
    return result


def warm_start_ladder(
    model: Pipeline,
    folds: Sequence[Fold],
    param: str,
    *,
    rungs: int,
    score: Scorer,
    on_step: StepCallback | None,
    start: float,
    deadline: float | None = None,
) -> LadderResult:
    """Refit each fold's warm-started estimator with a growing ``param`` (MLP epochs add up
    per fit; iterations and trees are running totals), in ``rungs`` equal steps, or with one
    rung in doubling :func:`chunks` from :data:`MIN_CHUNK`. With a ``deadline``, a step that
    would pass it, at the pace so far, is not taken: the result is the last step's, and
    ``rounds`` says how many trees a forest has (None for other parameters)."""
    template = model.steps[-1][1]
    total = int(template.get_params()[param])
    steps = budgets(total, rungs) if rungs > 1 else chunks(total)
    ready = _prepared(model, folds)
    estimators = [clone(template).set_params(warm_start=True) for _ in folds]
    done, result = 0, LadderResult([], [])
    growing = time.time()
    for rung, budget in enumerate(steps, start=1):
        if done and deadline is not None:
            pace = (time.time() - growing) / done
            if pace * (budget - done) > time_left(deadline):
                result.cut = True
                break
        step = budget - done if param == "max_epochs" else budget
        preds = []
        for est, (_, Z_fit, Z_val), f in zip(estimators, ready, folds, strict=True):
            est.set_params(**{param: step}).fit(Z_fit, f.y_fit)
            preds.append(predictions(est, Z_val))
        done = budget
        scores = [score(f.y_val, p) for f, p in zip(folds, preds, strict=True)]
        trees = budget if param == "n_estimators" else None  # a forest: its trees so far
        result = LadderResult(scores, preds, rounds=trees)
        if on_step is not None:
            on_step(rung, scores, time.perf_counter() - start)
    return result


def sample_sizes(rows: int, rungs: int) -> list[int]:
    """Training rows per rung: doubling up to all ``rows``, from :data:`MIN_SAMPLE_ROWS`."""
    return [min(rows, max(MIN_SAMPLE_ROWS, rows >> (rungs - r))) for r in range(1, rungs + 1)]


def subsample(f: Fold, size: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A stratified sample of ``size`` of the fold's training rows (all when it has no more),
    in their original order; a continuous target or a class too rare to stratify is sampled
    at random. A class label (integer codes) of the training rows that the sample missed
    gets its first row added: a model that never saw a class answers without its column, and
    its trial could not be scored (a class of a few dozen rows in 1.1 million, sampled to
    25,000, failed every trial of an 11-class table)."""
    from sklearn.model_selection import train_test_split

    if size >= len(f.y_fit):
        return f.X_fit, f.y_fit
    rows = np.arange(len(f.y_fit))
    try:
        keep, _ = train_test_split(rows, train_size=size, random_state=seed, stratify=f.y_fit)
    except ValueError:  # a class too rare to stratify, or a continuous target
        keep, _ = train_test_split(rows, train_size=size, random_state=seed)
    if np.issubdtype(f.y_fit.dtype, np.integer):
        labels, first = np.unique(f.y_fit, return_index=True)
        missed = first[~np.isin(labels, f.y_fit[keep])]
        keep = np.concatenate([keep, missed])
    keep = np.sort(keep)
    return f.X_fit.iloc[keep], f.y_fit[keep]


def sample_ladder(
    model: Pipeline,
    folds: Sequence[Fold],
    *,
    rungs: int,
    seed: int,
    score: Scorer,
    on_step: StepCallback | None,
    start: float,
    deadline: float | None = None,
) -> LadderResult | None:
    """Fit the whole pipeline on a growing stratified subsample of each fold's training rows,
    refitting only when the size grows, and not past ``deadline`` once a rung has a result.
    None when the table is too small to subsample (the caller then trains once)."""
    sizes = [sample_sizes(len(f.y_fit), rungs) for f in folds]
    if all(s[0] >= len(f.y_fit) for s, f in zip(sizes, folds, strict=True)):
        return None
    result, previous = LadderResult([], []), None
    for rung in range(1, rungs + 1):
        current = [s[rung - 1] for s in sizes]
        if previous is not None and time_left(deadline) <= 0:
            result.cut = True
            break
        if current != previous:
            preds = []
            for f, size in zip(folds, current, strict=True):
                fitted = clone(model).fit(*subsample(f, size, seed))
                preds.append(predictions(fitted, f.X_val))
            scores = [score(f.y_val, p) for f, p in zip(folds, preds, strict=True)]
            result, previous = LadderResult(scores, preds), current
        if on_step is not None:
            on_step(rung, result.scores, time.perf_counter() - start)
    return result


#: A fit on ``n`` rows is costed as ``seconds(m) x (n / m) ** ROWS_EXPONENT`` from the last
#: fit on ``m``: worse than linear (a solver's iterations, a kernel's pairs; a logistic
#: regression of MplsStops took 1.2 s on 8,000 rows and 21.5 s on 27,200, where the
#: solver stopped at its iteration cap) ...
ROWS_EXPONENT = 2.0
#: ... planned into this share of the time left ...
ROWS_SAFETY = 0.7
#: ... and at most this many times the rows of the last fit, whose pace then tells the next.
ROWS_GROWTH = 2


def deadline_rows(
    model: Pipeline,
    folds: Sequence[Fold],
    *,
    seed: int,
    score: Scorer,
    deadline: float,
    start: float,
    on_step: StepCallback | None = None,
) -> LadderResult | None:
    """Anytime for a family trained in one go (an SVM, k-NN, a ridge): fit on
    :data:`MIN_SAMPLE_ROWS` of each fold's training rows first, then on up to
    :data:`ROWS_GROWTH` times as many, all when they fit, for as long as the last fit's pace
    says the next one ends before ``deadline`` (at least twice as many rows, or it stops
    there, ``cut``). Costs about a third more than one fit on all rows when nothing is cut; a
    trial that would have run past its deadline ends on a sample, with ``fit_rows`` saying
    how many. None when the folds are too small to sample (the caller trains once)."""
    rows = min(len(f.y_fit) for f in folds)
    if rows <= 2 * MIN_SAMPLE_ROWS:
        return None
    size, result = MIN_SAMPLE_ROWS, LadderResult([], [])
    while True:
        began = time.time()
        preds = [predictions(clone(model).fit(*subsample(f, size, seed)), f.X_val) for f in folds]
        took = max(time.time() - began, 1e-3)
        scores = [score(f.y_val, p) for f, p in zip(folds, preds, strict=True)]
        result = LadderResult(scores, preds, fit_rows=None if size >= rows else size)
        if size >= rows:
            break
        spare = max(time_left(deadline), 0.0)
        affords = size * (ROWS_SAFETY * spare / took) ** (1 / ROWS_EXPONENT)
        nxt = min(rows, ROWS_GROWTH * size, int(affords))
        if nxt < 2 * size and nxt < rows:
            result.cut = True
            break
        size = nxt
    if on_step is not None:
        on_step(1, result.scores, time.perf_counter() - start)
    return result


#: The first chunk of a warm-started solver's iterations under a deadline; chunks double.
FIRST_ITERATIONS = 25


def iterative(model: Pipeline) -> bool:
    """Whether the pipeline's estimator is an iterative solver that warm-starts (a logistic
    regression, lasso, elastic net): :func:`deadline_iterations` bounds it, not rows."""
    return {"warm_start", "max_iter"} <= set(model.steps[-1][1].get_params())


def deadline_iterations(
    model: Pipeline, folds: Sequence[Fold], *, score: Scorer, deadline: float
) -> LadderResult:
    """Anytime for an iterative solver that warm-starts (a logistic regression): its
    iterations run in doubling chunks on all of each fold's rows, from the last chunk's
    solution, while the next chunk fits before ``deadline`` at the last one's pace; it stops
    when the solver converged (fewer iterations than the chunk) or at its configured
    ``max_iter``. A solver's cost per iteration is steady where its iterations to converge
    are not: rows judge it badly (one that converged on 8,000 rows in a second ran into its
    cap for 20 s on 16,000)."""
    template = model.steps[-1][1]
    total = int(template.get_params()["max_iter"])
    ready = _prepared(model, folds)
    estimators = [clone(template).set_params(warm_start=True) for _ in folds]
    done, chunk, result = 0, min(FIRST_ITERATIONS, total), LadderResult([], [])
    while done < total:
        step = min(chunk, total - done)
        began = time.time()
        iterations = 0
        for est, (_, Z_fit, _), f in zip(estimators, ready, folds, strict=True):
            with warnings.catch_warnings():  # a chunk stops short of converging by design
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.set_params(max_iter=step).fit(Z_fit, f.y_fit)
            iterations = max(iterations, int(np.max(getattr(est, "n_iter_", step))))
        done += step
        pace = (time.time() - began) / step
        preds = [predictions(e, Z_val) for e, (_, _, Z_val) in zip(estimators, ready, strict=True)]
        scores = [score(f.y_val, p) for f, p in zip(folds, preds, strict=True)]
        result = LadderResult(scores, preds)
        if iterations < step:  # converged
            break
        chunk = 2 * step
        if done < total and pace * min(chunk, total - done) > ROWS_SAFETY * time_left(deadline):
            result.cut = True
            break
    return result


def _boosted_by(
    model: Pipeline, Z: Any, y: np.ndarray, *, booster: Booster, deadline: float
) -> dict[str, Any] | None:
    """:func:`fit_by` of a boosted estimator, the last step of ``model`` (its features fitted
    already: ``Z``): its rounds, until ``deadline``. When its first rounds' pace says that
    the time affords far fewer than it asks for (:class:`~honing.models.boosters.Pace`), a
    new estimator takes its place, fitted with the rounds the time left affords, each a
    larger step (:func:`~honing.models.boosters.scaled_rate`, or the library's own choice
    for them where the rate is unset)."""
    name, estimator = model.steps[-1]
    params = estimator.get_params()
    planned, rate = int(params["n_estimators"] or DEFAULT_ROUNDS), params.get("learning_rate")
    classes = len(np.unique(y)) if is_classifier(estimator) else 1
    rescalable = scaled_rate(rate, planned, planned - 1, classes) is not None or (
        rate is None and booster.rate_by_rounds and classes <= 2
    )
    pace = Pace(deadline, planned=planned if rescalable else None)
    grown = booster.fit_paced(estimator, Z, y, pace)
    if pace.short is not None:
        rounds = max(MIN_FIT_ROUNDS, int(time_left(deadline) / max(pace.per_round, 1e-9)))
        anew: dict[str, Any] = {"n_estimators": min(rounds, planned)}
        faster = scaled_rate(rate, planned, anew["n_estimators"], classes)
        if faster is not None:
            anew["learning_rate"] = faster
        # a fresh estimator: a fitted one may refuse new parameters (CatBoost does)
        fresh = clone(estimator).set_params(**anew)
        grown = {**anew, **booster.fit_paced(fresh, Z, y, Pace(deadline))}
        model.steps[-1] = (name, fresh)
    return grown if grown["n_estimators"] < planned else None


def fit_by(
    model: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    booster: Booster | None,
    trees: bool,
    deadline: float,
) -> dict[str, Any] | None:
    """Fit ``model`` (its feature steps, then its estimator) on all of (X, y), growing the
    estimator only while the pace so far says its next rounds end before ``deadline``
    (``time.time()`` seconds), and never fewer than :data:`MIN_FIT_ROUNDS`: a ``booster``'s
    rounds, through its library's own stopping hook, or, with ``trees``, a forest's trees, in
    doubling :func:`chunks` of a warm start (with a seed, the same trees as one fit grows).
    Other estimators are fitted in one go. Returns, when the deadline stopped the growth short
    of the estimator's own count, the parameters that rebuild what was grown (``n_estimators``
    and, where the library chose it for the count asked for, the learning rate), else None.

    A refit's estimate comes from its trials' seconds (on a sample, on fewer cores, or on a
    machine that was quieter then); this makes the estimate's error cost a smaller model,
    not the budget."""
    *steps, (_, estimator) = model.steps
    Z = X
    if steps:  # as the pipeline's own fit does, its fitted steps kept in the pipeline
        features = Pipeline(steps)
        Z = features.fit_transform(X, y)
        model.steps[: len(steps)] = features.steps
    if booster is not None:
        return _boosted_by(model, Z, y, booster=booster, deadline=deadline)
    if not trees:
        estimator.fit(Z, y)
        return None
    planned, grown, start = int(estimator.get_params()["n_estimators"]), 0, time.time()
    for budget in chunks(planned):
        pace = (time.time() - start) / grown if grown else 0.0
        if grown >= MIN_FIT_ROUNDS and pace * (budget - grown) > time_left(deadline):
            break
        estimator.set_params(warm_start=True, n_estimators=budget).fit(Z, y)
        grown = budget
    estimator.set_params(warm_start=False)  # a later fit of this estimator starts anew
    return {"n_estimators": grown} if grown < planned else None
