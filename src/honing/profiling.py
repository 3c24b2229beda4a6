"""``honing init``: profile a new table into a pipeline config and an expectation suite.

The generated suite is a starting point written from the data as it is now: column set, dtypes,
nulls, numeric ranges (widened by a margin), category sets, row count and label values. Review
it, then commit it next to the config.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from honing.exceptions import DataValidationError

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float32", "float64", "Float64"]
TEXT_TYPES = ["object", "str", "string", "category"]
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "logistic_regression": {
        "C": {"loguniform": [0.001, 100.0]},
        "penalty": {"choice": ["l1", "l2"]},
        "class_weight": {"choice": [None, "balanced"]},
    },
    "random_forest": {
        "n_estimators": {"randint": [100, 400]},
        "max_depth": {"choice": [4, 8, 12, None]},
        "min_samples_leaf": {"randint": [1, 20]},
        "max_features": {"choice": ["sqrt", 0.5]},
    },
    "hist_gradient_boosting": {
        "learning_rate": {"loguniform": [0.02, 0.3]},
        "max_leaf_nodes": {"randint": [8, 64]},
        "l2_regularization": {"loguniform": [0.0001, 10.0]},
        "max_iter": {"randint": [100, 400]},
    },
}


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}, "severity": "critical"}


def _range(series: pd.Series, margin: float) -> tuple[float, float]:
    lo, hi = float(series.min()), float(series.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    low, high = lo - margin * span, hi + margin * span
    if lo >= 0:
        low = max(0.0, low)
    if pd.api.types.is_integer_dtype(series):
        return math.floor(low), math.ceil(high)
    return round(low, 6), round(high, 6)


def _plain(values: list[Any]) -> list[Any]:
    out = []
    for v in values:
        out.append(v.item() if hasattr(v, "item") else v)
    return sorted(out, key=str)


def profile_suite(
    df: pd.DataFrame,
    *,
    name: str,
    target: str,
    max_categories: int = 50,
    range_margin: float = 0.1,
    task: str = "classification",
) -> dict[str, Any]:
    """Build an expectation suite (GX JSON form) describing ``df`` as it is (a regression
    target gets a numeric range, a classification label its value set)."""
    if target not in df.columns:
        raise DataValidationError(
            f"target column '{target}' is not in the data (columns: {list(df.columns)})"
        )
    exps: list[dict[str, Any]] = [
        _expect("expect_table_columns_to_match_set", column_set=list(df.columns), exact_match=True),
        _expect(
            "expect_table_row_count_to_be_between", min_value=max(1, len(df) // 2), max_value=None
        ),
    ]
    for col in df.columns:
        s = df[col]
        nulls = float(s.isna().mean())
        if col == target or nulls == 0.0:
            exps.append(_expect("expect_column_values_to_not_be_null", column=col))
        else:
            mostly = max(0.0, round(1.0 - 2 * nulls - 0.01, 4))
            exps.append(_expect("expect_column_values_to_not_be_null", column=col, mostly=mostly))
        non_null = s.dropna()
        if pd.api.types.is_bool_dtype(s):
            exps.append(
                _expect("expect_column_values_to_be_in_set", column=col, value_set=[False, True])
            )
        elif pd.api.types.is_numeric_dtype(s):
            exps.append(
                _expect(
                    "expect_column_values_to_be_in_type_list", column=col, type_list=NUMERIC_TYPES
                )
            )
            uniques = non_null.unique()
            is_label = col == target and task == "classification"
            if is_label or (
                col != target and len(uniques) <= 2 and pd.api.types.is_integer_dtype(s)
            ):
                exps.append(
                    _expect(
                        "expect_column_values_to_be_in_set",
                        column=col,
                        value_set=_plain(list(uniques)),
                    )
                )
            elif len(non_null):
                lo, hi = _range(non_null, range_margin)
                exps.append(
                    _expect(
                        "expect_column_values_to_be_between", column=col, min_value=lo, max_value=hi
                    )
                )
        else:
            exps.append(
                _expect("expect_column_values_to_be_in_type_list", column=col, type_list=TEXT_TYPES)
            )
            uniques = non_null.unique()
            if col == target or len(uniques) <= max_categories:
                exps.append(
                    _expect(
                        "expect_column_values_to_be_in_set",
                        column=col,
                        value_set=_plain(list(uniques)),
                    )
                )
    return {"name": name, "expectations": exps, "meta": {"generated_by": "honing init"}}


def profile_config(
    df: pd.DataFrame,
    *,
    name: str,
    data_path: Path,
    suite_path: Path,
    target: str,
    positive_label: Any | None = None,
    drop_columns: list[str] | None = None,
    task: str = "classification",
) -> dict[str, Any]:
    """A pipeline config (as a plain mapping, ready to dump as YAML) for a newly profiled table."""
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(df[target]):
            raise DataValidationError(
                f"column '{target}': regression needs a numeric target, found {df[target].dtype}"
            )
        return _regression_config(name, data_path, suite_path, target, drop_columns or [])
    labels = _plain(list(df[target].dropna().unique()))
    if len(labels) != 2:
        raise DataValidationError(
            f"column '{target}': honing init supports binary targets; found {len(labels)} "
            f"label values {labels[:10]}"
        )
    if positive_label is None:
        positive_label = labels[1]
    else:  # a label typed on the command line is a string: match it by its text
        matches = [label for label in labels if str(label) == str(positive_label)]
        if not matches:
            raise DataValidationError(
                f"column '{target}': positive label {positive_label!r} is not among {labels}"
            )
        positive_label = matches[0]
    return {
        "name": name,
        "task": "classification",
        "data": {
            "path": str(data_path),
            "target": target,
            "positive_label": positive_label,
            "drop_columns": list(drop_columns or []),
        },
        "validation": {"suite": str(suite_path)},
        "cleaning": {"deduplicate": True, "drop_invalid_labels": True},
        "split": {"test_size": 0.2, "seed": 42},
        "features": {"numeric_imputer": "median", "scaler": "standard"},
        "search": {
            "families": DEFAULT_SPACE,
            "trials_per_family": 4,
            "cv_folds": 5,
            "metric": "roc_auc",
            "seed": 42,
        },
        "evaluation": {"thresholds": {"roc_auc": 0.6}},
        "registry": {"model_name": f"honing-{name}", "metric": "roc_auc", "promotion_margin": 0.0},
        "tracking": {"experiment": f"honing-{name}"},
    }


REGRESSION_SPACE: dict[str, dict[str, Any]] = {
    "linear": {
        "alpha": {"loguniform": [0.0001, 100.0]},
        "penalty": {"choice": ["l1", "l2", "elasticnet"]},
        "l1_ratio": {"uniform": [0.1, 0.9]},
    },
    "random_forest": {
        "n_estimators": {"randint": [100, 300]},
        "min_samples_leaf": {"randint": [1, 20]},
        "max_features": {"choice": [1.0, 0.5]},
    },
    "hist_gradient_boosting": {
        "learning_rate": {"loguniform": [0.02, 0.3]},
        "max_leaf_nodes": {"randint": [8, 64]},
        "l2_regularization": {"loguniform": [0.0001, 10.0]},
        "max_iter": {"randint": [100, 400]},
    },
}


def _regression_config(
    name: str, data_path: Path, suite_path: Path, target: str, drop_columns: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "task": "regression",
        "data": {"path": str(data_path), "target": target, "drop_columns": list(drop_columns)},
        "validation": {"suite": str(suite_path)},
        "cleaning": {"deduplicate": True, "drop_invalid_labels": True},
        "split": {"test_size": 0.2, "seed": 42},
        "features": {"numeric_imputer": "median", "scaler": "standard"},
        "search": {
            "families": REGRESSION_SPACE,
            "trials_per_family": 4,
            "cv_folds": 5,
            "metric": "rmse",
            "seed": 42,
        },
        "evaluation": {"thresholds": {"r2": 0.0}},
        "registry": {"model_name": f"honing-{name}", "metric": "rmse", "promotion_margin": 0.0},
        "compression": {"metric": "r2"},
        "monitoring": {"metric": "rmse"},
        "tracking": {"experiment": f"honing-{name}"},
    }
