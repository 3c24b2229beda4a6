"""Compression candidates of models trained on the demo data: every artifact reloads to the
same predictions, and each technique does what it claims."""

import json

import numpy as np
import pytest

from honing import compression as C
from honing.config import FeaturesConfig
from honing.data import clean, split_data
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def churn_split(churn_df):
    df, _ = clean(churn_df, "churn")
    split, classes = split_data(
        df,
        "churn",
        positive_label="Yes",
        drop_columns=[],
        test_size=0.2,
        seed=42,
        task="classification",
    )
    return split, classes, infer_columns(split.X_train, FeaturesConfig())


def _fit(split, cols, family, params):
    return train_model(
        split.X_train,
        split.y_train,
        ModelSpec(family, params),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    ).model


def _build(model, split, cols, **options):
    return C.build_candidates(
        model,
        split.X_train,
        split.y_train,
        numeric=cols.numeric,
        categorical=cols.categorical,
        options=C.CompressionOptions(student_epochs=10, **options),
    )


def test_mlp_candidates(churn_split, tmp_path):
    split, classes, cols = churn_split
    model = _fit(split, cols, "mlp", {"width": 64, "hidden_layers": 2, "max_epochs": 15})
    candidates, skipped = _build(model, split, cols, fine_tune_epochs=3)
    by = {c.name: c for c in candidates}
    assert set(by) == {
        "native",
        "fp32",
        "onnx",
        "onnx_int8",
        "onnx_int8_static",
        "pruned_unstructured",
        "pruned_structured",
        "int8",
        "distilled",
    }
    # the booster student is for tree models and votes: the MLP has its own student
    assert set(skipped) == {"distill_booster"} and "MLP" in skipped["distill_booster"]
    X = split.X_test.head(300)
    ref = model.predict_proba(X)
    # exact exports: same network, other runtimes
    np.testing.assert_allclose(by["fp32"].predictor.predict_proba(X), ref, atol=1e-5)
    np.testing.assert_allclose(by["onnx"].predictor.predict_proba(X), ref, atol=1e-4)
    # int8 stays close, and is much smaller than its fp32 graph
    assert np.abs(by["int8"].predictor.predict_proba(X) - ref).max() < 0.05
    assert np.abs(by["onnx_int8"].predictor.predict_proba(X) - ref).max() < 0.05
    assert by["onnx_int8"].size_bytes < 0.7 * by["onnx"].size_bytes  # features stay fp32
    # static int8: calibrated activation ranges, QDQ nodes around the network's Gemms
    assert np.abs(by["onnx_int8_static"].predictor.predict_proba(X) - ref).max() < 0.05
    assert by["onnx_int8_static"].size_bytes < 0.75 * by["onnx"].size_bytes  # + QDQ scales
    assert "calibration rows" in by["onnx_int8_static"].note
    # structured pruning removed neurons; unstructured only zeroed weights
    assert by["pruned_structured"].n_parameters < 0.5 * by["fp32"].n_parameters
    assert by["pruned_unstructured"].n_parameters == by["fp32"].n_parameters
    assert by["distilled"].n_parameters < 0.1 * by["fp32"].n_parameters
    assert by["native"].servable  # skops, the network stored as arrays
    # every servable artifact reloads from its files to the same predictions
    for cand in candidates:
        if cand.servable:
            folder = C.write_served(cand.files, tmp_path / cand.name)
            again = C.load_served(C.read_served(folder))
            np.testing.assert_allclose(
                again.predict_proba(X), cand.predictor.predict_proba(X), atol=1e-6
            )


def test_sklearn_candidates_and_the_pick(churn_split):
    split, classes, cols = churn_split
    model = _fit(split, cols, "logistic_regression", {"C": 1.0})
    X = split.X_test.copy()
    X.loc[:20, "contract"] = np.nan  # missing values reach the ONNX graph as well
    X.loc[:20, "total_charges"] = np.nan
    candidates, skipped = _build(model, split, cols)
    by = {c.name: c for c in candidates}
    assert set(by) == {"native", "onnx", "distilled"}
    assert "MLP only" in skipped["int8"] and "MatMul" in skipped["onnx_int8"]
    assert "MatMul" in skipped["onnx_int8_static"]
    np.testing.assert_allclose(
        by["onnx"].predictor.predict_proba(X), model.predict_proba(X), atol=1e-5
    )
    result = C.compress(
        model,
        split.X_train,
        split.y_train,
        split.X_test,
        split.y_test,
        classes,
        numeric=cols.numeric,
        categorical=cols.categorical,
        options=C.CompressionOptions(student_epochs=10),
        metric="accuracy",
        tolerance=0.005,
        latency_rows=30,
    )
    ref = result.report.row("native")
    chosen = result.report.row(result.choice.name)
    assert chosen.metrics["accuracy"] >= ref.metrics["accuracy"] - 0.005
    assert chosen.servable
    manifest = json.loads(result.files[C.MANIFEST])
    assert manifest["classes"] == ["No", "Yes"] and manifest["candidate"] == result.choice.name
    assert set(result.report.table()) >= {"size_ratio", "p50_ms", "p99_ms", "throughput_rows_s"}


def test_native_and_served_flavors_answer_alike_under_the_rule(churn_split):
    """The output contract: the native pipeline and its ONNX graph, each with the model's
    decision rule in its manifest, give the same columns, labels and threshold."""
    from honing.compression.predictors import load_decided
    from honing.modeling.decision import DecisionRule

    split, classes, cols = churn_split
    model = _fit(split, cols, "random_forest", {"n_estimators": 40, "max_depth": 6})
    candidates, _ = _build(model, split, cols, techniques=("onnx",))
    rule = DecisionRule(list(classes), 0.3, "f1", "sigmoid", [1.2, -0.4])
    answers = {
        c.name: load_decided(C.with_rule(c.files, c.name, rule)).outputs(split.X_test)
        for c in candidates
        if c.name in ("native", "onnx")
    }
    native, onnx = answers["native"], answers["onnx"]
    assert list(native.columns) == list(onnx.columns) == [
        "prediction", "probability", "probability_No", "probability_Yes", "threshold"
    ]  # fmt: skip
    assert set(native["prediction"]) <= {"No", "Yes"}
    assert (native["threshold"] == 0.3).all() and (onnx["threshold"] == 0.3).all()
    np.testing.assert_allclose(native["probability"], onnx["probability"], atol=1e-4)
    assert (native["prediction"] == onnx["prediction"]).mean() > 0.999
    # the answers do not depend on the order of the rows in a batch
    order = np.random.default_rng(0).permutation(len(split.X_test))
    for name in ("native", "onnx"):
        files = C.with_rule(next(c for c in candidates if c.name == name).files, name, rule)
        shuffled = load_decided(files).outputs(split.X_test.iloc[order])
        np.testing.assert_array_equal(
            shuffled["probability"].to_numpy(), answers[name]["probability"].to_numpy()[order]
        )


@pytest.mark.parametrize("family", ["lightgbm", "mlp"])
def test_column_names_with_spaces_dots_and_accents_compress_and_serve(churn_df, family):
    """Names ONNX would sanitize (spaces, dots, slashes, non-ASCII) reach every candidate:
    the graph is fed by position, so the served files answer the user's own frame."""
    from honing.compression.predictors import load_decided
    from honing.modeling.decision import DecisionRule

    renamed = churn_df.rename(
        columns={
            "monthly_charges": "monthly charges",
            "tenure": "tenure.1",
            "contract": "Vertrag/Größe",
            "payment_method": "pay-ment méthode",
        }
    )
    df, _ = clean(renamed, "churn")
    split, classes = split_data(
        df, "churn", positive_label="Yes", drop_columns=[], test_size=0.2, seed=0,
        task="classification",
    )  # fmt: skip
    cols = infer_columns(split.X_train, FeaturesConfig())
    params = {"n_estimators": 40} if family == "lightgbm" else {"width": 16, "max_epochs": 3}
    model = _fit(split, cols, family, params)
    result = C.compress(
        model, split.X_train, split.y_train, split.X_test, split.y_test, classes,
        numeric=cols.numeric, categorical=cols.text,
        options=C.CompressionOptions(student_epochs=3, fine_tune_epochs=1),
        metric="accuracy", tolerance=0.01, rule=DecisionRule.argmax(classes), latency_rows=5,
    )  # fmt: skip
    assert "onnx" in [r.name for r in result.report.rows]
    served = load_decided(result.files).outputs(split.X_test.head(20))
    assert len(served) == 20 and set(served["prediction"]) <= {"No", "Yes"}
