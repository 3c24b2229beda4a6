"""Search depth without Ray running: spaces per algorithm, schedulers, feature options,
resampling inside folds, resource rungs, ensembles, nested-CV bookkeeping, explanations."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from ray import tune
from sklearn.neighbors import KNeighborsClassifier

from honing.config import EnsembleConfig, FeaturesConfig, SearchConfig
from honing.evaluation import explain
from honing.evaluation.nested import NestedCVResult
from honing.modeling.features import infer_columns, resample
from honing.modeling.training import (
    ModelSpec,
    TrainingSetup,
    cross_validate_model,
    make_model,
    train_model,
)
from honing.search import SearchResult, TrialResult, ensembles
from honing.search.search_space import (
    build_space,
    num_samples,
    scheduler,
    search_alg,
    spec_from_trial_config,
)

FAMILIES = {
    "logistic_regression": {"C": {"loguniform": [0.01, 1.0]}},
    "knn": {"n_neighbors": {"choice": [5, 15]}},
}


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = ((x1 + (color == "red") * 1.5 + rng.normal(scale=0.5, size=n)) > 0.9).astype(int)
    return pd.DataFrame({"x1": x1, "noise": rng.normal(size=n), "color": color}), y


@pytest.mark.parametrize(
    ("algorithm", "family_domain", "samples"),
    [("random", "grid", 3), ("tpe", "choice", 6), ("evolutionary", "choice", 6)],
)
def test_space_per_algorithm(algorithm, family_domain, samples):
    cfg = SearchConfig(
        families=FAMILIES,
        features={"scaler": {"choice": ["standard", "robust"]}, "pca": {"choice": [None, 0.9]}},
        algorithm=algorithm,
        trials_per_family=3,
    )
    space = build_space(cfg)
    if family_domain == "grid":
        assert space["family"] == tune.grid_search(["knn", "logistic_regression"])
    else:
        assert space["family"].categories == ["knn", "logistic_regression"]
    assert space["features__scaler"].categories == ["standard", "robust"]
    assert num_samples(cfg) == samples
    alg = search_alg(cfg)
    assert (
        type(alg).__name__
        == {
            "random": "BasicVariantGenerator",
            "tpe": "FamilyTPESearcher",
            "evolutionary": "OptunaSearch",
        }[algorithm]
    )
    if algorithm == "tpe":  # one TPE per family, with the constant liar for parallel trials
        samplers = [study.sampler for study in alg.state.studies.values()]
        assert sorted(alg.state.studies) == ["knn", "logistic_regression"]
        assert all(type(s).__name__ == "TPESampler" and s._constant_liar for s in samplers)
    elif algorithm == "evolutionary":
        assert type(alg._sampler).__name__ == "NSGAIISampler"


def test_grid_search_turns_choices_into_grid_axes_and_refuses_continuous_ranges():
    cfg = SearchConfig(
        families={"knn": {"n_neighbors": {"choice": [5, 15]}}},
        features={"scaler": {"choice": ["standard", "robust"]}},
        algorithm="grid",
    )
    space = build_space(cfg)
    assert space["knn__n_neighbors"] == {"grid_search": [5, 15]}
    assert space["features__scaler"] == {"grid_search": ["standard", "robust"]}
    assert num_samples(cfg) == 1
    with pytest.raises(ValidationError, match="algorithm grid needs choice"):
        SearchConfig(families=FAMILIES, algorithm="grid")


def test_only_known_feature_options_are_searchable():
    with pytest.raises(ValidationError, match="cannot be searched"):
        SearchConfig(families=FAMILIES, features={"numeric": {"choice": [["a"]]}})


@pytest.mark.parametrize(
    ("kind", "cls", "brackets"),
    [
        ("none", "FIFOScheduler", None),
        ("asha", "AsyncHyperBandScheduler", 1),
        ("hyperband", "AsyncHyperBandScheduler", 3),
        ("median", "MedianStoppingRule", None),
    ],
)
def test_schedulers(kind, cls, brackets):
    from ray.tune import schedulers

    sched = scheduler(SearchConfig(families=FAMILIES, scheduler={"kind": kind, "max_t": 9}))
    assert isinstance(sched, getattr(schedulers, cls))  # HyperBand's deal is seeded: a subclass
    if brackets:
        assert len(sched._brackets) == brackets and sched._time_attr == "rung"


def test_trial_config_carries_feature_options():
    spec = spec_from_trial_config(
        {"family": "knn", "knn__n_neighbors": np.int64(7), "features__scaler": "robust"}
    )
    assert spec == ModelSpec("knn", {"n_neighbors": 7}, {"scaler": "robust"})
    assert "features(scaler=robust)" in spec.label()


def test_feature_options_shape_the_pipeline():
    X, y = _data()
    cols = infer_columns(X, FeaturesConfig())
    spec = ModelSpec(
        "logistic_regression",
        {},
        {"encoder": "ordinal", "selection": "mutual_info", "selection_fraction": 0.5, "pca": 0.9},
    )
    model = make_model(
        spec,
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    ).fit(X, y)
    assert [name for name, _ in model.steps] == ["features", "select", "pca", "model"]
    assert model.named_steps["features"].transform(X).shape[1] == 3  # ordinal: one column
    assert model.named_steps["select"].get_support().sum() <= 2
    l1 = make_model(
        ModelSpec("knn", {}, {"selection": "l1"}),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    )
    assert type(l1.fit(X, y).named_steps["select"]).__name__ == "SelectFromModel"
    with pytest.raises(ValidationError, match="pca"):
        make_model(
            ModelSpec("knn", {}, {"pca": 3.0}),
            TrainingSetup(
                "classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5
            ),
        )


def test_resampling_balances_training_rows_only():
    X, y = _data()
    Xo, yo = resample(X, y, "oversample", seed=0)
    assert np.bincount(yo)[0] == np.bincount(yo)[1] == np.bincount(y).max()
    Xu, yu = resample(X, y, "undersample", seed=0)
    assert np.bincount(yu)[0] == np.bincount(yu)[1] == np.bincount(y).min()
    assert len(Xo) == len(yo) and len(Xu) == len(yu)

    seen = []

    predicted: list[int] = []

    class Recorder(KNeighborsClassifier):
        def fit(self, X, y):
            seen.append(np.bincount(y))
            return super().fit(X, y)

        def predict_proba(self, X):
            predicted.append(len(X))
            return super().predict_proba(X)

    from sklearn.pipeline import Pipeline

    from honing.modeling.features import build_preprocessor

    model = Pipeline(
        [
            (
                "features",
                build_preprocessor(
                    infer_columns(X, FeaturesConfig()), FeaturesConfig(), task="classification"
                ),
            ),
            ("model", Recorder()),
        ]
    )
    cv = cross_validate_model(
        model, X, y, folds=3, metric="accuracy", seed=0, sampling="oversample"
    )
    assert all(counts[0] == counts[1] for counts in seen)  # each fold's training rows balanced
    # the validation rows are the table's own, each once: none added, none dropped, so each
    # fold keeps its natural balance
    assert len(cv.fold_scores) == 3 and cv.oof is not None and len(cv.oof) == len(y)
    assert sorted(cv.oof_rows.tolist()) == list(range(len(y)))
    assert sum(predicted) == len(y)


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("hist_gradient_boosting", {"max_iter": 30}),
        ("mlp", {"max_epochs": 6, "early_stopping": False}),
    ],
)
def test_rungs_grow_the_budget_and_end_where_one_shot_training_ends(family, params):
    X, y = _data()
    cols = infer_columns(X, FeaturesConfig())
    steps = []
    laddered = train_model(
        X,
        y,
        ModelSpec(family, params),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="accuracy", folds=3),
        cross_validate=True,
        refit=False,
        rungs=3,
        on_step=lambda rung, scores, seconds: steps.append((rung, np.mean(scores))),
    )
    assert [r for r, _ in steps] == [1, 2, 3]
    one_shot = train_model(
        X,
        y,
        ModelSpec(family, params),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="accuracy", folds=3),
        cross_validate=True,
        refit=False,
    )
    np.testing.assert_allclose(laddered.cv.fold_scores, one_shot.cv.fold_scores)


def test_one_shot_families_report_once_at_the_last_rung():
    X, y = _data()
    steps = []
    train_model(
        X,
        y,
        ModelSpec("knn", {}),
        TrainingSetup(
            "classification",
            infer_columns(X, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="accuracy",
            folds=3,
        ),
        cross_validate=True,
        refit=False,
        rungs=4,
        on_step=lambda rung, scores, seconds: steps.append(rung),
    )
    assert steps == [4]


def _t(i, family, score):
    return TrialResult(str(i), ModelSpec(family, {"i": i}), score, 0.0, [], 1.0)


def test_ensembles_use_the_top_k_distinct_trials_and_are_kept_only_if_better():
    result = SearchResult(
        "roc_auc",
        [
            _t(0, "knn", 0.70),
            _t(1, "logistic_regression", 0.80),
            _t(2, "svm", 0.75),
            _t(3, "knn", None),
        ],
    )
    specs = ensembles.ensemble_specs(
        result, EnsembleConfig(enabled=True, top_k=2, methods=["soft_voting", "stacking"])
    )
    assert [s.family for s in specs] == ["soft_voting", "stacking"]
    assert [m["family"] for m in specs[0].params["members"]] == ["logistic_regression", "svm"]

    from honing.modeling.training import CVResult

    worse = [ensembles.EnsembleScore(specs[0], CVResult("roc_auc", [0.79, 0.80], 1.0))]
    kept = ensembles.choose(result.best, worse)
    assert kept.spec == result.best.spec and "kept" in kept.reason
    better = worse + [ensembles.EnsembleScore(specs[1], CVResult("roc_auc", [0.82, 0.83], 1.0))]
    chosen = ensembles.choose(result.best, better)
    assert chosen.spec.family == "stacking" and chosen.scores["best_single"] == 0.80
    single = SearchResult("roc_auc", [_t(0, "knn", 0.7)])
    assert ensembles.ensemble_specs(single, EnsembleConfig(enabled=True)) == []


@pytest.mark.parametrize("method", ["soft_voting", "stacking"])
def test_ensemble_models_fit_and_predict(method):
    X, y = _data()
    cols = infer_columns(X, FeaturesConfig())
    members = [
        {"family": "logistic_regression", "params": {}, "features": {}},
        {
            "family": "extra_trees",
            "params": {"n_estimators": 20},
            "features": {"encoder": "ordinal"},
        },
    ]
    res = train_model(
        X,
        y,
        ModelSpec(method, {"members": members}),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=3),
        cross_validate=True,
    )
    assert res.cv.mean > 0.8
    assert res.model.predict_proba(X.head(5)).shape == (5, 2)


def test_nested_cv_result_reports_optimism():
    r = NestedCVResult("roc_auc", [0.80, 0.82], [0.85, 0.85], ["a", "b"])
    assert r.mean == pytest.approx(0.81) and r.optimism == pytest.approx(0.04)
    assert r.to_dict()["std"] == pytest.approx(0.01)


def test_permutation_importance_finds_the_signal_and_shap_agrees():
    X, y = _data(600)
    cols = infer_columns(X, FeaturesConfig())
    model = train_model(
        X,
        y,
        ModelSpec("random_forest", {"n_estimators": 50}),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    ).model
    results, notes = explain.explain_model(model, X, y, metric="roc_auc", seed=0)
    perm = results[0]
    assert perm.method == "permutation" and perm.top(1)[0][0] == "x1"
    assert perm.mean[perm.features.index("noise")] < perm.mean[perm.features.index("x1")] / 3
    shap_imp = results[1]
    assert shap_imp.method == "shap_tree" and notes == []
    assert shap_imp.top(1)[0][0] == "x1"
    lr = train_model(
        X,
        y,
        ModelSpec("logistic_regression", {}),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    ).model
    linear = explain.shap_importances(lr, X, seed=0, rows=30)  # exact, no permutations
    assert linear.method == "shap_linear" and linear.top(1)[0][0] == "x1"
    assert "log-odds" in linear.note
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    features = Pipeline(lr.steps[:-1])
    knn = KNeighborsClassifier().fit(features.transform(X), y)
    other = Pipeline([*lr.steps[:-1], ("knn", knn)])  # neither linear nor a tree
    assert explain.shap_importances(other, X, seed=0, rows=30).method == "shap_permutation"
    fig = explain.plot_importance(perm)
    assert fig.axes[0].get_title() == "permutation importance"
