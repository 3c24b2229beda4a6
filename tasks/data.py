"""Data tasks: load, hash, validate, clean, split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from honing import data, features, validation
from honing.config import FeaturesConfig
from honing_flows.tasks import compute_task, io_task


@io_task
def load_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    return data.load_table(path, fmt)


@io_task
def file_md5(path: Path) -> str:
    return data.file_md5(path)


@io_task
def load_suite(path: Path) -> dict[str, Any]:
    return validation.load_suite(path)


@compute_task
def validate_data(
    df: pd.DataFrame,
    suite: dict[str, Any],
    source: str,
    rules: validation.QualityRules,
) -> validation.ValidationReport:
    return validation.validate(df, suite, source=source, rules=rules)


@compute_task
def validation_gate(report: validation.ValidationReport) -> None:
    validation.gate(report)


@compute_task
def clean(
    df: pd.DataFrame, target: str, deduplicate: bool, drop_invalid_labels: bool
) -> tuple[pd.DataFrame, data.CleaningReport]:
    return data.clean(df, target, deduplicate=deduplicate, drop_invalid_labels=drop_invalid_labels)


@compute_task
def split_data(
    df: pd.DataFrame,
    target: str,
    positive_label: Any,
    drop_columns: list[str],
    test_size: float,
    seed: int,
    task: str,
    time_column: str | None,
) -> tuple[data.Split, list]:
    return data.split_data(
        df,
        target,
        positive_label=positive_label,
        drop_columns=drop_columns,
        test_size=test_size,
        seed=seed,
        task=task,
        time_column=time_column,
    )


@compute_task
def infer_columns(X: pd.DataFrame, cfg: FeaturesConfig) -> features.FeatureColumns:
    return features.infer_columns(X, cfg)


@io_task
def detect_changes(paths: list[str], state_path: str) -> list[data.DataChange]:
    return data.detect_changes([Path(p) for p in paths], Path(state_path))
