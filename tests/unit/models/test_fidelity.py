"""Low-fidelity rungs: boosting rounds with early stopping, warm-started trees, row
subsamples; each reports growing rungs and ends with the same model a one-shot fit gives."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression

from honing.config import FeaturesConfig
from honing.modeling.features import FeatureColumns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.models import build_estimator
from honing.models.boosters import MIN_FIT_ROUNDS, CatBoostRounds, LightGBMRounds, XGBoostRounds
from honing.models.fidelity import MIN_SAMPLE_ROWS, budgets, patience, sample_sizes


def _frame(n: int, *, task: str = "classification", seed: int = 0):
    if task == "classification":
        X, y = make_classification(n, 8, n_informative=4, flip_y=0.2, random_state=seed)
    else:
        X, y = make_regression(n, 8, n_informative=4, noise=30.0, random_state=seed)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    return df, y, FeatureColumns(numeric=list(df.columns), categorical=[])


def _cv(df, y, cols, spec, *, rungs=1, task="classification", refit=False, metric="roc_auc"):
    steps: list[tuple[int, float]] = []
    res = train_model(
        df,
        y,
        spec,
        TrainingSetup(task, cols, FeaturesConfig(), seed=0, metric=metric, folds=3),
        cross_validate=True,
        refit=refit,
        rungs=rungs,
        on_step=lambda rung, scores, _s: steps.append((rung, float(np.mean(scores)))),
    )
    return res, steps


@pytest.mark.parametrize("booster", [LightGBMRounds(), XGBoostRounds(), CatBoostRounds()])
def test_growing_a_booster_in_chunks_equals_one_fit(booster):
    df, y, _ = _frame(800)
    X, Xv, y_fit, y_val = df.values[:600], df.values[600:], y[:600], y[600:]
    family = {LightGBMRounds: "lightgbm", XGBoostRounds: "xgboost"}.get(type(booster), "catboost")
    template = build_estimator(family, {"learning_rate": 0.1}, seed=0, task="classification")
    first, curve_a = booster.grow(template, None, 30, (X, y_fit), (Xv, y_val))
    grown, curve_b = booster.grow(template, first, 20, (X, y_fit), (Xv, y_val))
    whole, curve = booster.grow(template, None, 50, (X, y_fit), (Xv, y_val))
    assert curve_a + curve_b == pytest.approx(curve)  # one validation loss per round
    np.testing.assert_allclose(booster.predict(grown, Xv, 50), booster.predict(whole, Xv, 50))
    # predicting with the first rounds only is the smaller model
    np.testing.assert_allclose(booster.predict(grown, Xv, 30), booster.predict(first, Xv, 30))


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_boosting_stops_early_and_refits_with_the_best_rounds(family):
    df, y, cols = _frame(600)
    spec = ModelSpec(family, {"n_estimators": 800, "learning_rate": 0.3})
    res, _ = _cv(df, y, cols, spec, refit=True)
    rounds = res.cv.rounds
    assert rounds is not None and rounds < 800  # noisy labels, fast learning: it overfits
    assert res.spec.params["n_estimators"] == rounds  # the refit uses the chosen rounds
    assert res.model.steps[-1][1].get_params()["n_estimators"] == rounds
    # under a scheduler, the trial ends at the rung where the loss stopped improving, long
    # before the eighth rung of 800 rounds
    laddered, steps = _cv(df, y, cols, spec, rungs=8)
    assert laddered.cv.rounds == rounds  # the same best round, found rung by rung
    assert [r for r, _ in steps] == list(range(1, len(steps) + 1))
    assert len(steps) < 8
    assert steps[-1][0] * 100 - rounds >= patience(800)


def test_the_scheduler_sees_boosting_rounds_as_rungs():
    df, y, cols = _frame(600, task="regression")
    slow = ModelSpec("lightgbm", {"n_estimators": 200, "learning_rate": 0.02})
    res, steps = _cv(df, y, cols, slow, rungs=4, task="regression", metric="rmse")
    assert [rung for rung, _ in steps] == [1, 2, 3, 4]  # still improving: no early stop
    scores = [s for _, s in steps]
    assert scores == sorted(scores)  # more rounds, lower RMSE (scores are greater-is-better)
    assert res.cv.rounds == 200
    # one fit of 200 rounds scores the same as the four rungs' last
    one, none = _cv(df, y, cols, slow, task="regression", metric="rmse")
    assert one.cv.fold_scores == pytest.approx(res.cv.fold_scores)
    assert none == []  # without a scheduler the rungs are internal: nothing is reported


def test_forest_trees_are_warm_started_rung_by_rung():
    df, y, cols = _frame(500)
    spec = ModelSpec("random_forest", {"n_estimators": 40})
    laddered, steps = _cv(df, y, cols, spec, rungs=4)
    assert [rung for rung, _ in steps] == [1, 2, 3, 4]
    one, _ = _cv(df, y, cols, spec)
    assert laddered.cv.fold_scores == pytest.approx(one.cv.fold_scores)


def test_sample_sizes_double_up_to_all_rows_from_a_floor():
    assert sample_sizes(64_000, 4) == [8000, 16000, 32000, 64000]
    assert sample_sizes(6000, 4) == [MIN_SAMPLE_ROWS, MIN_SAMPLE_ROWS, 3000, 6000]
    assert sample_sizes(1000, 4) == [1000] * 4
    assert budgets(300, 4) == [75, 150, 225, 300]


def test_rows_are_the_resource_of_families_without_one():
    df, y, cols = _frame(9000)
    spec = ModelSpec("logistic_regression", {"C": 1.0})
    laddered, steps = _cv(df, y, cols, spec, rungs=4)
    assert [rung for rung, _ in steps] == [1, 2, 3, 4]
    assert steps[0][1] != steps[-1][1]  # the first rung saw a subsample
    one, one_steps = _cv(df, y, cols, spec)
    assert laddered.cv.fold_scores == pytest.approx(one.cv.fold_scores)  # the last: all rows
    # a table too small to subsample trains once and reports once, at the last rung
    small, small_steps = _cv(df.iloc[:900], y[:900], cols, spec, rungs=4)
    assert [rung for rung, _ in small_steps] == [4]


def test_out_of_fold_predictions_are_those_at_the_best_round():
    df, y, cols = _frame(600)
    res, _ = _cv(df, y, cols, ModelSpec("xgboost", {"n_estimators": 400, "learning_rate": 0.3}))
    assert np.array_equal(res.cv.oof_rows, np.arange(len(y)))
    fixed, _ = _cv(df, y, cols, ModelSpec("xgboost", {"n_estimators": res.cv.rounds,
                                                      "learning_rate": 0.3}))  # fmt: skip
    np.testing.assert_allclose(fixed.cv.oof, res.cv.oof, rtol=1e-6)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_boosting_sees_cross_fitted_target_encodings_as_the_refit_does(family):
    """A boosted trial's training rows are encoded as the refit's pipeline encodes them: a
    high-cardinality column is target-encoded out of fold. Encoded with each row's own label
    inside its category's mean, a column of 1,000 categories of three rows each, which says
    nothing about the label, was the booster's best split: its validation loss rose after a
    few rounds, early stopping kept about ten, and the score fell far below that of the same
    table without the column."""
    df, y, cols = _frame(3000, seed=3)
    noise = np.random.default_rng(0).permutation(np.repeat(np.arange(1000), 3))
    wide = df.assign(code=[f"c{v}" for v in noise])
    with_code = FeatureColumns(numeric=cols.numeric, categorical=[], high_cardinality=["code"])
    spec = ModelSpec(family, {"n_estimators": 400, "learning_rate": 0.05})
    cv, plain = _cv(wide, y, with_code, spec)[0].cv, _cv(df, y, cols, spec)[0].cv
    assert cv.rounds >= plain.rounds // 2 and cv.mean > plain.mean - 0.02


class _Timed(LightGBMRounds):
    """LightGBM whose chunks take a known time: a one-time warm-up on the first (a cold
    process's), then ``per_round_s`` a round."""

    def __init__(self, warm_up_s: float, per_round_s: float) -> None:
        self.warm_up_s, self.per_round_s = warm_up_s, per_round_s

    def grow(self, template, previous, rounds, train, valid):
        time.sleep((self.warm_up_s if previous is None else 0.0) + rounds * self.per_round_s)
        return super().grow(template, previous, rounds, train, valid)


def test_a_slow_first_chunk_does_not_cut_the_later_ones():
    """The rounds that fit before a deadline are judged at the last chunk's pace: a first
    chunk that took 1.5 s to warm up is not carried into every later one. Judged at the pace
    since the start, the ladder cut itself at 75 rounds here; at the last chunk's pace it
    grows to about 210, when the deadline cuts it."""
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from honing.models.fidelity import Fold, boosting_ladder

    df, y, _ = _frame(600)
    est = build_estimator(
        "lightgbm", {"learning_rate": 0.001, "n_estimators": 300}, seed=0, task="classification"
    )
    model = Pipeline([("scale", StandardScaler()), ("model", est)])
    fold = Fold(df.iloc[:450], y[:450], df.iloc[450:], y[450:])
    began = time.time()
    result = boosting_ladder(
        model, [fold], _Timed(warm_up_s=1.5, per_round_s=0.01), rungs=1,
        score=lambda y_val, p: float(roc_auc_score(y_val, p[:, 1])),
        on_step=None, start=time.perf_counter(), deadline=began + 1.6 + 2.0,
    )  # fmt: skip
    assert time.time() - began < 3.6 + 1.5  # the deadline held (a chunk of slack, loaded)
    assert result.cut and result.rounds > 150, result


def _refit(family: str, params: dict, deadline: float | None, task: str = "classification"):
    df, y, cols = _frame(600, task=task)
    setup = TrainingSetup(task, cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=3)
    res = train_model(df, y, ModelSpec(family, params), setup, fit_deadline=deadline)
    return res, df


def _grown(estimator) -> int:
    """The rounds (trees) a fitted estimator holds, as its library counts them."""
    if hasattr(estimator, "booster_"):
        return estimator.booster_.current_iteration()
    if hasattr(estimator, "get_booster"):
        return estimator.get_booster().num_boosted_rounds()
    if hasattr(estimator, "tree_count_"):
        return estimator.tree_count_
    return len(estimator.estimators_)


FITTED_BY_DEADLINE = ["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees"]


@pytest.mark.parametrize("family", FITTED_BY_DEADLINE)
def test_a_refit_with_time_to_spare_is_the_one_fit(family):
    params = {"n_estimators": 60}
    paced, df = _refit(family, params, time.time() + 3600)
    whole, _ = _refit(family, params, None)
    assert paced.planned is None and paced.spec == whole.spec
    assert _grown(paced.model.steps[-1][1]) == 60
    np.testing.assert_allclose(paced.model.predict_proba(df), whole.model.predict_proba(df))
    # the forest grown in chunks is left as a one-go fit leaves it
    assert paced.model.steps[-1][1].get_params().get("warm_start", False) is False


@pytest.mark.parametrize("family", FITTED_BY_DEADLINE)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_refit_past_its_deadline_keeps_the_fewest_rounds_and_says_so(family, task):
    """A deadline already passed (a machine far slower than the estimate): the fit keeps
    MIN_FIT_ROUNDS rounds, or its first chunk of trees, and its spec records what it grew."""
    res, df = _refit(family, {"n_estimators": 500}, time.time() - 1.0, task=task)
    estimator = res.model.steps[-1][1]
    assert _grown(estimator) == MIN_FIT_ROUNDS
    assert res.spec.params["n_estimators"] == MIN_FIT_ROUNDS
    assert res.planned is not None and res.planned.params["n_estimators"] == 500
    assert len(res.model.predict(df)) == len(df)  # a whole model, features fitted
    # a recorded spec rebuilds the same model without a deadline (honing reproduce)
    again, _ = _refit(family, res.spec.params, None, task=task)
    np.testing.assert_allclose(again.model.predict(df), res.model.predict(df))


def _slow(rounds: type) -> object:
    """A boosting library's rounds, each 20 ms longer, as a round on a large table is."""

    class Slow(rounds):
        def fit_paced(self, estimator, X, y, pace):
            class Sleepy:
                def stop_after_round(self) -> bool:
                    time.sleep(0.02)
                    return pace.stop_after_round()

            return super().fit_paced(estimator, X, y, Sleepy())

    return Slow()


@pytest.mark.parametrize(
    ("family", "rounds", "params"),
    [
        ("lightgbm", LightGBMRounds, {"learning_rate": 0.05}),
        ("xgboost", XGBoostRounds, {"learning_rate": 0.05}),
        ("catboost", CatBoostRounds, {}),  # the rate unset: CatBoost's choice for the rounds
    ],
)
def test_a_refit_whose_time_affords_a_third_of_its_rounds_takes_fewer_larger_steps(
    family, rounds, params
):
    """300 rounds in 2 s at 20 ms a round: the first rounds' pace says about 100 fit, so a
    new estimator is fitted with the rounds the time left affords and the rate scaled by as
    much (their product kept, 0.3 at most; CatBoost's own, larger choice for fewer rounds
    where it is unset), where a plain cut would keep the rate meant for 300. The deadline
    holds, and the recorded parameters rebuild the same model. (A fitted CatBoost refuses
    new parameters: the run of births in bench/unseen.py failed on it.)"""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from honing.models.fidelity import fit_by

    df, y, _ = _frame(600)
    asked = {**params, "n_estimators": 300}
    est = build_estimator(family, asked, seed=0, task="classification")
    model = Pipeline([("scale", StandardScaler()), ("model", est)])
    began = time.time()
    grown = fit_by(model, df, y, booster=_slow(rounds), trees=False, deadline=began + 2.0)
    assert time.time() - began < 2.0 + 0.5  # the deadline held (a round of slack, loaded)
    assert grown is not None and MIN_FIT_ROUNDS <= grown["n_estimators"] < 0.7 * 300, grown
    assert _grown(model.steps[-1][1]) == grown["n_estimators"]
    if "learning_rate" in params:
        scaled = min(0.3, 0.05 * 300 / grown["n_estimators"])
        assert grown["learning_rate"] == pytest.approx(scaled, rel=0.01)
    else:  # CatBoost chose a larger rate for the fewer rounds, and it is recorded
        whole = build_estimator(family, asked, seed=0, task="classification")
        chosen = whole.fit(df.select_dtypes("number"), y).get_all_params()["learning_rate"]
        assert grown["learning_rate"] > chosen
    again = build_estimator(family, {**asked, **grown}, seed=0, task="classification")
    rebuilt = Pipeline([("scale", StandardScaler()), ("model", again)]).fit(df, y)
    np.testing.assert_allclose(rebuilt.predict_proba(df), model.predict_proba(df))


def test_a_multiclass_refit_short_of_time_is_cut_at_its_own_rate():
    """Three classes: the rate is not raised (a larger step overshoots the rare classes'
    softmax scores), so the fit is not begun anew; the deadline cuts it, rate unchanged."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from honing.models.fidelity import fit_by

    df, y, _ = _frame(600)
    y = np.arange(len(y)) % 3
    asked = {"learning_rate": 0.05, "n_estimators": 300}
    est = build_estimator("lightgbm", asked, seed=0, task="classification")
    model = Pipeline([("scale", StandardScaler()), ("model", est)])
    began = time.time()
    grown = fit_by(model, df, y, booster=_slow(LightGBMRounds), trees=False, deadline=began + 1.0)
    assert time.time() - began < 1.0 + 0.5
    assert grown is not None and "learning_rate" not in grown
    assert MIN_FIT_ROUNDS <= grown["n_estimators"] < 300
    assert model.steps[-1][1] is est  # the same estimator, cut


def test_a_paced_fit_says_once_when_its_planned_rounds_will_not_fit():
    from honing.models.boosters import Pace

    began = time.time()
    pace = Pace(began + 1.0, planned=100)
    while not pace.stop_after_round():
        time.sleep(0.03)
    assert pace.short is not None and pace.short < 70 and pace.rounds >= MIN_FIT_ROUNDS
    assert time.time() - began < 0.6  # after a tenth of the time, not at the deadline
    quick = Pace(time.time() + 1.0, planned=20)  # 20 rounds of 30 ms fit in 1 s: no word
    for _ in range(20):
        assert not quick.stop_after_round()
        time.sleep(0.03)
    assert quick.short is None
    # ten rounds of 80 ms took most of a second: the time left affords too few more to be
    # worth beginning anew, and the fit goes on (the deadline cuts it)
    slow = Pace(time.time() + 1.0, planned=100)
    for _ in range(MIN_FIT_ROUNDS):
        time.sleep(0.08)
        stopped = slow.stop_after_round()
    assert not stopped and slow.short is None and slow.decided
