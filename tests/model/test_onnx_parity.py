"""ONNX parity for every family the search can choose (`honing.models.FAMILY_TABLE`), for each
task it builds (binary, three classes and regression, each with a target-encoded
high-cardinality column): the `onnx` candidate that compression serves answers like the
native pipeline on rows with missing values and categories, or the case is one of the known
converter gaps, and compression says why it has no graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from honing import compression as C
from honing.compression.student import exportable
from honing.config import FeaturesConfig
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model
from honing.models import FAMILY_TABLE
from tests.model.test_boosting_onnx import _frame

pytestmark = [pytest.mark.model, pytest.mark.slow]

#: Cases with no ONNX path, and why (docs/compression.md): none today. HistGradientBoosting
#: (which skl2onnx 1.20 cannot convert on scikit-learn 1.9) is written from its node arrays
#: (`honing.models.tree_graphs.convert_hgb`), the MLP's regressor by
#: `honing.models.converters.mlp_onnx`.
NO_GRAPH: set[tuple[str, int]] = set()
#: Small settings, so that every family fits in a second or two.
SMALL = {
    "random_forest": {"n_estimators": 20, "max_depth": 6},
    "extra_trees": {"n_estimators": 20, "max_depth": 6},
    "hist_gradient_boosting": {"max_iter": 20},
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
    "catboost": {"n_estimators": 30},
    "mlp": {"max_epochs": 3, "width": 16, "hidden_layers": 1},
}
CASES = [
    (name, classes)
    for name, family in FAMILY_TABLE.items()
    for task in sorted(family.builders)
    for classes in ((2, 3) if task == "classification" else (0,))
]


@pytest.mark.parametrize(("family", "classes"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_every_family_is_served_as_one_graph_that_answers_like_it(family, classes):
    task = "classification" if classes else "regression"
    X, y = _frame(600, classes)
    X_test, _ = _frame(200, classes, seed=1)
    cols = infer_columns(X, FeaturesConfig())
    setup = TrainingSetup(task, cols, FeaturesConfig(), 0, "roc_auc" if classes else "rmse", 3)
    model = make_model(ModelSpec(family, SMALL.get(family, {})), setup).fit(X, y)
    candidates, skipped = C.build_candidates(
        model, X, y, numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(techniques=("onnx",)),
    )  # fmt: skip
    graph = next((c for c in candidates if c.name == "onnx"), None)
    # the planner's static rule agrees with the converter (a model with none plans no export)
    assert exportable(model) == ((family, classes) not in NO_GRAPH)
    if (family, classes) in NO_GRAPH:
        assert graph is None and "cannot convert" in skipped["onnx"], skipped
        return
    assert graph is not None, skipped
    if classes:
        np.testing.assert_allclose(
            graph.predictor.predict_proba(X_test), model.predict_proba(X_test), atol=1e-4
        )
    else:
        np.testing.assert_allclose(
            graph.predictor.predict(X_test), model.predict(X_test), rtol=1e-3, atol=1e-3
        )


@pytest.mark.parametrize(("family", "classes"), [("lightgbm", 2), ("mlp", 3), ("xgboost", 0)])
def test_a_pipeline_with_dates_is_one_graph_fed_the_dates_parts(family, classes):
    """No ONNX operator parses a date: the graph takes each date column's parts as inputs,
    named in its metadata, and the served predictor expands the dates as the pipeline does
    (a blank date included). The MLP's merged graph takes them too."""
    task = "classification" if classes else "regression"
    X, y = _frame(500, classes)
    X_test, _ = _frame(200, classes, seed=1)
    for frame in (X, X_test):
        frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").astype(str)
        frame["seen"] = pd.date_range("2023-05-01 08:00", periods=len(frame), freq="5h")
        frame["seen"] = frame["seen"].astype(str)
    X_test.loc[X_test.index[3], "day"] = None
    y = y + (X["day"].str[5:7].astype(int).to_numpy() % 2 if not classes else 0)
    cols = infer_columns(X, FeaturesConfig())
    assert cols.dates == ["day", "seen"]
    setup = TrainingSetup(task, cols, FeaturesConfig(), 0, "roc_auc" if classes else "rmse", 3)
    model = make_model(ModelSpec(family, SMALL[family]), setup).fit(X, y)
    candidates, skipped = C.build_candidates(
        model, X, y, numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(techniques=("onnx",)),
    )  # fmt: skip
    assert exportable(model)
    graph = next((c for c in candidates if c.name == "onnx"), None)
    assert graph is not None, skipped
    served = C.load_served(graph.files)  # from its files, as a server loads it
    assert served.dates == ["day", "seen"]
    if classes:
        np.testing.assert_allclose(
            served.predict_proba(X_test), model.predict_proba(X_test), atol=1e-4
        )
    else:
        np.testing.assert_allclose(
            served.predict(X_test), model.predict(X_test), rtol=1e-3, atol=1e-3
        )
