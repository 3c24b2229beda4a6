"""A large table's search: its trials fit a sample of each split's training rows and are
scored on all of its validation rows; the search keeps a share of its budget to fit the best
of them on all rows before the model is chosen (``search.sample_rows``)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.base import clone
from sklearn.datasets import make_classification

from honing import search
from honing.config import FeaturesConfig, RaySettings, SearchConfig
from honing.data.folds import splits_for
from honing.modeling.features import FeatureColumns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model, train_model
from honing.models.fidelity import Fold, predictions, subsample
from honing.search import anytime
from honing.search.portfolio import SPACES


def _table(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, TrainingSetup]:
    X, y = make_classification(n, 12, n_informative=6, flip_y=0.05, random_state=seed)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(12)])
    cols = FeatureColumns(numeric=list(df.columns), categorical=[])
    return df, y, TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 3)


def test_auto_samples_tables_large_for_the_search_budget():
    cfg = SearchConfig(families={"lightgbm": {}}, time_budget_s=40)
    assert cfg.sample_rows == "auto"
    # at least 25,000 rows, from a table of four times as many ...
    assert anytime.sample_rows(cfg, 100_000, 20) == 25_000
    assert anytime.sample_rows(cfg, 99_999, 20) is None
    assert anytime.sample_rows(cfg, 262_000, 20, classes=10) == 25_000
    # ... or 8,000 cells a second of the search: 48,000 rows of 20 columns in 120 s, 96,000
    # of 10 columns, fewer per row of more classes (a tree per class a round)
    longer = cfg.model_copy(update={"time_budget_s": 120})
    assert anytime.sample_rows(longer, 262_000, 20) == 48_000
    assert anytime.sample_rows(longer, 262_000, 10) is None  # 96,000: not a quarter
    assert anytime.sample_rows(longer, 400_000, 10) == 96_000
    assert anytime.sample_rows(longer, 262_000, 20, classes=2) == 48_000
    assert anytime.sample_rows(longer, 262_000, 20, classes=3) == 25_000
    unbounded = cfg.model_copy(update={"time_budget_s": None})
    assert anytime.sample_rows(unbounded, 1_000_000, 20) is None  # no deadline to keep
    fixed = cfg.model_copy(update={"sample_rows": 5000})
    assert anytime.sample_rows(fixed, 20_000, 20) == 5000
    assert anytime.sample_rows(fixed, 4000, 20) is None  # fewer rows than the sample
    assert anytime.sample_rows(cfg.model_copy(update={"sample_rows": None}), 10**7, 20) is None
    with pytest.raises(ValidationError, match="sample_rows: at least 100 rows"):
        SearchConfig(families={"lightgbm": {}}, sample_rows=10)


def test_a_sampled_trial_fits_that_many_rows_and_is_scored_on_every_validation_row():
    df, y, setup = _table(3000)
    spec = ModelSpec("logistic_regression", {"C": 1.0})
    cv = train_model(df, y, spec, setup, cross_validate=True, refit=False, fit_rows=400).cv
    assert cv is not None and cv.fit_rows == 400
    assert np.array_equal(cv.oof_rows, np.arange(len(y)))  # every row validated once
    # the same predictions as the model fitted by hand on each split's stratified sample
    model = make_model(spec, setup)
    for train, valid in splits_for(model, df, y, folds=3, seed=0, holdout=None):
        fold = Fold(df.iloc[train], y[train], df.iloc[valid], y[valid])
        X_fit, y_fit = subsample(fold, 400, seed=0)
        assert len(y_fit) == 400 and abs(y_fit.mean() - y[train].mean()) < 0.01  # stratified
        by_hand = predictions(clone(model).fit(X_fit, y_fit), fold.X_val)
        np.testing.assert_allclose(cv.oof[np.searchsorted(cv.oof_rows, valid)], by_hand)
    whole = train_model(df, y, spec, setup, cross_validate=True, refit=False).cv
    assert whole is not None and whole.fit_rows is None and whole.mean != cv.mean


def test_a_class_of_a_few_rows_is_in_every_sample_and_its_trials_are_scored():
    """A census of ranks: the rarest of 11 classes has 3 rows in 8,000. A stratified sample
    of 400 rows allots it none; the sample then takes one of its rows, so that every trial's
    model answers all 11 classes and is scored (without it, every trial failed)."""
    rng = np.random.default_rng(0)
    X, y = make_classification(8000, 12, n_informative=8, n_classes=10, random_state=0)
    y[rng.choice(8000, 3, replace=False)] = 10  # the rarest class
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(12)])
    cols = FeatureColumns(numeric=list(df.columns), categorical=[])
    setup = TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 3)
    fold = Fold(df, y, df.iloc[:0], y[:0])
    X_fit, y_fit = subsample(fold, 400, seed=0)
    assert set(y_fit) == set(range(11)) and 400 <= len(y_fit) <= 411
    assert np.array_equal(X_fit.index, np.sort(X_fit.index))  # in the table's order
    for family in ("lightgbm", "logistic_regression"):
        cv = train_model(
            df, y, ModelSpec(family, {}), setup, cross_validate=True, refit=False,
            holdout=0.2, fit_rows=400,
        ).cv  # fmt: skip
        assert cv is not None and cv.fit_rows == 400 and cv.oof.shape[1] == 11
        assert 0.5 < cv.mean <= 1.0


def test_a_sampled_search_fits_its_best_trials_on_all_rows_within_its_budget():
    df, y, setup = _table(4000, seed=1)
    budget = 14.0
    cfg = SearchConfig(
        families={f: SPACES[f] for f in ("lightgbm", "logistic_regression")},
        algorithm="tpe", trials_per_family=None, time_budget_s=budget, sample_rows=500, seed=0,
    )  # fmt: skip
    assert anytime.runs_here(cfg, None)
    said: list[str] = []
    began = time.time()
    result = search.run_search(
        df, y, cfg=cfg, setup=setup, ray_settings=RaySettings(num_cpus=1), progress=said.append
    )
    took = time.time() - began
    assert "trials fitted on 500 sampled rows" in result.validation
    sampled = [t for t in result.completed if t.fit_rows == 500]
    more = [t for t in result.completed if t.fit_rows != 500]
    assert len(sampled) >= 3 and 1 <= len(more) <= anytime.PROMOTE_TOP
    # fitted on all of a split's rows, or on as many as the time left afforded: twice or more
    assert all(t.fit_rows is None or t.fit_rows >= 2 * 500 for t in more)
    fitted = [n for n in result.notes if n.startswith("fitted trial")]
    assert len(fitted) == len(more) and all(" rows, not 500" in n for n in fitted)
    for trial in more:  # on the same rows as the sampled trials: ensembles can mix them
        assert np.array_equal(trial.oof_rows, sampled[0].oof_rows)
        assert trial.grows_to is None or trial.fit_rows is not None  # all rows: finished
    # more rows than an eighth of the table, for one of the best sampled configurations
    assert result.best in more and result.best.score > max(t.score for t in sampled)
    assert took < budget + 8.0  # the promotion is inside the search's budget (loaded CI)
    assert result.log_lines()[1:] == result.notes


def test_a_sampled_trial_is_refit_only_when_its_refit_on_all_rows_fits():
    """A trial's refit is costed on all the rows: a forest that took 3 s on 10,000 rows
    takes about 26 times that on 260,000 (refit from a sampled search, it took 90 s of a
    120 s budget). The choice then takes the best trial whose refit fits."""
    from honing.search.ensembles import refit_seconds, refittable_best
    from honing.search.trials import SearchResult, TrialResult

    def trial(i: int, family: str, score: float, seconds: float, rows: int | None):
        return TrialResult(f"t{i}", ModelSpec(family), score, 0.0, [score], seconds, fit_rows=rows)

    forest = trial(0, "extra_trees", 0.74, 3.0, 10_000)
    booster = trial(1, "lightgbm", 0.73, 2.0, 10_000)
    whole = trial(2, "logistic_regression", 0.70, 30.0, None)
    assert refit_seconds(forest, 260_000) == pytest.approx(3.0 * 1.3 * 26)  # 101 s
    assert refit_seconds(booster, 260_000) == pytest.approx(2.0 * 1.3 * 26)  # 68 s
    assert refit_seconds(whole, 260_000) == pytest.approx(30.0 * 1.3)  # 39 s
    result = SearchResult("roc_auc", [forest, booster, whole])
    assert refittable_best(result, 260_000, None) == (forest, None)  # no budget
    assert refittable_best(result, 260_000, 120.0) == (forest, None)
    chosen, why = refittable_best(result, 260_000, 80.0)
    assert chosen is booster and why.startswith("best trial t0 (extra_trees) not refit: ~101s")
    assert refittable_best(result, 260_000, 10.0)[0] is whole  # none fits: the quickest
    # a boosted trial is refit whatever its estimate says (its rounds are fixed)
    slow_booster = trial(3, "xgboost", 0.80, 20.0, 10_000)
    mixed = SearchResult("roc_auc", [slow_booster, whole])
    assert refittable_best(mixed, 260_000, 10.0) == (slow_booster, None)
    # the only trial, however slow its refit: itself, and nothing to say
    assert refittable_best(SearchResult("roc_auc", [forest]), 260_000, 1.0) == (forest, None)
    # a trial scored on all rows is refit whatever it costs, as before
    assert refittable_best(SearchResult("roc_auc", [whole]), 260_000, 1.0) == (whole, None)


def test_a_boosted_refit_that_would_overrun_keeps_the_rounds_its_time_affords():
    """A boosted leader scored on all rows is costed before its refit: a 32-class CatBoost
    trial whose five folds took 50 s refits in about 13 s (its rounds are fixed), where the
    budget kept 8 s for it; it is refit with the rounds those seconds afford, at a rate
    raised as much, and the choice says so. It keeps at least half its rounds, whatever the
    estimate (a trial's seconds can overstate its refit many times, and a deep cut at a
    high rate broke a 22-class LightGBM), and its rate stays at most 0.3. A trial of the
    driver already had every core; one on Ray had its CPUs (one)."""
    from dataclasses import replace

    from honing.search.ensembles import affordable_rounds, refittable_best
    from honing.search.trials import SearchResult, TrialResult

    spec = ModelSpec("catboost", {"n_estimators": 600, "depth": 6, "learning_rate": 0.05})
    trial = TrialResult("t0", spec, 0.9, 0.0, [0.9] * 5, 50.0, node="host:abc")  # 1 thread
    result = SearchResult("accuracy", [trial])
    assert refittable_best(result, 1_900, None) == (trial, None)  # no budget: as found
    assert affordable_rounds(trial, 1_900, 20.0) == (trial, None)  # 13 s fits in 20 s
    cut, why = refittable_best(result, 1_900, 8.0, threads=1)  # ~13 s on one thread
    assert cut.spec.params["n_estimators"] == int(600 * 8.0 / 13.0)  # 369 rounds
    assert cut.spec.params["depth"] == 6 and cut.score == trial.score
    # fewer rounds, larger steps: the rate grows as the rounds shrink
    assert cut.spec.params["learning_rate"] == pytest.approx(0.05 * 600 / 369, abs=1e-4)
    assert why == (
        "best trial t0 (catboost) refit with 369 of its 600 rounds at learning rate 0.0813 "
        "(was 0.05): ~13s for all of them on 1,900 rows, 8s for the refit"
    )
    # on two threads the refit is ~1.6x faster than its one-threaded trial: more rounds fit
    two, _ = affordable_rounds(trial, 1_900, 6.0, threads=2)
    assert two.spec.params["n_estimators"] == int(600 * 6.0 / (13.0 / 2**0.7))  # 449
    # a trial fitted in the driver had every core already: no gain counted
    here = replace(trial, node="driver", threads=2)
    assert affordable_rounds(here, 1_900, 8.0, threads=2)[0].spec.params["n_estimators"] == 369
    # never below half its rounds, at twice the rate at most
    deep = affordable_rounds(trial, 1_900, 0.01)[0].spec.params
    assert deep["n_estimators"] == 300 and deep["learning_rate"] == pytest.approx(0.1)
    fast = replace(trial, spec=ModelSpec("lightgbm", {"n_estimators": 40, "learning_rate": 0.2}))
    capped = affordable_rounds(fast, 1_900, 0.01)[0].spec.params
    assert capped == {"n_estimators": 20, "learning_rate": 0.3}  # 0.4 capped at 0.3
    # more than two classes: the rounds shrink, the rate stays (a larger step overshoots the
    # rare classes' softmax scores)
    many = affordable_rounds(fast, 1_900, 0.01, classes=48)[0].spec.params
    assert many == {"n_estimators": 20, "learning_rate": 0.2}
    steep = replace(trial, spec=ModelSpec("lightgbm", {"n_estimators": 40, "learning_rate": 0.5}))
    assert affordable_rounds(steep, 1_900, 0.01)[0].spec.params["learning_rate"] == 0.5  # kept
    # without a configured rate (CatBoost then sets its own from the rounds) none is added
    plain = replace(trial, spec=ModelSpec("catboost", {"n_estimators": 600}))
    assert "learning_rate" not in affordable_rounds(plain, 1_900, 4.0)[0].spec.params
    sampled = replace(trial, fit_rows=500)
    assert affordable_rounds(sampled, 1_900, 0.01) == (sampled, None)
    # a family without rounds is not cut: forests are handled by refittable_best above
    forest = TrialResult("t1", ModelSpec("random_forest"), 0.9, 0.0, [0.9], 50.0)
    assert affordable_rounds(forest, 1_900, 1.0) == (forest, None)
