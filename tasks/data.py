"""Data tasks: load a table, infer its column kinds, watch files for changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from honing import data, features
from honing.config import FeaturesConfig
from honing_flows.tasks import compute_task, io_task


@io_task
def load_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    return data.load_table(path, fmt)


@compute_task
def infer_columns(X: pd.DataFrame, cfg: FeaturesConfig) -> features.FeatureColumns:
    return features.infer_columns(X, cfg)


@io_task
def detect_changes(paths: list[str], state_path: str) -> list[data.DataChange]:
    return data.detect_changes([Path(p) for p in paths], Path(state_path))
