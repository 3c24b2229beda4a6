"""The window policy: which rows of a table's newest version train the model
(``data.window``). A pure cut of a DataFrame, used by the prepare stage and by monitoring."""

from __future__ import annotations

import pandas as pd

from honing.config import WindowConfig
from honing.data import time_values
from honing.exceptions import DataValidationError


def window(df: pd.DataFrame, cfg: WindowConfig) -> pd.DataFrame:
    """The rows of ``df`` that train the model under the window policy ``cfg``."""
    if cfg.kind == "last_n_rows" and cfg.rows is not None:
        return df.tail(cfg.rows)
    if cfg.kind == "last_period" and cfg.period and cfg.time_column:
        when = time_values(df, cfg.time_column, "data.window.time_column")
        if pd.api.types.is_numeric_dtype(when):
            raise DataValidationError(
                f"column '{cfg.time_column}': holds numbers, not dates; rule: "
                "data.window.kind last_period needs dates (use last_n_rows for numbers)"
            )
        return df[(when > when.max() - pd.tseries.frequencies.to_offset(cfg.period)).to_numpy()]
    return df
