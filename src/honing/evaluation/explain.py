"""Explainability: permutation importance of the raw input columns (any model), and SHAP
values of the encoded features when the ``shap`` package is installed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from honing.metrics import scorer


@dataclass(frozen=True)
class Importance:
    method: str
    features: list[str]
    mean: list[float]
    std: list[float]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def top(self, n: int) -> list[tuple[str, float]]:
        order = np.argsort(self.mean)[::-1][:n]
        return [(self.features[i], self.mean[i]) for i in order]


def permutation_importances(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    metric: str,
    seed: int,
    n_repeats: int = 5,
) -> Importance:
    """Drop of ``metric`` on (X, y) when one input column is shuffled, per column: the whole
    pipeline is scored, so it is computed for every family and ensemble alike."""
    from sklearn.inspection import permutation_importance

    res = permutation_importance(
        model, X, y, scoring=scorer(metric), n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    return Importance(
        "permutation",
        [str(c) for c in X.columns],
        [float(v) for v in res.importances_mean],
        [float(v) for v in res.importances_std],
        f"drop of test {metric} when the column is shuffled ({n_repeats} repeats)",
    )


def shap_importances(model: Any, X: pd.DataFrame, *, seed: int, rows: int = 100) -> Importance:
    """Mean |SHAP value| of the positive-class probability (the prediction, for regression)
    per encoded feature. Linear models get shap's exact linear values (of the log-odds, for
    a classifier), models that shap's TreeExplainer supports (every tree family, and any new
    one it knows) exact tree values, others the permutation explainer against a background
    sample. Raises ImportError when shap is not installed, and ValueError for
    ensembles."""
    import shap
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise ValueError("SHAP needs a features + estimator pipeline (not an ensemble)")
    pre, estimator = Pipeline(model.steps[:-1]), model.steps[-1][1]
    sample = X.sample(n=min(rows, len(X)), random_state=seed)
    Z = np.asarray(pre.transform(sample), dtype=np.float64)
    try:
        names = [str(n) for n in pre.get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [f"x{i}" for i in range(Z.shape[1])]
    explained = "P(class 1)" if is_classifier(estimator) else "the prediction"
    background = Z[: min(50, len(Z))]
    values = None
    if hasattr(estimator, "coef_"):  # exact, and instant: no permutations, no numba compile
        values = shap.LinearExplainer(estimator, shap.maskers.Independent(background))(Z).values
        method = "shap_linear"
        explained = "the log-odds of class 1" if is_classifier(estimator) else explained
    else:
        try:  # SHAP's exact tree explainer wherever shap supports the model (any tree family)
            values = shap.TreeExplainer(estimator).shap_values(Z)
            method = "shap_tree"
        except Exception:  # noqa: BLE001 - shap says the model is not a tree model it knows
            values = None
    if values is None:

        def f(data: np.ndarray) -> np.ndarray:
            if not is_classifier(estimator):
                return np.asarray(estimator.predict(data.astype(np.float32)))
            proba = np.asarray(estimator.predict_proba(data.astype(np.float32)))
            return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)

        explainer = shap.explainers.Permutation(f, shap.maskers.Independent(background), seed=seed)
        values = explainer(Z, silent=True).values  # no progress bar on the screen
        method = "shap_permutation"
    values = np.asarray(values)
    if values.ndim == 3:  # (rows, features, classes): the positive class, or all classes
        values = values[..., 1] if values.shape[2] == 2 else np.abs(values).mean(axis=2)
    mean = np.abs(values).mean(axis=0)
    return Importance(
        method,
        names,
        [float(v) for v in mean],
        [float(v) for v in np.abs(values).std(axis=0)],
        f"mean |SHAP| of {explained} over {len(Z)} test rows, encoded features",
    )


def plot_importance(imp: Importance, top: int = 20) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(imp.mean)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.5))
    ax.barh(
        [imp.features[i] for i in order],
        [imp.mean[i] for i in order],
        xerr=[imp.std[i] for i in order] if imp.method == "permutation" else None,
    )
    ax.set_title(f"{imp.method} importance")
    ax.set_xlabel(imp.note)
    fig.tight_layout()
    return fig


def explain_model(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    metric: str,
    seed: int,
    repeats: int = 5,
    shap_rows: int = 100,
) -> tuple[list[Importance], list[str]]:
    """Permutation importance (``repeats`` shuffles per column), plus SHAP on ``shap_rows``
    rows when installed and applicable; the notes say why SHAP was skipped."""
    results, notes = [], []
    if repeats > 0:
        results.append(
            permutation_importances(model, X, y, metric=metric, seed=seed, n_repeats=repeats)
        )
    else:
        notes.append("permutation importance skipped: no time left in the budget")
    if shap_rows <= 0:
        return results, [*notes, "SHAP skipped: no time left in the budget"]
    try:
        results.append(shap_importances(model, X, seed=seed, rows=shap_rows))
    except ImportError:
        notes.append("SHAP skipped: the shap package is not installed")
    except ValueError as exc:
        notes.append(f"SHAP skipped: {exc}")
    return results, notes
