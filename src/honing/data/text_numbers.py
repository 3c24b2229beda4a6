"""Numbers a CSV reader keeps as text: written with thousands separators ("1,234"), or with
one non-numeric value that marks the missing ones ("." in a column of measurements).
``honing init`` finds both, and writes the separator (``data.thousands``) and the markers
(``data.missing_values``) into the config, which every reader of the pipeline's tables
then reads through (:func:`honing.data.load_table`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: Values of a text column looked at, drawn at random, for a marker of missing values.
MARKER_SAMPLE = 20_000
#: Values of a text column looked at for numbers written with thousands separators.
SEPARATED_SAMPLE = 2_000


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


def separated_columns(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The ``columns`` of ``df`` whose values are numbers written with thousands separators
    (:func:`separated_numbers`, on their first values)."""
    return [c for c in columns if separated_numbers(df[c].dropna().head(SEPARATED_SAMPLE))]


def missing_markers(df: pd.DataFrame, columns: Iterable[str]) -> dict[str, list[str]]:
    """Each marker of missing values (:func:`missing_marker`) found in ``columns`` of
    ``df``, with the columns it marks, in column order."""
    found: dict[str, list[str]] = {}
    for column in columns:
        marker = missing_marker(df[column])
        if marker is not None:
            found.setdefault(marker, []).append(column)
    return found
