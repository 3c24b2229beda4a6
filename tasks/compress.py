"""Compression task: candidates from the refit model, measured, and the pick."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from honing import compression
from honing.config import CompressionConfig
from honing.decision import DecisionRule
from honing.features import FeatureColumns
from honing_flows.tasks import compute_task


@compute_task
def compress(
    model: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    classes: list,
    columns: FeatureColumns,
    cfg: CompressionConfig,
    seed: int,
    rule: DecisionRule,
) -> compression.CompressionResult:
    return compression.compress(
        model,
        X_train,
        y_train,
        X_test,
        y_test,
        classes,
        numeric=columns.numeric,
        categorical=columns.text,
        options=compression.options_from_config(cfg, seed=seed),
        metric=cfg.metric,
        tolerance=cfg.tolerance,
        rule=rule,
        prefer=cfg.prefer,
        latency_rows=cfg.latency_rows,
    )


@compute_task
def plot_tradeoff(report: compression.CompressionReport) -> Any:
    return compression.plot_tradeoff(report)
