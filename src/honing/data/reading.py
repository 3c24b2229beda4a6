"""How a pipeline's tables are read (:func:`honing.data.load_table`): the file's format, the
cell values that mean missing, the thousands separator of its numbers, and the CSV types a
Parquet file's columns take. The config's ``data`` section says the first three
(:class:`Reading`); ``honing init`` finds the markers and the separator in a new table."""

from __future__ import annotations

import decimal
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd


class Reading(Protocol):
    """What a reader of a pipeline's tables needs to know: the format (``auto``, ``csv`` or
    ``parquet``), the cell values read as missing besides an empty cell, and the thousands
    separator of the numbers in a CSV file (None: none). The config's ``data`` section
    (:class:`honing.config.DataConfig`) is one."""

    @property
    def format(self) -> str: ...

    @property
    def missing_values(self) -> Sequence[str]: ...

    @property
    def thousands(self) -> str | None: ...


@dataclass(frozen=True)
class TableReading:
    """A :class:`Reading` of its own, for a table that has no config yet (``honing init``)."""

    format: str = "auto"
    missing_values: Sequence[str] = ()
    thousands: str | None = None


def blank_markers(
    df: pd.DataFrame,
    missing: Collection[str],
    thousands: str | None = None,
    keep_text: Collection[str] = (),
) -> pd.DataFrame:
    """``df`` with its text cells equal to one of the ``missing`` markers, spaces around it
    aside, made missing; a column whose other values are then all numbers (written with the
    ``thousands`` separator or not) becomes a column of numbers, as a CSV reader makes it
    when its ``na_values`` match. For a CSV file, after its reader's own ``na_values``
    (which match a cell exactly: ``1.5, .`` keeps `` .``); for a Parquet file, whose columns
    keep their types otherwise. The ``keep_text`` columns stay text."""
    if not missing:
        return df
    markers = {m.strip() for m in missing}
    out = {}
    for name in df.columns:
        values = df[name]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        # each distinct value once (a column holds far fewer than its rows), then the cells
        hits = [v for v in values.dropna().unique() if isinstance(v, str) and v.strip() in markers]
        if hits:
            marked = values.isin(hits)
            values = values.mask(marked)
            out[name] = values if name in keep_text else _numbers_or_text(values, thousands)
    return _with(df, out)


def _numbers_or_text(values: pd.Series, thousands: str | None) -> pd.Series:
    """``values`` as floats when every present one is a number (strings such as `` 3`` or,
    with the separator, ``1,234.5``), else as they are. Each distinct value is read once."""
    distinct = pd.Series(values.dropna().unique(), dtype=object)
    if not all(isinstance(v, str) for v in distinct):
        return values
    text = distinct.str.strip()
    if thousands:
        text = text.str.replace(thousands, "", regex=False)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().any():
        return values
    return values.map(dict(zip(distinct, numbers, strict=True))).astype("float64")


def as_csv_types(df: pd.DataFrame) -> pd.DataFrame:
    """A Parquet table with the types its CSV would read as, so that one table gets one
    suite and one model whatever its file: unsigned ints as int64, decimals and durations
    (seconds) as floats, dates and times as ISO text, bytes as UTF-8 text."""
    out = {}
    for name in df.columns:
        s, first = df[name], df[name].dropna().head(1).tolist()
        if pd.api.types.is_unsigned_integer_dtype(s):
            out[name] = s.astype("int64" if s.max() < 2**63 else "float64")
        elif pd.api.types.is_timedelta64_dtype(s):
            out[name] = s.dt.total_seconds()
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[name] = s.map(lambda t: None if pd.isna(t) else t.isoformat()).astype(object)
        elif s.dtype == object and first and isinstance(first[0], decimal.Decimal | bytes):
            convert = float if isinstance(first[0], decimal.Decimal) else _text
            out[name] = s.map(lambda v, f=convert: None if v is None or v != v else f(v))
    return _with(df, out)


def _with(df: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    """``df`` with ``columns`` replaced (a copy; ``df`` itself when there are none)."""
    if not columns:
        return df
    df = df.copy()
    for name, values in columns.items():
        df[name] = values
    return df


def _text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")
