"""The inputs a model never reads are cut from its served graph and from its request check:
the graph fed only the columns it keeps answers like the whole native pipeline, a column
it drops is one the native model truly ignores, and a model or step whose reads are not
known is served whole."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from honing.compression import MANIFEST, onnx_bytes
from honing.compression.inputs import cut_inputs, read_features
from honing.compression.predictors import OnnxPredictor, columns_read, load_decided
from honing.config import FeaturesConfig
from honing.data import clean, split_data
from honing.modeling.decision import Decided, DecisionRule
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model
from honing.serving import endpoint
from honing.serving.inference import check_inference, inference_suite

pytestmark = pytest.mark.model

SMALL = {"n_estimators": 8, "max_depth": 2}
#: A forest's trees pick features at random: fewer, shallower ones leave columns unread.
STUMPS = {"n_estimators": 3, "max_depth": 1}


def _frame(n: int = 900, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two informative columns (``a``, ``color``), a date, and columns of pure noise of every
    kind: numeric, low- and high-cardinality categorical."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
            "junk": rng.choice(["x", "y", "z"], n),
            "shop": rng.choice([f"s{i}" for i in range(40)], n),
            "when": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
        }
    )
    X.loc[::11, "a"] = np.nan
    X.loc[::13, "color"] = np.nan
    z = X["a"].fillna(0) + (X["color"] == "red") * 1.5 + rng.normal(scale=0.5, size=n)
    return X, z


def _fit(family: str, classes: int, features: FeaturesConfig | None = None):
    X, z = _frame()
    features = features or FeaturesConfig()
    cols = infer_columns(X, features)
    if classes == 0:
        setup = TrainingSetup("regression", cols, features, 0, "rmse", 5)
        y = z.to_numpy()
    else:
        setup = TrainingSetup("classification", cols, features, 0, "roc_auc", 5)
        y = np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))
    if family in ("soft_voting", "stacking"):
        members = [{"family": f, "params": SMALL} for f in ("lightgbm", "xgboost")]
        weights = {"weights": [0.3, 0.7]} if family == "soft_voting" else {}
        spec = ModelSpec(family, {"members": members, **weights})
    else:
        params = {"random_forest": STUMPS, "extra_trees": STUMPS, "svm": {}, "knn": {},
                  "hist_gradient_boosting": {"max_iter": 8, "max_depth": 2}}  # fmt: skip
        spec = ModelSpec(family, params.get(family, SMALL))
    return make_model(spec, setup).fit(X, y), X, cols


def _answers(model, X: pd.DataFrame, classes: int) -> np.ndarray:
    return model.predict(X) if classes == 0 else model.predict_proba(X)


def _scrambled(X: pd.DataFrame, columns: list[str], seed: int = 1) -> pd.DataFrame:
    """``X`` with ``columns`` shuffled and a third of them missing."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    for c in columns:
        out[c] = out[c].sample(frac=1.0, random_state=seed).to_numpy()
        out.loc[rng.random(len(out)) < 0.3, c] = np.nan
    return out


CASES = [
    ("lightgbm", 2), ("lightgbm", 3), ("lightgbm", 0),
    ("xgboost", 2), ("xgboost", 3), ("xgboost", 0),
    ("catboost", 2), ("catboost", 3),
    ("random_forest", 2), ("extra_trees", 3),
    ("hist_gradient_boosting", 2), ("hist_gradient_boosting", 0),
    ("soft_voting", 2), ("soft_voting", 3), ("stacking", 2), ("stacking", 0),
]  # fmt: skip


@pytest.mark.parametrize(("family", "classes"), CASES)
def test_the_graph_reads_only_the_columns_the_model_reads(family, classes):
    model, X, cols = _fit(family, classes)
    whole = onnx_bytes(model, cols.numeric, cols.text)
    data = onnx_bytes(model, cols.numeric, cols.text, rows=X)
    served = OnnxPredictor(data, cols.numeric, cols.text, regression=classes == 0)
    assert served.dropped, "shallow trees on two informative columns leave some unread"
    assert set(served.columns) | set(served.dropped) == set(cols.all)
    assert len(served.inputs) < len(OnnxPredictor(whole, cols.numeric, cols.text).inputs)
    # the native pipeline truly ignores what was dropped: scrambling it changes nothing
    native = _answers(model, X, classes)
    np.testing.assert_array_equal(_answers(model, _scrambled(X, served.dropped), classes), native)
    # the graph, fed a request without those columns, answers like the whole pipeline
    request = X[served.columns]
    out = served.predict(request) if classes == 0 else served.predict_proba(request)
    np.testing.assert_allclose(out, native, rtol=1e-4, atol=1e-4)


def test_rows_the_check_never_saw_answer_alike():
    """The kept columns are encoded exactly as before, unseen categories and missing values
    included: the encoders' state is sliced, not fitted again."""
    model, X, cols = _fit("lightgbm", 3)
    data = onnx_bytes(model, cols.numeric, cols.text, rows=X.head(100))
    served = OnnxPredictor(data, cols.numeric, cols.text)
    new, _ = _frame(n=300, seed=7)
    new.loc[::3, "color"] = "purple"  # unseen
    new.loc[::5, "a"] = np.nan
    new.loc[::4, "shop"] = "never-seen-shop"
    np.testing.assert_allclose(
        served.predict_proba(new[served.columns]), model.predict_proba(new), atol=1e-5
    )


def test_a_selection_step_is_traced_back_to_the_raw_columns():
    features = FeaturesConfig(selection="mutual_info", selection_fraction=0.3)
    model, X, cols = _fit("lightgbm", 2, features)
    cut = cut_inputs(model, cols.numeric, cols.text, X)
    assert cut is not None and "b" in cut.dropped
    np.testing.assert_array_equal(
        cut.pipeline.predict_proba(X[cut.numeric + cut.categorical]), model.predict_proba(X)
    )


def test_models_whose_reads_are_not_known_are_served_whole():
    for family in ("svm", "knn"):
        model, X, cols = _fit(family, 2)
        assert read_features(model.steps[-1][1]) is None
        assert cut_inputs(model, cols.numeric, cols.text, X) is None
        data = onnx_bytes(model, cols.numeric, cols.text, rows=X)
        assert OnnxPredictor(data, cols.numeric, cols.text).dropped == []


def test_a_sparse_linear_model_reads_its_non_zero_coefficients():
    X, z = _frame()
    num = X[["a", "b", "noise"]].fillna(0).to_numpy()
    model = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=0.05).fit(num, z > 0)
    assert 0 in read_features(model) and len(read_features(model)) < 3


def test_a_step_whose_state_is_not_per_column_is_refused():
    """A projection inside an encoder's group mixes its columns: cutting one out cannot
    be done by slicing, so the pipeline is served whole."""
    X, z = _frame()
    encoder = ColumnTransformer(
        [
            ("mixed", Pipeline([("impute", SimpleImputer()), ("pca", PCA(2))]), ["a", "b"]),
            ("numeric", SimpleImputer(), ["noise"]),
        ]  # fmt: skip
    )
    model = Pipeline([("features", encoder), ("model", DecisionTreeClassifier(max_depth=1))])
    model.fit(X, z > 0)
    assert len(read_features(model.steps[-1][1])) == 1  # one of three inputs is read
    assert cut_inputs(model, ["a", "b", "noise"], [], X) is None


@pytest.fixture(scope="module")
def churn_graph(churn_df):
    """A shallow LightGBM on the demo data, and its graph cut to the columns it reads."""
    df, _ = clean(churn_df, "churn")
    split, classes = split_data(
        df, "churn", positive_label="Yes", drop_columns=[], test_size=0.2, seed=0,
        task="classification",
    )  # fmt: skip
    cols = infer_columns(split.X_train, FeaturesConfig())
    setup = TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 5)
    model = make_model(ModelSpec("lightgbm", SMALL), setup).fit(split.X_train, split.y_train)
    data = onnx_bytes(model, cols.numeric, cols.text, rows=split.X_train)
    return split, classes, cols, model, data


def test_the_request_check_asks_only_for_the_columns_read(churn_graph, churn_suite):
    split, classes, cols, model, data = churn_graph
    served = OnnxPredictor(data, cols.numeric, cols.text)
    assert served.dropped
    manifest = {"format": "onnx", "numeric": served.numeric, "categorical": served.categorical,
                "task": "classification", "classes": list(classes)}  # fmt: skip
    loaded = load_decided({MANIFEST: json.dumps(manifest).encode(), "model.onnx": data})
    assert sorted(columns_read(loaded)) == sorted(served.columns)

    bundle = endpoint.served(
        loaded, churn_suite, target="churn", drop_columns=[], uri="m", version="1"
    )
    assert sorted(endpoint.required_columns(bundle.suite)) == sorted(served.columns)
    ruled = {e["kwargs"].get("column") for e in bundle.suite["expectations"]} - {None}
    assert ruled <= set(served.columns)
    # a request without the unread columns passes the check, and is answered alike
    request = split.X_test[served.columns].head(40)
    report = check_inference(
        request, churn_suite, target="churn", drop_columns=[], source="r",
        read=columns_read(loaded),
    )  # fmt: skip
    assert report.success, report
    np.testing.assert_allclose(
        loaded.predict_proba(request),
        Decided(model, DecisionRule.argmax(list(classes))).predict_proba(split.X_test.head(40)),
        atol=1e-5,
    )
    # ... while the whole model's check still asks for every feature
    whole = inference_suite(churn_suite, "churn", [])
    assert sorted(endpoint.required_columns(whole)) == sorted(cols.all)
    refused = check_inference(request, churn_suite, target="churn", drop_columns=[], source="r")
    assert not refused.success


def test_the_endpoint_serves_requests_without_the_unread_columns(churn_graph, churn_suite):
    """The FastAPI app itself (in process): a request without the columns the served graph
    does not read is answered like the whole model; one without a column it reads is refused
    with that column named; ``/metadata`` lists the columns a request must carry."""
    from fastapi.testclient import TestClient

    split, classes, cols, model, data = churn_graph
    graph = OnnxPredictor(data, cols.numeric, cols.text)
    rule = DecisionRule(list(classes), 0.35, "f1")
    manifest = {"format": "onnx", "numeric": graph.numeric, "categorical": graph.categorical,
                "task": "classification", "decision": rule.to_dict()}  # fmt: skip
    loaded = load_decided({MANIFEST: json.dumps(manifest).encode(), "model.onnx": data})
    bundle = endpoint.served(
        loaded, churn_suite, target="churn", drop_columns=[], uri="m", version="1"
    )
    rows = split.X_test.head(6)
    with TestClient(endpoint.build_app(bundle)) as client:
        assert sorted(client.get("/metadata").json()["columns"]) == sorted(graph.columns)
        short = rows[graph.columns].to_dict("records")
        ok = client.post("/invocations", json={"dataframe_records": short})
        assert ok.status_code == 200, ok.text
        whole = Decided(model, rule).outputs(rows)
        probabilities = [a["probability_Yes"] for a in ok.json()["predictions"]]
        np.testing.assert_allclose(probabilities, whole["probability_Yes"], atol=1e-5)
        # an unread column may carry anything: the model never looks at it
        noisy = rows.assign(**{graph.dropped[0]: "anything"}).to_dict("records")
        assert client.post("/invocations", json={"dataframe_records": noisy}).status_code == 200
        lacking = rows[graph.columns[1:]].to_dict("records")
        refused = client.post("/invocations", json={"dataframe_records": lacking})
        assert refused.status_code == 422 and graph.columns[0] in refused.text
