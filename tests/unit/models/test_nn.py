"""The PyTorch MLP keeps scikit-learn's estimator contract and learns."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score

from honing.config import FeaturesConfig
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, train_model
from honing.models.nn import OPTIMIZERS, TorchMLPClassifier


def _xy(n=600, seed=0):
    X, y = make_classification(n_samples=n, n_features=8, n_informative=5, random_state=seed)
    return X.astype(np.float32), y


def test_fit_returns_self_and_sets_learned_attributes():
    X, y = _xy()
    est = TorchMLPClassifier(max_epochs=5, random_state=0)
    assert not hasattr(est, "model_")
    assert est.fit(X, y) is est
    assert list(est.classes_) == [0, 1] and est.n_features_in_ == 8
    assert est.n_epochs_ == len(est.loss_curve_) <= 5
    proba = est.predict_proba(X)
    assert proba.shape == (600, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert clone(est).get_params() == est.get_params()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(optimizer):
    X, y = _xy()
    lr = 0.05 if optimizer in ("sgd", "nesterov", "adagrad") else 0.005
    est = TorchMLPClassifier(
        optimizer=optimizer, learning_rate=lr, max_epochs=30, random_state=0
    ).fit(X[:450], y[:450])
    assert roc_auc_score(y[450:], est.predict_proba(X[450:])[:, 1]) > 0.85


def test_early_stopping_and_regularization_options():
    X, y = _xy()
    est = TorchMLPClassifier(
        max_epochs=200,
        patience=3,
        dropout=0.3,
        batch_norm=True,
        weight_decay=1e-3,
        lr_schedule="cosine",
        activation="gelu",
        random_state=0,
    ).fit(X, y)
    assert est.n_epochs_ < 200  # stopped on the validation loss
    assert len(est.validation_curve_) == est.n_epochs_
    with pytest.raises(ValueError, match="optimizer"):
        TorchMLPClassifier(optimizer="lbfgs").fit(X, y)


def test_deterministic_with_a_seed_and_string_labels():
    X, y = _xy(300)
    labels = np.where(y == 1, "yes", "no")
    a = TorchMLPClassifier(max_epochs=5, random_state=3).fit(X, labels)
    b = TorchMLPClassifier(max_epochs=5, random_state=3).fit(X, labels)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))
    assert set(a.predict(X)) <= {"no", "yes"}


def test_mlp_is_a_model_family_in_the_pipeline():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], size=400)})
    y = ((df["x"] + (df["c"] == "a")) > 0.5).astype(int).to_numpy()
    result = train_model(
        df,
        y,
        ModelSpec("mlp", {"width": 16, "max_epochs": 20}),
        TrainingSetup(
            "classification",
            infer_columns(df, FeaturesConfig()),
            FeaturesConfig(),
            seed=0,
            metric="roc_auc",
            folds=3,
        ),
        cross_validate=True,
    )
    assert result.cv.mean > 0.8
    assert cross_val_score(TorchMLPClassifier(max_epochs=5), *_xy(200), cv=2).shape == (2,)
