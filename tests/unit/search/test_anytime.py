"""The anytime search's parts, on real estimators: a deadline cuts boosting rounds and forest
trees to a complete result at the best point so far; the driver's fallback is a trial on the
search's own splits; classes with one row never break a split; multiclass ROC-AUC skips
classes a fold lacks and stays fast; the validation scheme counts classes."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification

from honing import data
from honing.config import FeaturesConfig, SearchConfig
from honing.data.folds import splits_for
from honing.metrics import score_predictions
from honing.modeling.features import FeatureColumns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.search import anytime
from honing.search.portfolio import SPACES
from honing.search.trials import SearchResult


def _table(n: int, classes: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, TrainingSetup]:
    X, y = make_classification(
        n, 20, n_informative=10, n_classes=classes, n_clusters_per_class=1, random_state=seed
    )
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    cols = FeatureColumns(numeric=list(df.columns), categorical=[])
    return df, y, TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 3)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_a_deadline_cuts_boosting_to_the_best_round_so_far(family):
    df, y, setup = _table(3000, 10)
    spec = ModelSpec(family, {"n_estimators": 10_000, "learning_rate": 0.01})
    start = time.time()
    res = train_model(df, y, spec, setup, cross_validate=True, refit=False, deadline=start + 2.0)
    took = time.time() - start
    cv = res.cv
    assert cv is not None and cv.cut  # 10,000 slow rounds of 10 classes do not fit in 2 s
    assert took < 12.0  # the deadline, the chunk it was in, and the scoring (loaded CI)
    assert cv.rounds is not None and 10 <= cv.rounds < 10_000
    assert np.array_equal(cv.oof_rows, np.arange(len(y)))  # a complete result: every fold
    assert cv.oof.shape == (len(y), 10) and cv.mean > 0.8
    # the same spec without a deadline is not cut (checked on a cheap version of it)
    cheap = ModelSpec(family, {"n_estimators": 30, "learning_rate": 0.3})
    whole = train_model(df, y, cheap, setup, cross_validate=True, refit=False).cv
    assert whole is not None and not whole.cut


def test_a_forest_under_a_deadline_keeps_the_trees_it_grew_and_refits_with_them():
    df, y, setup = _table(4000, 5)
    spec = ModelSpec("random_forest", {"n_estimators": 4000})
    start = time.time()
    res = train_model(df, y, spec, setup, cross_validate=True, refit=False, deadline=start + 2.0)
    took = time.time() - start
    assert res.cv is not None and res.cv.cut
    # the trees grow in doubling chunks from a few: the first chunk that would pass the
    # deadline at the pace so far is not taken (a first step of 1,000 trees took 24 s here,
    # beside the suite's other worker)
    assert took < 12.0
    trees = res.cv.rounds
    assert trees is not None and 10 <= trees < 4000
    assert spec.with_rounds(trees).params["n_estimators"] == trees


def test_a_family_trained_in_one_go_ends_at_its_deadline_on_the_rows_that_fit():
    """An SVM has no rounds or trees to cut: under a deadline it fits 2,000 rows of each
    fold first, then all of them only when that pace says they fit, else as many as do.
    Three folds of 20,000 training rows take tens of seconds (a kernel's pairs); with 3 s it
    ends in about that, scored on every validation row, and says how many rows it fitted."""
    df, y, setup = _table(30_000, 2)
    spec = ModelSpec("svm", {"C": 1.0})
    start = time.time()
    res = train_model(df, y, spec, setup, cross_validate=True, refit=False, deadline=start + 3.0)
    took = time.time() - start
    cv = res.cv
    assert cv is not None and cv.fit_rows is not None and 2_000 <= cv.fit_rows < 20_000
    assert took < 3.0 + 12.0  # the deadline, and a first 2,000-row fit that ran over (loaded)
    assert np.array_equal(cv.oof_rows, np.arange(len(y))) and cv.mean > 0.8  # every row scored
    # with time to spare, the rows grow to all of them (a small sample first)
    small, small_y, _ = _table(6_000, 2)
    whole = train_model(
        small, small_y, ModelSpec("svm", {"C": 1.0}), setup, cross_validate=True,
        refit=False, deadline=time.time() + 120.0,
    ).cv  # fmt: skip
    assert whole is not None and whole.fit_rows is None and not whole.cut


def test_a_warm_started_solver_runs_its_iterations_in_chunks_until_it_converges():
    """A logistic regression's iterations, not its rows, are what a deadline cuts (its
    iterations to converge jump with the rows): chunks from the last solution, on all rows,
    until the solver converges, to the same model as one fit."""
    df, y, setup = _table(6_000, 3)
    spec = ModelSpec("logistic_regression", {"C": 1.0})
    timed = train_model(
        df, y, spec, setup, cross_validate=True, refit=False, deadline=time.time() + 120.0
    ).cv
    once = train_model(df, y, spec, setup, cross_validate=True, refit=False).cv
    assert timed is not None and once is not None
    assert timed.fit_rows is None and not timed.cut  # converged: all rows, nothing cut
    assert timed.mean == pytest.approx(once.mean, abs=2e-3)
    # a deadline already past: one chunk of iterations, still a complete result
    late = train_model(df, y, spec, setup, cross_validate=True, refit=False, deadline=0.0).cv
    assert late is not None and late.oof.shape == (len(y), 3)


@pytest.mark.parametrize("classes", [40, 100])
def test_the_fallback_is_a_trial_on_the_searchs_own_splits(classes):
    df, y, setup = _table(1500, classes, seed=1)
    cfg = SearchConfig(families={f: SPACES[f] for f in ("extra_trees", "lightgbm")})
    assert anytime.fallback_point(cfg)["family"] == "lightgbm"  # cheapest first
    trial = anytime.fallback_trial(df, y, cfg=cfg, setup=setup, holdout=0.2, seconds=1.0)
    assert trial.status == "completed" and trial.trial_id == "fallback"
    assert trial.spec.family == "lightgbm" and trial.score is not None and trial.score > 0.6
    # scored on the holdout the search's trials use, so it can join their ensembles
    model = train_model(df, y, trial.spec, setup, refit=False).spec  # the spec is complete
    assert model.params["n_estimators"] == trial.spec.params["n_estimators"]
    ((_, valid),) = splits_for(  # fmt: skip
        make_classifier(), df, y, folds=3, seed=0, holdout=0.2
    )
    assert np.array_equal(trial.oof_rows, valid)


def make_classifier():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


def test_a_class_with_one_row_is_trained_on_and_never_validated():
    df, y, _ = _table(600, 3)
    y = y.copy()
    y[7] = 3  # a fourth class of one row
    for holdout in (None, 0.2):
        for train, valid in splits_for(make_classifier(), df, y, folds=5, seed=0, holdout=holdout):
            assert 7 in train and 7 not in valid
            assert set(y[train]) == {0, 1, 2, 3}
    train, test = data.holdout_rows(y, 0.2, seed=0, stratify=True)
    assert 7 in train and 7 not in test and len(set(train) | set(test)) == len(y)


def test_multiclass_roc_auc_skips_absent_classes_and_equals_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 40, 500)
    proba = rng.random((500, 40))
    proba[np.arange(500), y] += 0.5
    proba = np.round(proba / proba.sum(axis=1, keepdims=True), 2)  # ties, as real models give
    expected = skm.roc_auc_score(np.eye(40)[y], proba, average="macro")
    assert score_predictions("roc_auc", y, proba) == pytest.approx(expected, abs=1e-12)
    absent = y != 5  # class 5 has no row in this fold: it is skipped, not an error
    kept = [k for k in range(40) if k != 5]
    expected = skm.roc_auc_score(np.eye(40)[y[absent]][:, kept], proba[absent][:, kept])
    assert score_predictions("roc_auc", y[absent], proba[absent]) == pytest.approx(expected)
    start = time.perf_counter()
    for _ in range(200):  # a bootstrap's worth of 40-class scores stays well under a second
        score_predictions("roc_auc", y, proba)
    assert time.perf_counter() - start < 5.0


def test_the_validation_scheme_counts_classes():
    cfg = SearchConfig(families={"lightgbm": {}}, validation="auto", time_budget_s=60)
    assert anytime.holdout_share(cfg, 1600, 50) is None  # binary: CV affordable
    assert anytime.holdout_share(cfg, 1600, 50, classes=40) == cfg.holdout_fraction


def test_trials_stop_at_the_search_deadline_or_their_share_of_it():
    d = anytime.Deadlines.from_budget(100.0, now=1000.0)
    assert d.search == 1100.0
    assert d.for_trial(1000.0) == 1000.0 + anytime.TRIAL_SHARE * 100.0
    assert d.for_trial(1090.0) == 1100.0
    assert anytime.Deadlines.from_budget(None).for_trial(5.0) is None


def test_where_a_search_runs():
    """auto: in this process when short (tpe under SEARCH_HERE_S s) or small (at most
    SMALL_SEARCH_TRIALS planned), without a scheduler or a cluster; otherwise Ray Tune. The
    executor the user names wins; process refuses what only Ray runs."""
    lr = {"logistic_regression": SPACES["logistic_regression"]}
    two = {**lr, "random_forest": SPACES["random_forest"]}

    def here(address=None, **kw):
        return anytime.runs_here(SearchConfig(families=two, **kw), address)

    small = anytime.SMALL_SEARCH_TRIALS // 2
    assert here(trials_per_family=small)  # random: 2 x 2 trials
    assert here(trials_per_family=small, algorithm="tpe")
    assert not here(trials_per_family=small + 1)  # one trial more than small
    assert not here(trials_per_family=None, time_budget_s=20)  # random until its budget ends
    assert here(trials_per_family=None, time_budget_s=20, algorithm="tpe")  # short
    assert not here(trials_per_family=None, time_budget_s=anytime.SEARCH_HERE_S, algorithm="tpe")
    grid = {"logistic_regression": {"C": {"grid": [0.1, 1.0]}}}
    assert not anytime.runs_here(SearchConfig(families=grid, algorithm="grid"), None)
    assert not here(trials_per_family=1, algorithm="evolutionary")
    assert not here(trials_per_family=1, scheduler={"kind": "asha"})
    assert not here("ray://head:10001", trials_per_family=1)  # a cluster is named
    assert not here(trials_per_family=1, executor="ray")
    assert here("ray://head:10001", trials_per_family=50, executor="process")
    with pytest.raises(ValueError, match="process runs algorithms tpe and random; grid"):
        SearchConfig(families=grid, algorithm="grid", executor="process")
    with pytest.raises(ValueError, match="process runs no scheduler; asha"):
        SearchConfig(families=lr, executor="process", scheduler={"kind": "asha"})


def test_a_small_random_search_runs_in_this_process_without_ray():
    """Two draws per family, one after another here: scored like Ray's trials (k-fold CV,
    out-of-fold predictions for every row), and Ray is neither started nor imported."""
    import sys

    from honing import search
    from honing.config import RaySettings

    X, y, setup = _table(400, 2)
    cfg = SearchConfig(
        families={f: SPACES[f] for f in ("logistic_regression", "random_forest")},
        trials_per_family=2, cv_folds=3, seed=5,
    )  # fmt: skip
    ray_before = "ray" in sys.modules
    result = search.run_search(X, y, cfg=cfg, setup=setup, ray_settings=RaySettings(num_cpus=1))
    assert result.nodes == ["driver"] and len(result.completed) == 4
    assert (
        sorted(t.spec.family for t in result.trials)
        == ["logistic_regression"] * 2 + ["random_forest"] * 2
    )
    assert all(len(t.fold_scores) == 3 and len(t.oof_rows) == len(y) for t in result.completed)
    if not ray_before:  # this test process has not imported Ray for another test
        assert "ray" not in sys.modules


def test_a_search_goes_on_in_this_process_when_ray_cannot_start(monkeypatch):
    """On a machine too busy for Ray to start (its node times out, its GCS does not answer),
    a search meant for Ray Tune runs in this process, says so, and still ends with models."""
    from honing import search
    from honing.config import RaySettings

    def busy(settings):
        raise RuntimeError("The current node timed out during startup.")

    monkeypatch.setattr(search, "connect_ray", busy)  # the fault: Ray's own start failing
    X, y, setup = _table(300, 2)
    cfg = SearchConfig(
        families={"logistic_regression": SPACES["logistic_regression"]},
        trials_per_family=3, time_budget_s=anytime.SEARCH_HERE_S + 10, seed=0, executor="ray",
    )  # fmt: skip
    assert not anytime.runs_here(cfg, None)  # a search for Ray Tune
    said: list[str] = []
    result = search.run_search(
        X, y, cfg=cfg, setup=setup, ray_settings=RaySettings(num_cpus=1), progress=said.append
    )
    assert len(result.completed) == 3 and result.nodes == ["driver"]
    assert any("Ray did not start" in line and "in this process" in line for line in said), said


def _regression(n: int = 800) -> tuple[pd.DataFrame, np.ndarray, TrainingSetup]:
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n, n_features=8, noise=0.5, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    cols = FeatureColumns(numeric=list(df.columns), categorical=[])
    return df, y, TrainingSetup("regression", cols, FeaturesConfig(), 0, "rmse", 3)


def test_a_booster_cut_while_improving_is_grown_again_before_the_choice():
    df, y, setup = _regression()
    cfg = SearchConfig(families={"lightgbm": {"n_estimators": 1000, "learning_rate": 0.3}})
    # a deadline already past: the first chunk of rounds, then cut (a busy machine's search)
    cut = anytime.fallback_trial(df, y, cfg=cfg, setup=setup, holdout=None, seconds=0.0)
    assert cut.cut and cut.spec.params["n_estimators"] == 10 and cut.grows_to == 1000
    plain = anytime.fallback_trial(df, y, cfg=cfg, setup=setup, holdout=None, seconds=60.0)
    assert not plain.cut and plain.grows_to is None  # early stopping ended it: nothing to grow
    result = SearchResult(metric="rmse", trials=[cut], holdout=None)

    done = anytime.finish_cut(result, df, y, setup=setup, seconds=60.0, n_jobs=1)
    (grown,) = done.result.trials
    rounds = grown.spec.params["n_estimators"]
    assert 10 < rounds < 1000 and not grown.cut  # early stopping, not the deadline, ended it
    assert grown.score > cut.score and grown.oof.shape == cut.oof.shape
    assert np.array_equal(grown.oof_rows, cut.oof_rows)  # the same splits: ensembles can mix
    assert grown.trial_id == cut.trial_id and grown.grows_to is None
    assert done.notes[0].startswith(
        f"grew cut trial fallback (lightgbm) from 10 rounds to {rounds}"
    )
    # and it is the model the refit fits: its rounds, on all rows
    assert grown.score == pytest.approx(plain.score)  # the same model as one never cut
    # no time to spare: nothing grows, and the cut trial is what the choice sees
    kept = anytime.finish_cut(result, df, y, setup=setup, seconds=0.0, n_jobs=1)
    assert kept.result.trials == [cut] and "not grown" in kept.notes[0]


def test_a_small_tables_cut_trial_grows_in_the_seconds_left_whatever_it_took():
    """The only trial of a run on a loaded machine took 10 s for 10 rounds, most of it a cold
    process warming up: with 2 s to spare it was not grown, and its 10-round model was refit.
    On a small table a second is enough to grow it to its deadline's best round."""
    from dataclasses import replace

    df, y, setup = _regression()
    cfg = SearchConfig(families={"lightgbm": {"n_estimators": 1000, "learning_rate": 0.3}})
    cut = anytime.fallback_trial(df, y, cfg=cfg, setup=setup, holdout=None, seconds=0.0)
    slow = replace(cut, fit_seconds=10.0)  # what a cold first trial records
    result = SearchResult(metric="rmse", trials=[slow], holdout=None)
    assert len(y) * df.shape[1] <= anytime.SMALL_GROWTH_CELLS
    done = anytime.finish_cut(result, df, y, setup=setup, seconds=2.0, n_jobs=1)
    (grown,) = done.result.trials
    assert grown.score > cut.score and grown.spec.params["n_estimators"] > 10
    assert done.notes[0].startswith("grew cut trial fallback (lightgbm) from 10 rounds")
    # under a second left: not grown
    kept = anytime.finish_cut(result, df, y, setup=setup, seconds=0.5, n_jobs=1)
    assert kept.result.trials == [slow] and "not grown" in kept.notes[0]
