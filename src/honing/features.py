"""The feature pipeline: one ``ColumnTransformer`` saved inside every model, so serving and
training apply the very same transforms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from honing.config import FeaturesConfig
from honing.exceptions import DataValidationError

_SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


@dataclass(frozen=True)
class FeatureColumns:
    numeric: list[str]
    categorical: list[str]


def infer_columns(X: pd.DataFrame, cfg: FeaturesConfig) -> FeatureColumns:
    """Numeric vs categorical columns: from the config where given, else from dtypes."""
    missing = [c for c in (cfg.numeric or []) + (cfg.categorical or []) if c not in X.columns]
    if missing:
        raise DataValidationError(
            f"features config names column(s) {missing} that are not in the data; "
            "rule: features.numeric/categorical must be existing columns"
        )
    numeric = (
        list(cfg.numeric)
        if cfg.numeric is not None
        else [
            c
            for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c])
            and not pd.api.types.is_bool_dtype(X[c])
            and c not in (cfg.categorical or [])
        ]
    )
    categorical = (
        list(cfg.categorical)
        if cfg.categorical is not None
        else [c for c in X.columns if c not in numeric]
    )
    if not numeric and not categorical:
        raise DataValidationError("no feature columns left after dropping target and ids")
    return FeatureColumns(numeric=numeric, categorical=categorical)


def build_preprocessor(columns: FeatureColumns, cfg: FeaturesConfig) -> ColumnTransformer:
    """Impute + scale numeric columns; impute + one-hot categorical ones (unknowns ignored)."""
    numeric_steps: list[tuple[str, object]] = [
        ("impute", SimpleImputer(strategy=cfg.numeric_imputer))
    ]
    if cfg.scaler != "none":
        numeric_steps.append(("scale", _SCALERS[cfg.scaler]()))
    encoder: tuple[str, object]
    if cfg.encoder == "ordinal":
        encoder = (
            "ordinal",
            OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                min_frequency=cfg.min_category_frequency,
            ),
        )
    else:
        encoder = (
            "onehot",
            OneHotEncoder(
                handle_unknown="infrequent_if_exist" if cfg.min_category_frequency else "ignore",
                min_frequency=cfg.min_category_frequency,
                sparse_output=False,
            ),
        )
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")), encoder])
    transformers = []
    if columns.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), columns.numeric))
    if columns.categorical:
        transformers.append(("categorical", categorical, columns.categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def build_reducers(
    cfg: FeaturesConfig, *, seed: int, task: str = "classification"
) -> list[tuple[str, object]]:
    """Steps after the encoding: feature selection (mutual information, or an L1 logistic
    regression's non-zero coefficients) and PCA, as configured."""
    from functools import partial

    from sklearn.decomposition import PCA
    from sklearn.feature_selection import (
        SelectFromModel,
        SelectPercentile,
        mutual_info_classif,
        mutual_info_regression,
    )
    from sklearn.linear_model import Lasso, LogisticRegression

    steps: list[tuple[str, object]] = []
    if cfg.selection == "mutual_info":
        steps.append(
            (
                "select",
                SelectPercentile(
                    partial(
                        mutual_info_classif if task == "classification" else mutual_info_regression,
                        random_state=seed,
                    ),
                    percentile=max(1, round(100 * cfg.selection_fraction)),
                ),
            )
        )
    elif cfg.selection == "l1":
        steps.append(
            (
                "select",
                SelectFromModel(
                    LogisticRegression(
                        l1_ratio=1.0, solver="liblinear", C=cfg.selection_C, random_state=seed
                    )
                    if task == "classification"
                    else Lasso(alpha=1.0 / cfg.selection_C, random_state=seed)
                ),
            )
        )
    if cfg.pca is not None:
        steps.append(("pca", PCA(n_components=cfg.pca, random_state=seed)))
    return steps


def resample(
    X: pd.DataFrame, y: np.ndarray, how: str, *, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rebalance classes by random oversampling of the smaller classes or undersampling of
    the larger ones (applied to training rows only, never to validation or test rows)."""
    if how == "none":
        return X, y
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    target = counts.max() if how == "oversample" else counts.min()
    idx = []
    for label, count in zip(labels, counts, strict=True):
        rows = np.flatnonzero(y == label)
        if count == target:
            idx.append(rows)
        else:
            idx.append(rng.choice(rows, size=target, replace=how == "oversample"))
    order = np.sort(np.concatenate(idx)) if how == "undersample" else np.concatenate(idx)
    return X.iloc[order].reset_index(drop=True), y[order]
