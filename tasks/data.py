"""Data tasks: load a table, infer its column kinds, ingest a batch as a data version. (The
data watcher's task is :mod:`honing_flows.tasks.watch`, which imports no model library.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from honing import data
from honing.config import FeaturesConfig, PipelineConfig
from honing.data.reading import Reading
from honing.modeling import features
from honing.monitoring import versions
from honing_flows.tasks import compute_task, io_task, logged


@io_task
def load_table(path: Path, how: str | Reading = "auto") -> pd.DataFrame:
    return data.load_table(path, how)


@compute_task
def infer_columns(X: pd.DataFrame, cfg: FeaturesConfig) -> features.FeatureColumns:
    return features.infer_columns(X, cfg)


@compute_task  # not retried: appending twice would duplicate the batch
def ingest(cfg: PipelineConfig, batch_path: str, repo: str) -> versions.Ingested:
    return logged(versions.ingest(cfg, Path(batch_path), repo=Path(repo)))
