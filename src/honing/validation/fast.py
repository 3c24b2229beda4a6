"""The expectation suite evaluated directly on a frame, for requests to the online endpoint.

Great Expectations builds a context and a batch for every call, which costs about a third
of a second: fine for a batch, not for a request. :func:`check_fast` evaluates the same
suite's expectations of the kinds honing's profiler writes (column set, not-null, type list,
value set, range, row count) with pandas, with Great Expectations' semantics (nulls are left
to the not-null rule, ``mostly`` is honoured), and reports failures in the same form. A suite
with any other kind of expectation is handed to Great Expectations whole. A parity test runs
both on good and broken frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from honing.validation.expectations import check_expectations
from honing.validation.report import ExpectationFailure, ValidationReport

Check = Callable[[pd.DataFrame, dict[str, Any]], str | None]


def _columns(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    expected, actual = set(kw["column_set"]), set(df.columns)
    exact = kw.get("exact_match", True) is not False
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or (exact and extra):
        return f"mismatched columns: {{'unexpected': {extra}, 'missing': {missing}}}"
    return None


def _row_count(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    low, high = kw.get("min_value"), kw.get("max_value")
    if (low is not None and len(df) < low) or (high is not None and len(df) > high):
        return f"observed {len(df)}; expected {{'min_value': {low}, 'max_value': {high}}}"
    return None


def _mapped(
    condition: Callable[[pd.Series], pd.Series],
) -> Check:
    """A column map expectation: ``condition`` on the non-null values, with ``mostly``."""

    def check(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
        column = df[kw["column"]]
        values = column[column.notna()]
        if values.empty:
            return None
        try:
            ok = np.asarray(condition(values), dtype=bool)
        except (TypeError, ValueError) as exc:
            return f"could not be evaluated: {exc}"
        bad = values[~ok]
        if len(bad) <= (1.0 - float(kw.get("mostly", 1.0))) * len(values):
            return None
        sample = ", ".join(dict.fromkeys(map(repr, bad.head(20).tolist())))
        return f"{len(bad)} unexpected ({100 * len(bad) / len(values):.2f}%), e.g. {sample}"

    return check


def _not_null(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    nulls = int(pd.isna(df[kw["column"]].to_numpy()).sum())  # no Series: cheap on a request
    allowed = (1.0 - float(kw.get("mostly", 1.0))) * len(df)
    if nulls > allowed:
        return f"{nulls} unexpected ({100 * nulls / max(len(df), 1):.2f}%), e.g. None"
    return None


#: Type names Great Expectations reads as Python's own types (its ``native_type_type_map``).
NATIVE = {"int": (int,), "long": (int,), "float": (float,), "bool": (bool,), "bytes": (bytes,),
          "str": (str,), "string_types": (str,), "none": (type(None),)}  # fmt: skip


def _value_types(names: list[str]) -> tuple[type, ...]:
    """The types Great Expectations accepts for values of an ``object`` column."""
    found: list[type] = []
    for name in names:
        try:
            found.append(np.dtype(name).type)
        except TypeError:
            for home in (pd, pd.core.dtypes.dtypes):
                kind = getattr(home, name, None)
                if isinstance(kind, type):
                    found.append(kind)
        found.extend(NATIVE.get(name.lower(), ()))
    return tuple(found)


def _type_list(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    dtype = str(df[kw["column"]].dtype)
    types = kw.get("type_list")
    if types is None or dtype in types:
        return None
    if dtype == "object":  # as GX does: each non-null value's own type
        accepted = _value_types(list(types))
        return _mapped(lambda v: v.map(lambda x: isinstance(x, accepted)))(df, kw)
    return f"observed {dtype!r}; expected {{'type_list': {types}}}"


def _bounded(values: Any, ok: Any, kw: dict[str, Any]) -> Any:
    """``ok`` where ``values`` also lie within the expectation's bounds (pandas values or a
    numpy array alike)."""
    low, high = kw.get("min_value"), kw.get("max_value")
    if low is not None:
        ok &= values > low if kw.get("strict_min") else values >= low
    if high is not None:
        ok &= values < high if kw.get("strict_max") else values <= high
    return ok


def _between(values: pd.Series, kw: dict[str, Any]) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values):
        raise TypeError(f"values of dtype {values.dtype} are not comparable with numbers")
    return _bounded(values, pd.Series(True, index=values.index), kw)


#: Expectation kind -> its pandas check (the kinds ``honing init`` writes).
CHECKS: dict[str, Check] = {
    "expect_table_columns_to_match_set": _columns,
    "expect_table_row_count_to_be_between": _row_count,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_type_list": _type_list,
}


#: Requests of at most this many rows are checked value by value against a set (pandas'
#: own machinery costs more than the values at that size).
FEW_ROWS = 64
#: Value sets as Python sets, by the identity of the suite's list (kept alive with it).
_SETS: dict[int, tuple[list[Any], int, frozenset[Any] | None]] = {}


def _members(values: list[Any]) -> frozenset[Any] | None:
    """``values`` as a set (None when a value is unhashable), built once per suite list."""
    hit = _SETS.get(id(values))
    if hit is not None and hit[0] is values and hit[1] == len(values):
        return hit[2]
    try:
        members: frozenset[Any] | None = frozenset(values)
    except TypeError:
        members = None
    if len(_SETS) > 4096:
        _SETS.clear()
    _SETS[id(values)] = (values, len(values), members)
    return members


def is_missing(value: Any) -> bool:
    """Whether one value is missing as pandas counts it (None, NaN, NA, NaT)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and value != value)
    )


def _in_set(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    column = df[kw["column"]]
    members = _members(kw["value_set"]) if len(column) <= FEW_ROWS else None
    if members is not None:  # a short frame whose values all belong passes at once
        try:
            if all(v in members or is_missing(v) for v in column.tolist()):
                return None
        except TypeError:  # an unhashable value: pandas decides
            pass
    return _mapped(lambda v: v.isin(kw["value_set"]))(df, kw)


def _range(df: pd.DataFrame, kw: dict[str, Any]) -> str | None:
    general = _mapped(lambda v: _between(v, kw))
    column = df[kw["column"]]
    if not pd.api.types.is_numeric_dtype(column):
        return general(df, kw)  # it says why the values cannot be compared
    # numbers: counted with numpy (a wide table has thousands of these); the general path
    # words the failure, on the rare column that fails
    v = column.to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(v)
    ok = _bounded(v, present.copy(), kw)
    bad = int(present.sum() - ok.sum())
    if bad <= (1.0 - float(kw.get("mostly", 1.0))) * int(present.sum()):
        return None
    return general(df, kw)


CHECKS["expect_column_values_to_be_in_set"] = _in_set
CHECKS["expect_column_values_to_be_between"] = _range


def supported(suite: dict[str, Any]) -> bool:
    """Whether every expectation of ``suite`` has a pandas check."""
    return all(e["type"] in CHECKS for e in suite.get("expectations", []))


def check_fast(df: pd.DataFrame, suite: dict[str, Any], *, source: str) -> ValidationReport:
    """:func:`honing.validation.check_expectations`'s report, computed with pandas when the
    suite allows (else by Great Expectations). A column rule on a column the frame lacks
    fails as "could not be evaluated", beside the column-set rule, as in Great Expectations."""
    if not supported(suite):
        return check_expectations(df, suite, source=source)
    failures = []
    expectations = suite.get("expectations", [])
    for exp in expectations:
        kw = exp.get("kwargs", {})
        column = kw.get("column")
        if column is not None and column not in df.columns:
            words: str | None = f"could not be evaluated: column {column!r} is missing"
        else:
            words = CHECKS[exp["type"]](df, kw)
        if words is not None:
            failures.append(
                ExpectationFailure(
                    column=column,
                    rule=exp["type"],
                    severity=str(exp.get("severity", "critical")).lower(),
                    details=words,
                )
            )
    return ValidationReport(
        source=source,
        suite=str(suite.get("name", "suite")),
        rows=len(df),
        evaluated=len(expectations),
        failures=failures,
        engine="honing",
    )
