"""Numbers a CSV reader keeps as text: written with thousands separators ("1,234"), or with
one non-numeric value that marks the missing ones ("." in a column of measurements).
``honing init`` names the first (:func:`honing.validation.profiling.flag_columns`), and
writes the markers of the second into the config (``data.missing_values``), which every
reader of the pipeline's tables then reads as missing (:func:`honing.data.load_table`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pandas as pd

#: Values of a text column looked at, drawn at random, for a marker of missing values.
MARKER_SAMPLE = 20_000


def _text(values: pd.Series) -> pd.Series | None:
    """The present ``values`` as stripped strings; None when there are none, or when a reader
    already took them for numbers."""
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return None
    return present.astype(str).str.strip()


def separated_numbers(values: pd.Series) -> bool:
    """Whether text ``values`` are numbers written with thousands separators ("1,234"),
    which a CSV reader keeps as text."""
    text = _text(values)
    if text is None or not text.str.contains(",").any():
        return False
    return bool(text.str.fullmatch(r"[-+]?\d{1,3}(,\d{3})*(\.\d+)?").all())


def missing_marker(values: pd.Series, sample: int = MARKER_SAMPLE) -> str | None:
    """The one non-numeric value of text ``values`` that are otherwise numbers (at least two
    distinct, and most of the values): a marker of missing values such as ``.`` or ``?``,
    which makes a CSV reader keep the whole column as text; else None. At most ``sample``
    of the values are looked at, drawn at random."""
    present = values.dropna()
    if len(present) > sample:
        present = present.sample(sample, random_state=0)
    text = _text(present)
    if text is None:
        return None
    numbers = pd.to_numeric(text, errors="coerce")
    others = text[numbers.isna()].unique()
    if len(others) != 1 or numbers.nunique() < 2 or numbers.notna().mean() < 0.5:
        return None
    return str(others[0])


def missing_markers(df: pd.DataFrame, columns: Iterable[str]) -> dict[str, list[str]]:
    """Each marker of missing values (:func:`missing_marker`) found in ``columns`` of
    ``df``, with the columns it marks, in column order."""
    found: dict[str, list[str]] = {}
    for column in columns:
        marker = missing_marker(df[column])
        if marker is not None:
            found.setdefault(marker, []).append(column)
    return found


def blank_markers(df: pd.DataFrame, missing: Collection[str]) -> pd.DataFrame:
    """``df`` with its text cells equal to one of the ``missing`` markers made missing (what
    a CSV reader's ``na_values`` does, for a table read from a typed file such as Parquet,
    whose columns keep their types)."""
    if not missing:
        return df
    markers = set(missing)
    out = {}
    for name in df.columns:
        values = df[name]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            marked = values.map(lambda v: isinstance(v, str) and v in markers).astype(bool)
            if marked.any():
                out[name] = values.mask(marked)
    if not out:
        return df
    df = df.copy()
    for name, values in out.items():
        df[name] = values
    return df
