"""Behavioural checks of a model trained on the demo data (Made With ML's model tests)."""

import numpy as np
import pytest

from honing.config import FeaturesConfig
from honing.data import clean, split_data
from honing.evaluation import evaluate
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def trained(churn_df):
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
    cols = infer_columns(split.X_train, FeaturesConfig())
    result = train_model(
        split.X_train,
        split.y_train,
        ModelSpec("logistic_regression", {"C": 1.0}),
        TrainingSetup("classification", cols, FeaturesConfig(), seed=0, metric="roc_auc", folds=5),
    )
    return result.model, split, classes


def test_quality_on_held_out_data(trained):
    model, split, classes = trained
    report = evaluate(model, split.X_test, split.y_test, classes)
    assert report.metrics["roc_auc"] > 0.82
    assert report.metrics["accuracy"] > 0.78
    assert report.classes == ["No", "Yes"]


def test_directional_long_contracts_churn_less(trained):
    model, split, _ = trained
    base = split.X_test.head(200)
    monthly = model.predict_proba(base.assign(contract="Month-to-month"))[:, 1]
    two_year = model.predict_proba(base.assign(contract="Two year"))[:, 1]
    assert (two_year < monthly).mean() > 0.95


def test_invariance_to_column_order(trained):
    # columns are selected by name, never by position: a batch whose columns come in another
    # order (a different export, a SELECT *) gets the same answers
    model, split, _ = trained
    X = split.X_test.head(100)
    reordered = X[list(reversed(X.columns))]
    assert list(reordered.columns) != list(X.columns)
    np.testing.assert_allclose(model.predict_proba(reordered), model.predict_proba(X))


def test_handles_missing_and_unseen_values(trained):
    model, split, _ = trained
    X = split.X_test.head(3).copy()
    X.loc[X.index[0], "total_charges"] = np.nan
    X.loc[X.index[1], "payment_method"] = "Crypto"
    proba = model.predict_proba(X)[:, 1]
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()
