"""The feature pipeline: one ``ColumnTransformer`` saved inside every model, so serving and
training apply the very same transforms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from honing.config import FeaturesConfig
from honing.exceptions import DataValidationError

_SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


#: Calendar parts each date column expands into, then the days since 1970 (a trend).
DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour")
_DATE_PATTERN = (
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"  # y-m-d or d/m/y
    r"([ T]\d{1,2}:\d{2}.*)?\s*$"  # an optional time
)


@dataclass(frozen=True)
class FeatureColumns:
    """The feature columns by kind. ``categorical`` columns have at most
    ``features.max_onehot_categories`` distinct values and are one-hot or ordinal encoded;
    ``high_cardinality`` ones are target- or frequency-encoded; ``dates`` are expanded into
    calendar parts and elapsed days."""

    numeric: list[str]
    categorical: list[str]
    high_cardinality: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)

    @property
    def text(self) -> list[str]:
        """Columns fed as strings (to ONNX, for example)."""
        return self.categorical + self.high_cardinality + self.dates

    @property
    def all(self) -> list[str]:
        return self.numeric + self.text


def detect_dates(X: pd.DataFrame, *, sample: int = 200, share: float = 0.95) -> list[str]:
    """Columns holding dates or datetimes: datetime dtypes, and text columns where at least
    ``share`` of a sample of non-null values look like ISO or d/m/y dates."""
    found = []
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            found.append(col)
        elif pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            values = s.dropna().astype(str)
            if values.empty:
                continue
            values = values.sample(min(sample, len(values)), random_state=0)
            if values.str.match(_DATE_PATTERN).mean() >= share:
                found.append(col)
    return found


def detect_identifiers(
    X: pd.DataFrame,
    *,
    dates: list[str] | None = None,
    min_unique: int = 50,
    share: float = 0.9,
) -> list[str]:
    """Text columns that look like identifiers or free text: at least ``share`` of their
    non-null values are distinct (names, ids, addresses). Dates (``dates``, detected when
    None) are not counted."""
    dates = set(detect_dates(X) if dates is None else dates)
    found = []
    for col in X.columns:
        s = X[col]
        if col in dates or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        n = s.nunique(dropna=True)
        if n >= min_unique and n >= share * s.notna().sum():
            found.append(col)
    return found


def infer_columns(X: pd.DataFrame, cfg: FeaturesConfig) -> FeatureColumns:
    """Numeric, categorical, high-cardinality and date columns: from the config where given,
    else from dtypes and values (``features.dates: None`` detects dates)."""
    named = (cfg.numeric or []) + (cfg.categorical or []) + (cfg.dates or [])
    missing = [c for c in named if c not in X.columns]
    if missing:
        raise DataValidationError(
            f"features config names column(s) {missing} that are not in the data; "
            "rule: features.numeric/categorical/dates must be existing columns"
        )
    dates = list(cfg.dates) if cfg.dates is not None else detect_dates(X)
    numeric = (
        list(cfg.numeric)
        if cfg.numeric is not None
        else [
            c
            for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c])
            and not pd.api.types.is_bool_dtype(X[c])
            and c not in (cfg.categorical or [])
            and c not in dates
        ]
    )
    categorical = (
        list(cfg.categorical)
        if cfg.categorical is not None
        else [c for c in X.columns if c not in numeric and c not in dates]
    )
    if not numeric and not categorical and not dates:
        raise DataValidationError("no feature columns left after dropping target and ids")
    limit = cfg.max_onehot_categories
    high = [c for c in categorical if X[c].nunique(dropna=True) > limit]
    low = [c for c in categorical if c not in high]
    return FeatureColumns(numeric=numeric, categorical=low, high_cardinality=high, dates=dates)


class DateFeatures(TransformerMixin, BaseEstimator):
    """Expands date columns into :data:`DATE_PARTS` and days since 1970 (a float: a trend
    that trees and linear models can both use). Unparseable values become NaN."""

    def fit(self, X: pd.DataFrame, y: object = None) -> DateFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = []
        for col in self.feature_names_in_:
            t = pd.to_datetime(pd.Series(X[col]), errors="coerce", format="mixed", utc=True)
            out.extend(date_parts(t))
        return np.column_stack(out)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(
            [f"{c}_{p}" for c in self.feature_names_in_ for p in (*DATE_PARTS, "days")],
            dtype=object,
        )


#: Output columns per date column.
DATE_WIDTH = len(DATE_PARTS) + 1
#: Ticks of a second in each resolution pandas parses dates to.
_TICKS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def date_parts(when: pd.Series) -> list[np.ndarray]:
    """:data:`DATE_PARTS` and the days since 1970 of a UTC date column (as
    ``pd.to_datetime(..., utc=True)`` parses it), as float64 columns (NaN where NaT): the
    values pandas' ``.dt`` accessors and ``total_seconds()`` give, computed on the arrays,
    which are integers of the column's own resolution. Per call those accessors cost
    ~0.4 ms each: most of a single served row's time (6 ms with two date columns)."""
    stamps = np.asarray(when.values)  # UTC, tz-naive
    ticks = _TICKS[np.datetime_data(stamps.dtype)[0]]
    missing = np.isnat(stamps)
    ticks_since = np.where(missing, 0, stamps.view(np.int64))
    days = np.floor_divide(ticks_since, 86400 * ticks)  # whole days, floored before 1970
    day = days.astype("datetime64[D]")
    month, year = day.astype("datetime64[M]"), day.astype("datetime64[Y]")
    # the days as pandas counts them: a timedelta in the resolution it picks, in seconds
    since = np.asarray((when - pd.Timestamp(0, tz="UTC")).values)
    seconds = since.view(np.int64) / _TICKS[np.datetime_data(since.dtype)[0]]
    parts = [
        year.astype(np.int64) + 1970,
        month.astype(np.int64) % 12 + 1,
        (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
        (days + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        (day - year.astype("datetime64[D]")).astype(np.int64) + 1,
        (ticks_since - days * 86400 * ticks) // (3600 * ticks),
        seconds / 86400.0,
    ]
    return [np.where(missing, np.nan, p.astype(np.float64)) for p in parts]


def resolve_encoder(cfg: FeaturesConfig, family_encoder: str) -> str:
    """The encoder of low-cardinality categoricals: the config's, or the family's own
    preference when the config says ``auto``."""
    return family_encoder if cfg.encoder == "auto" else cfg.encoder


def build_preprocessor(
    columns: FeatureColumns, cfg: FeaturesConfig, *, encoder: str = "onehot", task: str
) -> ColumnTransformer:
    """Impute + scale numeric columns; expand dates; impute + one-hot (unknowns ignored) or
    ordinal-encode categorical ones; target- (cross-fitted) or frequency-encode the
    high-cardinality ones. Output columns keep this order, which
    :func:`categorical_positions` relies on."""
    numeric_steps: list[tuple[str, object]] = [
        ("impute", SimpleImputer(strategy=cfg.numeric_imputer))
    ]
    if cfg.scaler != "none":
        numeric_steps.append(("scale", _SCALERS[cfg.scaler]()))
    step: tuple[str, object]
    if encoder == "ordinal":
        step = (
            "ordinal",
            OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                min_frequency=cfg.min_category_frequency,
            ),
        )
    else:
        step = (
            "onehot",
            OneHotEncoder(
                handle_unknown="infrequent_if_exist" if cfg.min_category_frequency else "ignore",
                min_frequency=cfg.min_category_frequency,
                sparse_output=False,
            ),
        )
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")), step])
    transformers = []
    if columns.numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), columns.numeric))
    if columns.dates:
        dates = Pipeline([("expand", DateFeatures()), ("impute", SimpleImputer(strategy="median"))])
        transformers.append(("dates", dates, columns.dates))
    if columns.categorical:
        transformers.append(("categorical", categorical, columns.categorical))
    if columns.high_cardinality:
        transformers.append(
            ("high_cardinality", _high_cardinality(cfg, task), columns.high_cardinality)
        )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _high_cardinality(cfg: FeaturesConfig, task: str) -> Pipeline:
    impute = ("impute", SimpleImputer(strategy="constant", fill_value="missing"))
    if cfg.high_cardinality == "frequency":  # the most frequent categories, the rest pooled
        cap = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=cfg.max_onehot_categories,
            sparse_output=False,
        )
        return Pipeline([impute, ("cap", cap)])
    from sklearn.model_selection import KFold, StratifiedKFold

    # cross-fitted on shuffled folds of a fixed seed (scikit-learn's default, spelled as the
    # generator it now asks for): the same encoding run after run
    if task == "regression":
        target_type, folds = "continuous", KFold(5, shuffle=True, random_state=0)
    else:
        target_type, folds = "auto", StratifiedKFold(5, shuffle=True, random_state=0)
    return Pipeline([impute, ("target", TargetEncoder(target_type=target_type, cv=folds))])


def categorical_positions(columns: FeatureColumns, encoder: str) -> list[int]:
    """Output positions of the ordinal-encoded categorical columns, for boosting libraries
    that split categories natively (empty for one-hot)."""
    if encoder != "ordinal" or not columns.categorical:
        return []
    start = len(columns.numeric) + DATE_WIDTH * len(columns.dates)
    return list(range(start, start + len(columns.categorical)))


def build_reducers(cfg: FeaturesConfig, *, seed: int, task: str) -> list[tuple[str, object]]:
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
