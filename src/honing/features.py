"""The feature pipeline: one ``ColumnTransformer`` saved inside every model, so serving and
training apply the very same transforms."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler

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
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist"
                    if cfg.min_category_frequency
                    else "ignore",
                    min_frequency=cfg.min_category_frequency,
                    sparse_output=False,
                ),
            ),
        ]
    )
    transformers = []
    if columns.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), columns.numeric))
    if columns.categorical:
        transformers.append(("categorical", categorical, columns.categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
