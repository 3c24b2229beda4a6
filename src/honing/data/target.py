"""What ``honing init`` reads from the label column: the task (:func:`infer_task`), unless the
user names it, and a binary target's positive class (:func:`positive_label`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from honing.data import MAX_CLASSES, class_labels
from honing.exceptions import DataValidationError

#: Label texts that name the event of interest (compared stripped and lower-cased).
POSITIVE_NAMES = {"yes", "y", "true", "t", "1", "positive", "pos", "bad", "default", "fraud"}
#: An integer label with at most this share of distinct values per row is a set of classes
#: (AutoGluon's rule is of the same kind: 5-10 %); a larger share is a quantity.
CLASS_SHARE = 0.05


def infer_task(y: pd.Series) -> tuple[str, str]:
    """``classification`` or ``regression`` for the label ``y``, and why: text, booleans and
    two values are classes; numbers with a fraction, or more distinct integers than
    :data:`~honing.data.MAX_CLASSES` or than :data:`CLASS_SHARE` of the rows, are a quantity."""
    values = y.dropna()
    distinct = int(values.nunique())
    if distinct <= 2 or not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
        return "classification", f"{distinct} label values"
    if not (values == values.round()).all():
        return "regression", f"numbers with fractions, {distinct} distinct values"
    if distinct > MAX_CLASSES or distinct > CLASS_SHARE * max(len(values), 1):
        return "regression", f"{distinct} distinct whole numbers in {len(values)} rows"
    return "classification", f"{distinct} distinct whole numbers in {len(values)} rows"


def plain(values: list[Any]) -> list[Any]:
    """``values`` as Python scalars, sorted by their text (YAML and JSON take them)."""
    return sorted((v.item() if hasattr(v, "item") else v for v in values), key=str)


def guess_positive(y: pd.Series, labels: list[Any]) -> Any:
    """The positive class of a binary target when the user named none: the label whose text
    says so ("Yes", " yes ", "True", 1 ...: spaces and case do not matter), else the rarer
    class (the event a model is usually built to find), else the second in sorted order."""
    named = [label for label in labels if str(label).strip().lower() in POSITIVE_NAMES]
    if len(named) == 1:
        return named[0]
    counts = y.value_counts()
    rare = [label for label in labels if counts.get(label, 0) == counts.min()]
    return rare[0] if len(rare) == 1 else labels[1]


def positive_label(df: pd.DataFrame, target: str, given: Any | None) -> Any:
    """The positive label of a binary target (``given`` by the user, else guessed); None for
    a multiclass one."""
    labels = plain(class_labels(df[target], given))
    if len(labels) > 2:
        return None
    if given is None:
        return guess_positive(df[target], labels)
    # a label typed on the command line is a string: match it by its text
    matches = [label for label in labels if str(label) == str(given)]
    if not matches:
        raise DataValidationError(
            f"column '{target}': positive label {given!r} is not among {labels}"
        )
    return matches[0]


def resolve_task(df: pd.DataFrame, target: str, task: str) -> tuple[str, str | None]:
    """The task ``honing init`` writes: ``task`` as given, or for ``auto`` the one
    :func:`infer_task` reads from the label column, with a line saying why."""
    if task != "auto":
        return task, None
    if target not in df.columns:
        raise DataValidationError(f"column '{target}': the label column is not in the table")
    inferred, why = infer_task(df[target])
    other = "regression" if inferred == "classification" else "classification"
    return inferred, f"{inferred}, read from '{target}' ({why}); --task {other} to change it"


def with_new_classes(classes: list[Any], labels: pd.Series) -> list[Any]:
    """``classes`` (a model's labels, in its order), then the labels of ``labels`` that are
    not among them, where the model has three classes or more: a batch scored over every
    class it holds, a class the model never learned included (it answers 0 there). A
    binary model's classes are returned as they are (a third class is not its task)."""
    if len(classes) <= 2:
        return list(classes)
    new = set(labels.dropna()) - set(classes)
    return [*classes, *sorted(new, key=str)]
