"""Batch inference: check the input like training data (minus the label), then predict.

Models are loaded only from the MLflow Model Registry (``models:/name@alias`` or
``models:/name/version``) or from a local MLflow model folder the user names.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.exceptions import HoningError
from honing.validation import ValidationReport, validate

_TABLE_RULES_DROPPED = {"expect_table_row_count_to_be_between"}


def inference_suite(suite: dict[str, Any], target: str, drop_columns: list[str]) -> dict[str, Any]:
    """The training suite for unlabeled batches: no label or row-count expectations, and the
    column set without the label (identifier columns stay optional)."""
    out = copy.deepcopy(suite)
    kept = []
    for exp in out.get("expectations", []):
        kwargs = exp.get("kwargs", {})
        if exp["type"] in _TABLE_RULES_DROPPED or kwargs.get("column") == target:
            continue
        if exp["type"] == "expect_table_columns_to_match_set":
            # every feature must be there; the label and identifiers may be absent
            columns = [c for c in kwargs["column_set"] if c != target and c not in drop_columns]
            exp = {**exp, "kwargs": {**kwargs, "column_set": columns, "exact_match": False}}
        kept.append(exp)
    out["expectations"] = kept
    out["name"] = f"{suite.get('name', 'suite')}-inference"
    return out


def check_inference(
    df: pd.DataFrame, suite: dict[str, Any], *, target: str, drop_columns: list[str], source: str
) -> ValidationReport:
    """Validate an unlabeled batch; unseen categories, missing columns and wrong dtypes fail."""
    return validate(df, inference_suite(suite, target, drop_columns), source=source, rules=None)


def load_model(uri: str) -> Any:
    """A registered or local MLflow model: the scikit-learn pipeline, or the served
    (compressed) flavor. Anything else is refused."""
    import mlflow
    from mlflow.models import get_model_info

    if not (uri.startswith("models:/") or Path(uri).is_dir()):
        raise HoningError(
            f"model {uri!r}: rule: load only models:/<name>@<alias>, models:/<name>/<version> "
            "or a local MLflow model folder"
        )
    try:
        if "sklearn" in get_model_info(uri).flavors:
            return mlflow.sklearn.load_model(uri)
        # the served flavor: its predictor (ONNX session, dense network or pipeline)
        return mlflow.pyfunc.load_model(uri).unwrap_python_model().predictor_
    except Exception as exc:  # noqa: BLE001
        raise HoningError(f"model {uri!r} cannot be loaded: {exc}") from exc


def outputs(proba: np.ndarray, classes: list[Any]) -> pd.DataFrame:
    """The prediction columns of a classifier: the label in the user's own values and, for a
    binary task, ``probability`` (of the positive class); for a multiclass task,
    ``probability`` (of the predicted label) and one ``probability_<label>`` per class."""
    proba = np.asarray(proba, dtype=np.float64)
    if len(classes) == 2:
        return pd.DataFrame(
            {
                "prediction": np.where(proba[:, 1] >= 0.5, classes[1], classes[0]),
                "probability": proba[:, 1],
            }
        )
    best = proba.argmax(axis=1)
    out = pd.DataFrame(
        {
            "prediction": np.asarray(classes, dtype=object)[best],
            "probability": proba[np.arange(len(proba)), best],
        }
    )
    for i, label in enumerate(classes):
        out[f"probability_{label}"] = proba[:, i]
    return out


def predict(model: Any, df: pd.DataFrame, classes: list[Any]) -> pd.DataFrame:
    """The batch with the prediction columns added (:func:`outputs`; ``classes`` = []:
    regression, one ``prediction`` column)."""
    if not classes:  # regression
        return df.assign(prediction=np.asarray(model.predict(df), dtype=np.float64))
    extra = outputs(model.predict_proba(df), classes)
    extra.index = df.index
    return pd.concat([df, extra], axis=1)


def label_classes(suite: dict[str, Any], target: str, positive_label: Any | None) -> list[Any]:
    """``[negative, positive]`` from the suite's value set of the label; the sorted labels
    of a multiclass target."""
    for exp in suite.get("expectations", []):
        kwargs = exp.get("kwargs", {})
        if exp["type"] == "expect_column_values_to_be_in_set" and kwargs.get("column") == target:
            values = sorted(kwargs["value_set"], key=str)
            if len(values) > 2:
                return values
            if len(values) == 2:
                positive = positive_label if positive_label in values else values[1]
                return [next(v for v in values if v != positive), positive]
    raise HoningError(
        f"suite {suite.get('name')!r} has no two-value set for label '{target}'; "
        "rule: the suite states the label values"
    )
