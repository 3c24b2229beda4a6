"""Batch inference: check the input like training data (minus the label), then predict.

Models are loaded only from the MLflow Model Registry (``models:/name@alias`` or
``models:/name/version``) or from a local MLflow model folder the user names.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd

from honing.exceptions import DataValidationError, HoningError
from honing.modeling.decision import Decided, DecisionRule
from honing.validation import ValidationReport, validate

_TABLE_RULES_DROPPED = {"expect_table_row_count_to_be_between"}


def inference_suite(
    suite: dict[str, Any],
    target: str,
    drop_columns: list[str],
    read: list[str] | None = None,
) -> dict[str, Any]:
    """The training suite for unlabeled batches: no label or row-count expectations, and the
    column set without the label (identifier columns stay optional). Given the columns a
    model ``read``s (a served graph whose unused inputs were cut), only those must be there,
    and only their rules are checked: the model never looks at the others."""
    out = copy.deepcopy(suite)
    kept = []
    for exp in out.get("expectations", []):
        kwargs = exp.get("kwargs", {})
        if exp["type"] in _TABLE_RULES_DROPPED or kwargs.get("column") == target:
            continue
        if read is not None and "column" in kwargs and kwargs["column"] not in read:
            continue
        if exp["type"] == "expect_table_columns_to_match_set":
            # every feature must be there; the label and identifiers may be absent
            columns = [c for c in kwargs["column_set"] if c != target and c not in drop_columns]
            columns = columns if read is None else [c for c in columns if c in read]
            exp = {**exp, "kwargs": {**kwargs, "column_set": columns, "exact_match": False}}
        kept.append(exp)
    out["expectations"] = kept
    out["name"] = f"{suite.get('name', 'suite')}-inference"
    return out


def check_inference(
    df: pd.DataFrame,
    suite: dict[str, Any],
    *,
    target: str,
    drop_columns: list[str],
    source: str,
    read: list[str] | None = None,
) -> ValidationReport:
    """Validate an unlabeled batch; unseen categories, missing columns and wrong dtypes fail
    (in the columns the model ``read``s, when it names them)."""
    rules = inference_suite(suite, target, drop_columns, read)
    return validate(df, rules, source=source, rules=None)


def predict(
    model: Any, df: pd.DataFrame, classes: list[Any], source: str = "the batch"
) -> pd.DataFrame:
    """The batch with the output contract's columns added
    (:meth:`honing.modeling.decision.DecisionRule.outputs`): a loaded model decides with its own
    rule;
    a bare estimator by argmax of ``classes`` (``classes`` = []: regression, ``prediction``).
    A batch column named like an output is refused: the file would hold it twice."""
    decided = model if isinstance(model, Decided) else Decided(model, DecisionRule.argmax(classes))
    extra = decided.outputs(df)
    clash = [c for c in extra.columns if c in df.columns]
    if clash:
        raise DataValidationError(
            f"{source}: column {clash[0]!r}: rule: a batch to score has no column named like "
            f"the model's outputs ({', '.join(map(str, extra.columns))}); rename or drop it"
        )
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
