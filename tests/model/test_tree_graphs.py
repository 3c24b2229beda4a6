"""honing's own tree graphs: LightGBM's booster, scikit-learn's forests and its
HistGradientBoosting written from the model's arrays (:mod:`honing.models.tree_graphs`), and
CatBoost's symmetric trees as dense operators (:mod:`honing.models.catboost_graph`), answer exactly
as the native model on every kind of split and missing value; the forests' attributes are
what skl2onnx's node-by-node walk writes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.tree_ensemble import (
    add_tree_to_attribute_pairs,
    get_default_tree_classifier_attribute_pairs,
)
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from honing.models.catboost_graph import catboost_json, catboost_supported
from honing.models.converters import (
    catboost_onnx,
    forest_onnx,
    hist_gradient_boosting_onnx,
    lightgbm_onnx,
)
from honing.models.tree_graphs import LightGBMText, forest_attributes, lightgbm_supported

pytestmark = pytest.mark.model

N = 3000


def _table(nan_share: float, seed: int = 0) -> np.ndarray:
    """Six columns: three numeric on very different scales, one numeric with many zeros, and
    two integer categoricals (columns 4 and 5; the second's 70 categories take three words of
    LightGBM's category bitsets)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 6)) * np.array([1.0, 1e3, 1e-3, 1.0, 1.0, 1.0])
    X[:, 3] = np.where(rng.random(N) < 0.3, 0.0, X[:, 3])
    X[:, 4] = rng.integers(0, 12, N)
    X[:, 5] = rng.integers(0, 70, N)
    X[rng.random(X.shape) < nan_share] = np.nan
    return X


def _target(X: np.ndarray, classes: int) -> np.ndarray:
    z = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) / 1e3 + (np.nan_to_num(X[:, 4]) % 3 == 0)
    z = z + (np.nan_to_num(X[:, 5]) % 4 == 1) * 1.5
    return np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))


def _probe(X: np.ndarray) -> np.ndarray:
    """Rows the graph must route like the booster: fresh rows, whole rows missing, negative
    and unseen categories, exact zeros."""
    probe = _table(0.1, seed=1)
    probe[:200] = np.nan
    probe[200:300, 4] = -1
    probe[300:400, 5] = 140
    probe[400:500, [0, 3]] = 0.0
    return np.vstack([X[:500], probe])


def _graph_answers(model, X: np.ndarray) -> list[np.ndarray]:
    lightgbm_onnx()
    forest_onnx()
    catboost_onnx()
    hist_gradient_boosting_onnx()
    classifier = type(model).__name__.endswith("Classifier")
    options = {id(model): {"zipmap": False}} if classifier else None
    graph = to_onnx(
        model, initial_types=[("x", FloatTensorType([None, X.shape[1]]))], options=options,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )  # fmt: skip
    session = ort.InferenceSession(graph.SerializeToString())
    return session.run(None, {"x": X.astype(np.float32)})


@pytest.mark.parametrize("nan_share", [0.1, 0.0])  # missing type NaN, and None
@pytest.mark.parametrize("classes", [2, 4])
def test_lightgbm_classifier_graph_answers_as_the_booster(classes, nan_share):
    X = _table(nan_share)
    model = LGBMClassifier(n_estimators=40, verbose=-1, categorical_feature=[4, 5])
    model.fit(X, _target(X, classes))
    assert lightgbm_supported(model, LightGBMText.of(model.booster_))
    probe = _probe(X)
    label, probabilities = _graph_answers(model, probe)
    np.testing.assert_allclose(probabilities, model.predict_proba(probe), atol=1e-5)
    assert (label == model.predict(probe)).all()


def test_lightgbm_graph_of_one_leaf_trees():
    X = _table(0.1)
    model = LGBMClassifier(n_estimators=3, verbose=-1, min_child_samples=N).fit(X, _target(X, 2))
    assert model.booster_.trees_to_dataframe()["node_depth"].max() == 1  # a leaf per tree
    _, probabilities = _graph_answers(model, _probe(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(_probe(X)), atol=1e-6)


def test_lightgbm_graph_keeps_string_labels():
    X = _table(0.1)
    labels = np.array(["low", "mid", "high"])[_target(X, 3)]
    model = LGBMClassifier(n_estimators=20, verbose=-1).fit(X, labels)
    label, probabilities = _graph_answers(model, _probe(X))
    assert (label == model.predict(_probe(X))).all()
    np.testing.assert_allclose(probabilities, model.predict_proba(_probe(X)), atol=1e-5)


@pytest.mark.parametrize("objective", ["regression", "poisson", "huber"])
def test_lightgbm_regressor_graph_answers_as_the_booster(objective):
    X = _table(0.1)
    y = _target(X, 5).astype(float) + np.abs(np.nan_to_num(X[:, 0]))
    model = LGBMRegressor(n_estimators=40, verbose=-1, objective=objective, categorical_feature=[4])
    model.fit(X, y)
    (predicted,) = _graph_answers(model, _probe(X))
    np.testing.assert_allclose(predicted.ravel(), model.predict(_probe(X)), rtol=1e-5, atol=1e-4)


def test_lightgbm_splits_the_graph_cannot_express_go_to_the_generic_converter():
    X = _table(0.1)
    y = _target(X, 2)
    zero_missing = LGBMClassifier(n_estimators=5, verbose=-1, zero_as_missing=True).fit(X, y)
    assert not lightgbm_supported(zero_missing, LightGBMText.of(zero_missing.booster_))
    linear = LGBMRegressor(n_estimators=5, verbose=-1, linear_tree=True).fit(np.nan_to_num(X), y)
    assert not lightgbm_supported(linear, LightGBMText.of(linear.booster_))
    forest = LGBMClassifier(
        n_estimators=5, verbose=-1, boosting_type="rf", bagging_freq=1, bagging_fraction=0.5
    ).fit(X, y)
    assert not lightgbm_supported(forest, LightGBMText.of(forest.booster_))
    label, _ = _graph_answers(zero_missing, X[:50])  # onnxmltools' graph, still a graph
    assert label.shape == (50,)


def _at_thresholds(forest, X: np.ndarray) -> np.ndarray:
    """Rows whose first split feature sits exactly on the forest's thresholds as float32 and
    on the floats either side: where rounding a double threshold to float can flip a branch."""
    rows = []
    for estimator in forest.estimators_[:5]:
        tree = estimator.tree_
        for node in np.flatnonzero(tree.children_left >= 0)[:40]:
            t = np.float32(tree.threshold[node])
            for value in (np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf)):
                row = X[node % len(X)].copy()
                row[tree.feature[node]] = value
                rows.append(row)
    return np.asarray(rows)


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("classes", [2, 3])
def test_forest_classifier_graph_answers_as_the_forest(kind, classes):
    X = np.nan_to_num(_table(0.0))
    model = kind(n_estimators=30, min_samples_leaf=2, random_state=0).fit(X, _target(X, classes))
    probe = np.vstack([_at_thresholds(model, X), np.nan_to_num(_probe(X))]).astype(np.float32)
    label, probabilities = _graph_answers(model, probe)
    native = model.predict_proba(probe)
    np.testing.assert_allclose(probabilities, native, atol=1e-6)
    top = np.sort(native, axis=1)
    decided = top[:, -1] - top[:, -2] > 1e-6  # a tie (an even vote) has no one label to match
    assert decided.mean() > 0.9
    assert (label == model.predict(probe))[decided].all()


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_forest_regressor_graph_answers_as_the_forest(kind):
    X = np.nan_to_num(_table(0.0))
    y = X[:, 0] * 3 + X[:, 1] / 1e3
    model = kind(n_estimators=30, random_state=0).fit(X, y)
    probe = np.vstack([_at_thresholds(model, X), np.nan_to_num(_probe(X))]).astype(np.float32)
    (predicted,) = _graph_answers(model, probe)
    np.testing.assert_allclose(predicted.ravel(), model.predict(probe), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("classes", [2, 4])
def test_hist_gradient_boosting_graph_answers_as_the_model(classes):
    """Missing values go to the side each split learnt. The graph is fed the float32 cast of
    rows the model reads in float64, as served rows are: thresholds rounded to the nearest
    float route them all alike (rounded down, as skl2onnx rounds a forest's, 10 and 29 of
    these 3,500 rows went the other way at a bin edge)."""
    X = _table(0.1)
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    model.fit(X, _target(X, classes))
    probe = _probe(X)
    label, probabilities = _graph_answers(model, probe)
    np.testing.assert_allclose(probabilities, model.predict_proba(probe), atol=1e-5)
    assert (label == model.predict(probe)).all()


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_hist_gradient_boosting_regressor_graph_answers_as_the_model(loss):
    X = _table(0.1)
    y = np.abs(np.nan_to_num(X[:, 0]) * 3 + np.nan_to_num(X[:, 1]) / 1e3)
    model = HistGradientBoostingRegressor(max_iter=40, loss=loss, random_state=0).fit(X, y)
    probe = _probe(X)
    (predicted,) = _graph_answers(model, probe)
    np.testing.assert_allclose(predicted.ravel(), model.predict(probe), rtol=1e-5, atol=1e-5)


def test_forest_attributes_are_skl2onnx_own_for_each_node():
    X = np.nan_to_num(_table(0.0))
    model = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, _target(X, 3))
    expected = get_default_tree_classifier_attribute_pairs()
    for i, estimator in enumerate(model.estimators_):
        add_tree_to_attribute_pairs(
            expected, True, estimator.tree_, i, 1 / 8, 0, True, True, dtype=np.float32
        )
    ours = forest_attributes(model, classifier=True)
    assert set(ours) == set(expected) - {"post_transform", "nodes_hitrates"}
    for name, values in ours.items():
        want = np.asarray(expected[name])
        if want.dtype.kind == "f":
            np.testing.assert_array_equal(np.asarray(values), want.astype(np.float32), name)
        else:
            assert list(values) == list(want), name


@pytest.mark.parametrize("nan_mode", ["Min", "Max"])
@pytest.mark.parametrize("classes", [2, 3])
def test_catboost_graph_answers_as_catboost(classes, nan_mode):
    X = _table(0.1)
    X[:, 5] = np.nan_to_num(X[:, 5])  # missing at prediction only: CatBoost's "AsIs"
    model = CatBoostClassifier(
        iterations=60, depth=5, nan_mode=nan_mode, verbose=0, thread_count=1,
        allow_writing_files=False,
    ).fit(X, _target(X, classes))  # fmt: skip
    assert catboost_supported(model, catboost_json(model))
    label, probabilities = _graph_answers(model, _probe(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(_probe(X)), atol=1e-5)
    assert (label == model.predict(_probe(X)).ravel()).all()


def test_catboost_regressor_graph_answers_as_catboost():
    X = _table(0.1)
    y = _target(X, 5).astype(float) + np.abs(np.nan_to_num(X[:, 0]))
    model = CatBoostRegressor(
        iterations=60, depth=6, verbose=0, thread_count=1, allow_writing_files=False
    ).fit(X, y)
    (predicted,) = _graph_answers(model, _probe(X))
    np.testing.assert_allclose(predicted.ravel(), model.predict(_probe(X)), rtol=1e-5, atol=1e-4)


def test_catboost_graph_is_smaller_than_catboosts_own_and_its_native_file():
    """The reason it exists: a symmetric tree is its splits and leaves, not 2^depth - 1
    nodes with a string each (CatBoost's own export)."""
    import skops.io as sio
    from catboost.utils import convert_to_onnx_object

    X = _table(0.0)
    model = CatBoostClassifier(
        iterations=300, depth=6, verbose=0, thread_count=1, allow_writing_files=False
    ).fit(X, _target(X, 2))
    catboost_onnx()
    ours = to_onnx(
        model, initial_types=[("x", FloatTensorType([None, 6]))],
        options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3},
    ).SerializeToString()  # fmt: skip
    own = convert_to_onnx_object(model).SerializeToString()
    assert len(ours) < 0.1 * len(own)
    assert len(ours) < 0.5 * len(sio.dumps(model))


def test_catboost_models_the_graph_cannot_express_keep_catboosts_own_export():
    X = _table(0.0)
    labels = np.array(["low", "high"])[_target(X, 2)]
    kw = {"iterations": 5, "verbose": 0, "thread_count": 1, "allow_writing_files": False}
    named = CatBoostClassifier(**kw).fit(X, labels)
    assert not catboost_supported(named, catboost_json(named))
    poisson = CatBoostRegressor(loss_function="Poisson", **kw).fit(X, _target(X, 4))
    assert not catboost_supported(poisson, catboost_json(poisson))
    (predicted,) = _graph_answers(poisson, X[:50])  # CatBoost's own graph: raw scores
    assert predicted.shape[0] == 50
