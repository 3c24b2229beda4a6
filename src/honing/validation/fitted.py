"""The quality rules ``honing init`` fits to a new table (``validation.quality`` and
``cleaning.deduplicate`` in the config it writes), with room for the batches after it: a
rule the table breaks, or nearly breaks, is moved past it with a note that says why, and a
column that holds one value in every row is kept. :mod:`honing.validation.profiling` writes
them into the config."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from honing.config import QualityConfig


def constant_columns(df: pd.DataFrame, target: str) -> list[str]:
    """The feature columns of ``df`` that hold one value in every row. ``init`` keeps them,
    and lets the run take a constant column (``validation.quality.forbid_constant_columns:
    false``, :func:`fitted_rules`): a flag that a first sample never sets (near Christmas,
    in a summer's bookings) varies in later batches, and a retrain on them should use it.
    A column no row fills is dropped (:data:`honing.validation.profiling.COLUMN_RULES`)."""
    if len(df) < 2:
        return []
    return [
        str(c)
        for c in df.columns
        if c != target and df[c].notna().all() and df[c].nunique(dropna=False) == 1
    ]


def repeats_are_cases(df: pd.DataFrame) -> bool:
    """Whether the table's columns can make no more distinct rows than it has rows (the
    product of their distinct values, missing counted as one): then rows must repeat, and
    each repeat is a case of its own (a census of a few categories), not a copy. Dropping
    the repeats would drop the table's frequencies with them: of a 1.4-million-row table of
    six categories and a rank, 1,646 rows were left."""
    possible = 1
    for column in df.columns:
        possible *= max(int(df[column].nunique(dropna=False)), 1)
        if possible > len(df):
            return False
    return True


#: How far ``init`` sets a quality rule from what the table shows, where it moves one: the
#: largest share of duplicate rows is twice the observed share and 2 points more, the
#: smallest share of the rarest class half the observed share. A batch, and the table as
#: batches are added to it, repeat rows and hold the rare class more or less often: hotel
#: bookings (modeldata's hotel_rates) repeat 5.4% of their rows over three months, 7-14%
#: in a month's batch, and 7.8-10.6% as the months pile up. A rule set just past the
#: first sample refused the next month's batch. A broken extract still breaks them: a
#: table sent twice repeats half its rows.
DUPLICATES_ROOM = (2.0, 0.02)
MINORITY_ROOM = 0.5


def fitted_rules(df: pd.DataFrame, target: str, task: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The quality rules fitted to the table as it is, and a note for each rule moved: a
    table with constant columns takes them (:func:`constant_columns`); where the room the
    data needs (:data:`DUPLICATES_ROOM`, :data:`MINORITY_ROOM`) is past a default rule, the
    rule is set there (duplicates are then dropped by cleaning, unless
    :func:`repeats_are_cases`), so that ``init``'s config passes its own data and the
    batches after it. ``init`` prints the notes and writes them beside the keys."""
    rules: dict[str, Any] = QualityConfig().model_dump()
    notes: dict[str, str] = {}
    duplicates = float(df.duplicated().mean())
    times, points = DUPLICATES_ROOM
    room = round(min(1.0, times * duplicates + points), 4)
    if duplicates > 0 and room > rules["max_duplicate_fraction"]:
        default = rules["max_duplicate_fraction"]
        rules["max_duplicate_fraction"] = room
        kept = (
            "; each is a case (its columns' few values allow no more distinct rows than "
            "it has), so cleaning keeps them"
            if repeats_are_cases(df)
            else ", cleaning drops them"
        )
        notes["max_duplicate_fraction"] = (
            f"{duplicates:.1%} of the rows are exact duplicates (default maximum {default:.0%}); "
            f"set to twice that and 2 points more, as later batches repeat rows more or less "
            f"often{kept}"
        )
    constant = constant_columns(df, target)
    if constant and rules["forbid_constant_columns"]:
        rules["forbid_constant_columns"] = False
        notes["forbid_constant_columns"] = (
            f"{', '.join(constant)} {'holds' if len(constant) == 1 else 'hold'} one value in "
            "every row of this table: kept, as later batches may vary (a seasonal flag), so a "
            "constant column is not refused"
        )
    if task == "classification" and df[target].notna().any():
        shares = df[target].value_counts(normalize=True)
        minority = float(shares.min())
        room = math.floor(minority * MINORITY_ROOM * 1e4) / 1e4
        default = rules["min_minority_fraction"]
        if room < default and len(shares) > 2:
            # a class of a few rows among many: later batches bring new ones and let others
            # fade, and any share would be broken by a table that grows without them
            rules["min_minority_fraction"] = 0.0
            notes["min_minority_fraction"] = (
                f"{len(shares)} classes, the rarest {minority:.2%} of the rows (default minimum "
                f"{default:.0%}); off, as later batches bring new classes and let rare ones fade "
                "(a class of one row is kept in training)"
            )
        elif room < default:
            rules["min_minority_fraction"] = room
            notes["min_minority_fraction"] = (
                f"the rarest class is {minority:.2%} of the rows (default minimum "
                f"{default:.0%}); set to half that, as later batches hold it more or less often"
            )
    return rules, notes
