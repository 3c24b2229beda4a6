"""Behavioural checks of a model trained on the demo data (Made With ML's model tests)."""

import numpy as np
import pandas as pd
import pytest

from honing.config import FeaturesConfig
from honing.data import clean, split_data
from honing.evaluation import evaluate
from honing.features import infer_columns
from honing.training import ModelSpec, TrainingSetup, train_model

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


def test_invariance_to_row_order(trained):
    model, split, _ = trained
    X = split.X_test.head(100)
    shuffled = X.sample(frac=1.0, random_state=0)
    p = pd.Series(model.predict_proba(X)[:, 1], index=X.index)
    q = pd.Series(model.predict_proba(shuffled)[:, 1], index=shuffled.index)
    np.testing.assert_allclose(p.sort_index(), q.sort_index())


def test_handles_missing_and_unseen_values(trained):
    model, split, _ = trained
    X = split.X_test.head(3).copy()
    X.loc[X.index[0], "total_charges"] = np.nan
    X.loc[X.index[1], "payment_method"] = "Crypto"
    proba = model.predict_proba(X)[:, 1]
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()
