"""The search's optimization history and hyperparameter importance
(honing.tracking.search_plots)."""

import numpy as np

from honing.modeling.training import ModelSpec
from honing.search.trials import SearchResult, TrialResult
from honing.tracking import search_plots


def _trial(i, family, params, score, started, seconds=1.0, status="completed"):
    return TrialResult(
        trial_id=f"t{i}", spec=ModelSpec(family, params), score=score, score_std=0.0,
        fold_scores=[score], fit_seconds=seconds, started_at=started, status=status,
    )  # fmt: skip


def _search(metric="roc_auc"):
    rng = np.random.default_rng(0)
    trials = []
    for i in range(30):  # the score is all in the learning rate; leaves and lambda are noise
        rate = 10 ** rng.uniform(-2.5, 0)
        params = {"learning_rate": rate, "num_leaves": int(rng.integers(4, 256)),
                  "reg_lambda": float(rng.uniform(0, 1)), "objective": "binary"}  # fmt: skip
        score = 0.9 - 0.1 * abs(np.log10(rate) + 1) + rng.normal(scale=0.002)
        trials.append(_trial(i, "lightgbm", params, score, 100.0 + i))
    trials += [_trial(40 + i, "logistic_regression", {"C": c}, 0.8, 100.5 + i)
               for i, c in enumerate([0.1, 1.0, 10.0])]  # fmt: skip
    trials.append(_trial(50, "lightgbm", {"learning_rate": 0.1}, None, 140.0, status="stopped"))
    return SearchResult(metric=metric, trials=trials)


def test_the_history_is_every_completed_trial_in_the_order_they_ended_with_the_best_so_far():
    points = search_plots.history(_search())
    assert len(points) == 33  # the stopped trial has no score
    ends = [p.seconds for p in points]
    assert ends == sorted(ends) and ends[0] == 1.0  # seconds from the first start, at the end
    assert [p.best for p in points] == list(np.maximum.accumulate([p.score for p in points]))
    # for an error, lower is better: the best so far only falls
    lower = search_plots.history(_search("rmse"))
    assert [p.best for p in lower] == list(np.minimum.accumulate([p.score for p in lower]))


def test_the_hyperparameter_that_moves_the_score_comes_first():
    importance = search_plots.param_importance(_search())
    assert set(importance) == {"lightgbm"}  # three logistic regression trials are too few
    shares = importance["lightgbm"]
    assert list(shares)[0] == "learning_rate" and shares["learning_rate"] > 0.6
    assert set(shares) == {"learning_rate", "num_leaves", "reg_lambda"}  # numbers that vary
    assert abs(sum(shares.values()) - 1) < 1e-3


def test_the_search_figures_are_drawn_only_from_what_there_is():
    figures, importance = search_plots.search_figures(_search())
    assert set(figures) == {"optimization_history.png", "param_importance.png"}
    assert importance["lightgbm"]["learning_rate"] > 0.6
    few = SearchResult(metric="roc_auc", trials=_search().trials[30:33])
    figures, importance = search_plots.search_figures(few)
    assert set(figures) == {"optimization_history.png"} and importance == {}
    assert search_plots.search_figures(SearchResult(metric="roc_auc")) == ({}, {})
