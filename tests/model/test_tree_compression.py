"""Tree compression (`honing.compression.trees`): a cut model is exactly the whole model's
first rounds (trees) or heaviest members, and the `trimmed` candidate is the smallest cut
that stays within tolerance, served as one ONNX graph that answers like it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from honing import compression as C
from honing.compression import candidates, trees
from honing.compression.student import (
    STUDENT_LEAVES,
    booster_student,
    student_export_seconds,
    student_nodes,
)
from honing.config import FeaturesConfig
from honing.evaluation import evaluate
from honing.metrics import worse_than
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _table(n: int, classes: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A signal that a few rounds learn, noise that many rounds fit: most rounds are
    spare."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
        }
    )
    X.loc[::11, "a"] = np.nan
    z = X["a"].fillna(0) + (X["color"] == "red") * 1.5 + rng.normal(scale=0.6, size=n)
    if classes == 0:
        return X, z.to_numpy()
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))


def _model(family: str, params: dict, X: pd.DataFrame, y: np.ndarray, classes: int):
    task = "regression" if classes == 0 else "classification"
    setup = TrainingSetup(
        task,
        infer_columns(X, FeaturesConfig()),
        FeaturesConfig(),
        0,
        "rmse" if classes == 0 else "roc_auc",
        5,
    )
    return make_model(ModelSpec(family, params), setup).fit(X, y)


def _first_rounds_natively(final, Z, kept: int, classify: bool) -> np.ndarray:
    """The library's own answer from the first ``kept`` rounds (trees) of ``final``."""
    name = type(final).__name__
    if name.startswith(("RandomForest", "ExtraTrees")):
        if classify:
            return np.mean([t.predict_proba(Z) for t in final.estimators_[:kept]], axis=0)
        return np.mean([t.predict(Z) for t in final.estimators_[:kept]], axis=0)
    how = {
        "LGBM": {"num_iteration": kept},
        "XGB": {"iteration_range": (0, kept)},
        "CatBoost": {"ntree_end": kept},
    }
    kwargs = next(v for k, v in how.items() if name.startswith(k))
    return final.predict_proba(Z, **kwargs) if classify else final.predict(Z, **kwargs)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost", "random_forest"])
@pytest.mark.parametrize("classes", [0, 3])
def test_a_cut_model_is_exactly_the_first_rounds_of_the_whole(family, classes):
    X, y = _table(600, classes)
    model = _model(family, {"n_estimators": 60}, X, y, classes)
    cut = trees.cut_rounds(model, 0.25)
    final, kept = trees.final_step(cut), 15
    assert trees.rounds(final) == kept
    assert trees.rounds(trees.final_step(model)) == 60  # the whole model is left as it was
    Z = Pipeline(model.steps[:-1]).transform(X)
    whole = trees.final_step(model)
    expected = _first_rounds_natively(whole, Z, kept, classify=classes > 0)
    answer = cut.predict_proba(X) if classes else cut.predict(X)
    np.testing.assert_allclose(np.ravel(answer), np.ravel(expected), rtol=1e-6, atol=1e-7)


def _vote(X: pd.DataFrame, y: np.ndarray, weights: list[int]):
    members = [
        {"family": "lightgbm", "params": {"n_estimators": 80}, "features": {}},
        {"family": "xgboost", "params": {"n_estimators": 40}, "features": {}},
        {"family": "logistic_regression", "params": {}, "features": {}},
    ]
    return _model("ensemble_selection", {"members": members, "weights": weights}, X, y, 2)


def test_a_vote_keeps_its_heaviest_members_in_proportion():
    X, y = _table(800, 2)
    vote = _vote(X, y, [6, 1, 2])
    members = trees.final_step(vote).estimators_
    first = next(trees.member_trims(vote))
    assert first.note.startswith("1 of 3 members (m0_lightgbm")
    np.testing.assert_allclose(
        first.model.predict_proba(X), members[0].predict_proba(X), atol=1e-12
    )
    two = trees.keep_members(vote, [0, 2])
    expected = (6 * members[0].predict_proba(X) + 2 * members[2].predict_proba(X)) / 8
    np.testing.assert_allclose(two.predict_proba(X), expected, atol=1e-12)
    assert len(members) == 3 and trees.final_step(vote).weights == [6, 1, 2]  # as it was


def _within(model, trimmed, X, y, classes, margin):
    reference = evaluate(model, X, y, classes).metrics
    return worse_than(evaluate(trimmed, X, y, classes).metrics, reference, margin)


@pytest.mark.parametrize("kind", ["booster", "vote"])
def test_the_trimmed_candidate_is_smaller_within_tolerance_and_served_alike(kind):
    X, y = _table(3000, 2, seed=1)
    X_test, y_test = _table(1500, 2, seed=2)
    if kind == "booster":  # far more rounds than the signal needs
        model = _model("lightgbm", {"n_estimators": 400, "learning_rate": 0.1}, X, y, 2)
    else:
        model = _vote(X, y, [50, 1, 1])  # a member that all but decides alone
    cols = infer_columns(X, FeaturesConfig())
    classes = [0, 1]
    reference = evaluate(model, X_test, y_test, classes).metrics
    trimmed, why = trees.trimmed_candidate(
        model, X_test, y_test, classes, reference=reference, rule=None, metric="roc_auc",
        tolerance=0.01, numeric=cols.numeric, categorical=cols.text,
    )  # fmt: skip
    assert trimmed is not None, why
    assert trimmed.name == "trimmed" and "native" not in trimmed.note, trimmed.note
    whole = C.onnx_bytes(model, cols.numeric, cols.text)
    assert trimmed.size_bytes < 0.6 * len(whole), (trimmed.size_bytes, len(whole))
    # every metric within the tolerance, measured through the served graph itself
    assert _within(model, trimmed.predictor, X_test, y_test, classes, 0.01) == []
    if kind == "booster":
        kept, total = (int(v) for v in trimmed.note.split(" rounds")[0].split(" of "))
        assert total == 400 and kept <= 200
    else:
        assert trimmed.note.startswith(("1 of 3", "2 of 3")), trimmed.note
    # the whole compression: the trimmed graph is measured, eligible, and reported
    result = C.compress(
        model, X, y, X_test, y_test, classes, numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(techniques=("onnx", "trim")), metric="roc_auc",
        tolerance=0.01, latency_rows=50,
    )  # fmt: skip
    names = [r.name for r in result.report.rows]
    assert names == ["native", "onnx", "trimmed"] and "trimmed" in result.choice.eligible
    assert result.report.row("trimmed").size_bytes < result.report.row("onnx").size_bytes


def test_a_model_with_nothing_to_cut_says_so():
    X, y = _table(600, 2)
    model = _model("logistic_regression", {}, X, y, 2)
    cols = infer_columns(X, FeaturesConfig())
    trimmed, why = trees.trimmed_candidate(
        model, X, y, [0, 1], reference=evaluate(model, X, y, [0, 1]).metrics, rule=None,
        metric="roc_auc", tolerance=0.01, numeric=cols.numeric, categorical=cols.text,
    )  # fmt: skip
    assert trimmed is None and why == "no boosting rounds, forest trees or vote members to cut"


def _two_booster_vote(X: pd.DataFrame, y: np.ndarray, classes: int):
    members = [
        {"family": "lightgbm", "params": {"n_estimators": 80}, "features": {}},
        {"family": "xgboost", "params": {"n_estimators": 40}, "features": {}},
    ]
    return _model("ensemble_selection", {"members": members, "weights": [2, 1]}, X, y, classes)


@pytest.mark.parametrize("classes", [2, 3, 0])
def test_a_booster_student_of_an_ensemble_is_one_smaller_graph_that_answers_like_it(classes):
    """distill_booster: one LightGBM learned from a vote's answers (on its training rows and
    synthetic rows the vote labels), exported as one graph that answers exactly as the
    student pipeline does, smaller than the vote's graph, and within a point of ROC-AUC (2%
    of RMSE) of the vote on rows it never saw."""
    X, y = _table(3000, classes, seed=1)
    X_test, y_test = _table(1500, classes, seed=2)
    model = _two_booster_vote(X, y, classes)
    cols = infer_columns(X, FeaturesConfig())
    candidates, skipped = C.build_candidates(
        model, X, y, numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(techniques=("onnx", "distill_booster")),
    )  # fmt: skip
    by = {c.name: c for c in candidates}
    assert skipped == {} and set(by) == {"native", "onnx", "distilled_booster"}
    student = by["distilled_booster"]
    assert student.note.startswith("one LightGBM of") and student.note.endswith("ONNX")
    assert student.size_bytes < by["onnx"].size_bytes, (student.size_bytes, by["onnx"])
    assert "synthetic ones" in student.note  # 3,000 rows: the teacher labels 13,500 more
    # the planner's bound on the student, costed before it exists, holds
    assert student.n_parameters <= student_nodes(model, classes)
    # the served graph answers as the student pipeline itself does
    alone = booster_student(
        model, C.feature_steps(model), X, y, alpha=0.7, seed=0,
        teacher_nodes=C.n_parameters(model),
    )  # fmt: skip
    assert alone is not None
    data = C.onnx_bytes(alone.pipeline, cols.numeric, cols.text)
    graph = C.OnnxPredictor(data, cols.numeric, cols.text, regression=classes == 0)
    if classes:
        np.testing.assert_allclose(
            graph.predict_proba(X_test), alone.pipeline.predict_proba(X_test), atol=1e-5
        )
    else:
        np.testing.assert_allclose(
            graph.predict(X_test), alone.pipeline.predict(X_test), rtol=1e-4, atol=1e-4
        )
    labels = list(range(classes)) if classes else None
    whole = evaluate(model, X_test, y_test, labels).metrics
    served = evaluate(student.predictor, X_test, y_test, labels).metrics
    if classes:
        assert served["roc_auc"] >= whole["roc_auc"] - 0.01, (served, whole)
    else:
        assert served["rmse"] <= 1.02 * whole["rmse"], (served, whole)


def test_a_linear_model_gets_no_booster_student():
    X, y = _table(600, 2)
    model = _model("logistic_regression", {}, X, y, 2)
    cols = infer_columns(X, FeaturesConfig())
    candidates, skipped = C.build_candidates(
        model, X, y, numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(techniques=("distill_booster",)),
    )  # fmt: skip
    assert [c.name for c in candidates] == ["native"]
    assert "linear model" in skipped["distill_booster"]
    assert student_nodes(model, 2) is None  # the planner costs no student for it


def test_the_export_estimate_follows_each_kind_of_model():
    """The planner's estimate of an export (beyond the stage's fixed part): LightGBM by its
    trees (one per class and round) and nodes, CatBoost near nothing at any size, forests,
    XGBoost and a linear model by their nodes (coefficients) at their own rates; a vote is
    the sum of its members; each pipeline's cut of its unread inputs by its encoder's
    columns; a booster student's by its most trees and nodes."""
    X, y = _table(600, 3)
    cut = candidates.CUT_COLUMN_S * X.shape[1]
    lgbm = _model("lightgbm", {"n_estimators": 40}, X, y, 3)
    trees = lgbm.steps[-1][1].booster_.num_trees()
    assert trees == 40 * 3
    nodes = C.n_parameters(lgbm)
    assert C.export_seconds(lgbm) == pytest.approx(
        cut + candidates.LIGHTGBM_TREE_S * trees + candidates.LIGHTGBM_NODE_S * nodes
    )
    cat = _model("catboost", {"n_estimators": 40, "depth": 6}, X, y, 3)
    xgb = _model("xgboost", {"n_estimators": 40}, X, y, 3)
    forest = _model("random_forest", {"n_estimators": 20}, X, y, 3)
    for model, per_node in ((cat, candidates.CATBOOST_NODE_S), (xgb, candidates.NODE_S),
                            (forest, candidates.FOREST_NODE_S)):  # fmt: skip
        assert C.export_seconds(model) == pytest.approx(cut + per_node * C.n_parameters(model))
    assert C.export_seconds(cat) - cut < 0.2 * candidates.NODE_S * C.n_parameters(cat)
    vote = _two_booster_vote(X, y, 3)
    members = vote.steps[-1][1].estimators_
    assert C.export_seconds(vote) == pytest.approx(sum(C.export_seconds(m) for m in members))
    linear = _model("logistic_regression", {}, X, y, 3)
    assert C.export_seconds(linear) == pytest.approx(
        cut + candidates.NODE_S * C.n_parameters(linear)
    )
    assert student_export_seconds(linear, 3) is None
    most = student_nodes(vote, 3)  # the student's most nodes
    assert student_export_seconds(vote, 3) == pytest.approx(
        candidates.LIGHTGBM_TREE_S * most / (2 * STUDENT_LEAVES - 1)
        + candidates.LIGHTGBM_NODE_S * most
    )
