"""Explaining the chosen model: permutation importance and SHAP, and their plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from honing import explain
from honing_flows.tasks import compute_task


@compute_task
def explain_model(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    seed: int,
    repeats: int = 5,
    shap_rows: int = 100,
) -> tuple[list[explain.Importance], list[str]]:
    return explain.explain_model(
        model, X, y, metric=metric, seed=seed, repeats=repeats, shap_rows=shap_rows
    )


@compute_task
def plot_importance(imp: explain.Importance) -> Any:
    return explain.plot_importance(imp)
