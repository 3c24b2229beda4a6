"""Numbers a CSV reader keeps as text: written with thousands separators ("1,234"), or with
a few non-numeric values that mark the missing ones ("." in a column of measurements).
``honing init`` finds both, and writes the separator (``data.thousands``) and the markers
(``data.missing_values``) into the config, which every reader of the pipeline's tables
then reads through (:func:`honing.data.load_table`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import pandas as pd

#: Values of a text column looked at, drawn at random, for a marker of missing values.
MARKER_SAMPLE = 20_000
#: Values of a text column looked at for numbers written with thousands separators.
SEPARATED_SAMPLE = 2_000
#: Distinct markers of missing values one column of numbers may hold (``.`` and ``?``).
MAX_MARKERS = 3


def _text(values: pd.Series) -> pd.Series | None:
    """The present ``values`` as stripped strings; None when there are none, or when a reader
    already took them for numbers."""
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return None
    return present.astype(str).str.strip()


#: A number written with thousands separators.
SEPARATED = r"[-+]?\d{1,3}(,\d{3})*(\.\d+)?"


def separated_numbers(values: pd.Series, missing: Collection[str] = ()) -> bool:
    """Whether text ``values`` are numbers written with thousands separators ("1,234"),
    which a CSV reader keeps as text; the ``missing`` markers among them aside."""
    text = _text(values)
    if text is None:
        return False
    text = text[~text.isin(list(missing))]
    if text.empty or not text.str.contains(",").any():
        return False
    return bool(text.str.fullmatch(SEPARATED).all())


def _numbers(text: pd.Series) -> pd.Series:
    """Stripped ``text`` as numbers (NaN where it is not one), thousands separators read."""
    separated = text.str.fullmatch(SEPARATED) & text.str.contains(",", regex=False)
    return pd.to_numeric(text.where(~separated, text.str.replace(",", "")), errors="coerce")


def missing_marker(values: pd.Series, sample: int = MARKER_SAMPLE) -> tuple[str, ...]:
    """The non-numeric values of text ``values`` that are otherwise numbers (at least two
    distinct, and most of the values): markers of missing values such as ``.``, ``?`` or
    ``n/a``, which make a CSV reader keep the whole column as text; at most
    :data:`MAX_MARKERS` of them, none with a digit (``90+`` or ``<1`` is a number cut at a
    limit, not a missing one), else none. Spaces around a value are not part of it. At most
    ``sample`` of the values are looked at, drawn at random."""
    present = values.dropna()
    if len(present) > sample:
        present = present.sample(sample, random_state=0)
    text = _text(present)
    if text is None:
        return ()
    numbers = _numbers(text)
    others = sorted(text[numbers.isna()].unique())
    if (
        not 1 <= len(others) <= MAX_MARKERS
        or any(not o or any(ch.isdigit() for ch in o) for o in others)
        or numbers.nunique() < 2
        or numbers.notna().mean() < 0.5
    ):
        return ()
    return tuple(str(o) for o in others)


def separated_columns(
    df: pd.DataFrame, columns: Iterable[str], missing: Collection[str] = ()
) -> list[str]:
    """The ``columns`` of ``df`` whose values are numbers written with thousands separators
    (:func:`separated_numbers`, on their first values, the ``missing`` markers aside)."""
    return [c for c in columns if separated_numbers(df[c].dropna().head(SEPARATED_SAMPLE), missing)]


@dataclass(frozen=True)
class Markers:
    """What :func:`missing_markers` found: each marker with the columns of numbers it marks,
    in column order; and the columns of numbers left as text, each with the text columns
    that hold one of its markers as a value (the config's markers apply to every column:
    that value would be lost there)."""

    found: dict[str, list[str]]
    left: dict[str, list[str]]


def missing_markers(df: pd.DataFrame, columns: Iterable[str]) -> Markers:
    """The markers of missing values (:func:`missing_marker`) of ``columns`` of ``df``,
    but for the columns one of whose markers is also a value of another text column of
    ``df`` (any column not marked alone: the label too)."""
    per_column = {c: missing_marker(df[c]) for c in columns}
    candidates = {m for ms in per_column.values() for m in ms}
    holders: dict[str, list[str]] = {}  # marker -> the text columns holding it
    for name in df.columns if candidates else ():
        if per_column.get(name):
            continue
        text = _text(pd.Series(df[name].dropna().unique()))
        for marker in sorted(candidates & set(text if text is not None else ())):
            holders.setdefault(marker, []).append(str(name))
    found: dict[str, list[str]] = {}
    left: dict[str, list[str]] = {}
    for column, ms in per_column.items():
        held = sorted({h for m in ms for h in holders.get(m, [])})
        if held:
            left[column] = held
        for marker in ms if not held else ():
            found.setdefault(marker, []).append(column)
    return Markers(found, left)
