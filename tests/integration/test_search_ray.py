"""Ray Tune search on a local Ray instance: the trainable calls the same train_model()."""

import pytest

from honing.config import FeaturesConfig, RaySettings, SearchConfig
from honing.data import clean, split_data
from honing.modeling.features import infer_columns
from honing.modeling.training import TrainingSetup, train_model
from honing.search import run_search
from tests.conftest import SMALL_SEARCH

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def small_split(churn_df):
    df, _ = clean(churn_df.sample(1500, random_state=0), "churn")
    split, _ = split_data(
        df,
        "churn",
        positive_label="Yes",
        drop_columns=[],
        test_size=0.2,
        seed=0,
        task="classification",
    )
    return split


def _search(split, cfg, cols, tmp_path, name):
    # on Ray Tune, however small the search (the tests' subject)
    cfg = cfg.model_copy(update={"executor": "ray"})
    return run_search(
        split.X_train,
        split.y_train,
        cfg=cfg,
        setup=TrainingSetup(
            "classification",
            cols,
            FeaturesConfig(),
            seed=cfg.seed,
            metric=cfg.metric,
            folds=cfg.cv_folds,
        ),
        ray_settings=RaySettings(storage_path=str(tmp_path)),
        experiment_name=name,
    )


def test_search_runs_every_family_and_matches_train_model(ray_local, small_split, tmp_path):
    cfg = SearchConfig.model_validate({**SMALL_SEARCH, "trials_per_family": 2})
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, "t")
    assert len(result.trials) == 6
    assert {t.spec.family for t in result.trials} == set(SMALL_SEARCH["families"])
    assert all(t.error is None and len(t.fold_scores) == 3 for t in result.trials)
    assert result.best.score == max(t.score for t in result.trials)
    assert result.nodes and all(t.node in result.nodes for t in result.trials)

    # The trial's score is exactly what train_model computes outside Ray.
    best = result.best
    direct = train_model(
        small_split.X_train,
        small_split.y_train,
        best.spec,
        TrainingSetup(
            "classification",
            cols,
            FeaturesConfig(),
            seed=cfg.seed,
            metric=cfg.metric,
            folds=cfg.cv_folds,
        ),
        cross_validate=True,
        refit=False,
    )
    assert direct.cv.fold_scores == pytest.approx(best.fold_scores)


def test_failed_trials_are_reported_not_hidden(ray_local, small_split, tmp_path):
    cfg = SearchConfig.model_validate(
        {
            "families": {
                "logistic_regression": {"C": 1.0},
                "random_forest": {"n_estimators": 10, "max_features": "not-a-mode"},
            },
            "trials_per_family": 1,
            "cv_folds": 2,
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, "t2")
    failed = [t for t in result.trials if t.error]
    assert len(failed) == 1 and failed[0].spec.family == "random_forest"
    assert "max_features" in failed[0].error
    assert result.best.spec.family == "logistic_regression"


def test_local_ray_stays_on_loopback(ray_local):
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert not ray._private.worker.global_worker.node.address_info.get("webui_url")  # no dashboard
    assert ray_local["CPU"] == 2


def test_mlp_family_runs_as_a_tune_trial(ray_local, small_split, tmp_path):
    cfg = SearchConfig.model_validate(
        {
            "families": {
                "mlp": {
                    "width": {"choice": [8, 16]},
                    "max_epochs": 10,
                    "optimizer": {"choice": ["adam", "nesterov"]},
                    "learning_rate": 0.01,
                }
            },
            "trials_per_family": 2,
            "cv_folds": 2,
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, "mlp")
    assert len(result.completed) == 2
    assert result.best.spec.family == "mlp" and result.best.score > 0.7


@pytest.mark.parametrize("algorithm", ["tpe", "evolutionary"])
def test_model_based_algorithms_learn_over_families_and_feature_options(
    ray_local, small_split, tmp_path, algorithm
):
    cfg = SearchConfig.model_validate(
        {
            "families": {
                "logistic_regression": {"C": {"loguniform": [0.01, 10.0]}},
                "knn": {"n_neighbors": {"randint": [5, 60]}},
            },
            "features": {"scaler": {"choice": ["standard", "minmax"]}},
            "algorithm": algorithm,
            "trials_per_family": 4,
            "cv_folds": 3,
            # one at a time: the sampler's later proposals depend on which results are in
            "max_concurrent_trials": 1,
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, algorithm)
    assert len(result.trials) == 8 and not [t for t in result.trials if t.error]
    assert {t.spec.family for t in result.trials} <= {"logistic_regression", "knn"}
    assert all(t.spec.features["scaler"] in ("standard", "minmax") for t in result.trials)
    # the samplers are seeded: the same config proposes the same trials for each family.
    # Which family runs next follows the seconds each has used (cost-aware time shares), so
    # on a loaded machine the families may interleave in another order.
    again = _search(small_split, cfg, cols, tmp_path, f"{algorithm}-again")

    def by_family(trials):
        return {
            f: [t.spec for t in trials if t.spec.family == f]
            for f in ("logistic_regression", "knn")
        }

    assert by_family(again.trials) == by_family(result.trials)


def test_grid_search_covers_the_grid(ray_local, small_split, tmp_path):
    cfg = SearchConfig.model_validate(
        {
            "families": {"knn": {"n_neighbors": {"choice": [5, 25]}}},
            "features": {"scaler": {"choice": ["standard", "robust"]}},
            "algorithm": "grid",
            "cv_folds": 2,
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, "grid")
    points = {(t.spec.params["n_neighbors"], t.spec.features["scaler"]) for t in result.trials}
    assert points == {(5, "standard"), (5, "robust"), (25, "standard"), (25, "robust")}


@pytest.mark.parametrize("kind", ["asha", "hyperband", "median"])
def test_schedulers_stop_bad_mlp_trials_early(ray_local, small_split, tmp_path, kind):
    # One trial at a time, good learning rates first: the tiny ones that follow fall below
    # the bar at their first rungs and are stopped before the full epoch budget. HyperBand
    # deals trials to its brackets from the search's seed (42): the first trial and the tiny
    # ones share the bracket with the most rungs, the same way every run.
    cfg = SearchConfig.model_validate(
        {
            "families": {
                "mlp": {
                    "learning_rate": {"grid": [3e-3, 1e-2, 5e-3, 1e-6, 2e-6, 3e-6]},
                    "max_epochs": 12,
                    "width": 16,
                    "early_stopping": False,
                }
            },
            "trials_per_family": 1,
            "cv_folds": 2,
            "metric": "roc_auc",
            "max_concurrent_trials": 1,
            "scheduler": {"kind": kind, "max_t": 4, "grace_period": 1, "reduction_factor": 2},
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, kind)
    rungs = {t.spec.params["learning_rate"]: t.rungs for t in result.trials}
    assert rungs[3e-3] == 4  # the first trial always runs to the end
    assert min(rungs[lr] for lr in (1e-6, 2e-6, 3e-6)) < 4
    assert not [t for t in result.trials if t.error]
    # every rung's score is kept, in order, up to where the scheduler stopped the trial
    for t in result.trials:
        assert [r for r, _, _ in t.rung_scores] == list(range(1, t.rungs + 1))
        assert t.rung_scores[-1][1] == pytest.approx(t.score)


def test_asha_cuts_boosting_by_rounds_and_the_refit_keeps_the_best_rounds(
    ray_local, small_split, tmp_path
):
    # Boosting rounds are the resource: the slow learning rates that follow the good ones
    # have a poor log loss after their first quarter of rounds and are stopped there.
    cfg = SearchConfig.model_validate(
        {
            "families": {
                "lightgbm": {
                    "learning_rate": {"grid": [0.1, 0.05, 1e-4, 2e-4, 3e-4]},
                    "n_estimators": 400,
                }
            },
            "trials_per_family": 1,
            "cv_folds": 2,
            "metric": "log_loss",
            "max_concurrent_trials": 1,
            "scheduler": {"kind": "asha", "max_t": 4, "grace_period": 1, "reduction_factor": 2},
        }
    )
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    result = _search(small_split, cfg, cols, tmp_path, "boosting-asha")
    by_rate = {t.spec.params["learning_rate"]: t for t in result.trials}
    slow = [by_rate[r] for r in (1e-4, 2e-4, 3e-4)]
    assert any(t.status == "stopped" and t.rungs < 4 for t in slow)
    good = by_rate[0.1]
    assert good.status == "completed" and good.oof is not None
    # early stopping chose the rounds; the spec the refit uses carries them
    assert good.spec.params["n_estimators"] < 400
    assert not [t for t in result.trials if t.error]


def test_a_trial_larger_than_any_node_is_refused_with_its_reason(ray_local, small_split, tmp_path):
    """Tune would wait out the budget with nothing started; the search says why at once."""
    from honing.exceptions import ConfigError

    cfg = SearchConfig.model_validate({**SMALL_SEARCH, "cpus_per_trial": 100})
    cols = infer_columns(small_split.X_train, FeaturesConfig())
    with pytest.raises(ConfigError, match=r"search.cpus_per_trial: a trial asks for 100 CPUs"):
        _search(small_split, cfg, cols, tmp_path, "too-big")
