"""Data-quality rules that an expectation suite does not state: infinite values, constant
columns, a label with one class or an extreme imbalance, too many duplicate rows, and a
feature that leaks the target, and a feature named like a column the model's answer adds. Each
finding names its column and rule, in the same form as a
failed expectation, so one report and one gate cover both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from honing.config import QualityConfig
from honing.modeling.decision import OUTPUT_COLUMNS, named_like_output
from honing.validation.report import ExpectationFailure

RULES = (
    "no_infinite_values",
    "not_constant",
    "label_has_two_classes",
    "class_balance",
    "duplicate_rows",
    "target_leakage",
    "not_named_like_an_output",
)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _fail(column: str | None, rule: str, details: str) -> ExpectationFailure:
    return ExpectationFailure(
        column=column, rule=f"honing.{rule}", severity="critical", details=details
    )


def check_rules(
    df: pd.DataFrame,
    *,
    target: str,
    ignore: list[str],
    cfg: QualityConfig,
    task: str,
) -> list[ExpectationFailure]:
    """Run every rule on ``df``; returns the failures (empty when the table is fine). The class
    rules apply to classification; leakage is checked for both tasks."""
    failures: list[ExpectationFailure] = []
    features = [c for c in df.columns if c != target and c not in ignore]

    for col in features:
        if named_like_output(col):
            failures.append(
                _fail(
                    col,
                    "not_named_like_an_output",
                    f"a model's answer adds {', '.join(OUTPUT_COLUMNS)} and probability_<class> "
                    "to each row: honing predict could not write both; rename the column",
                )
            )
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            n_inf = int(np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).sum())
            if n_inf:
                failures.append(
                    _fail(
                        col,
                        "no_infinite_values",
                        f"{n_inf} infinite value(s); features must be finite",
                    )
                )
        if cfg.forbid_constant_columns and len(df) > 1 and s.nunique(dropna=False) <= 1:
            failures.append(
                _fail(
                    col,
                    "not_constant",
                    f"every row holds {_plain(s.iloc[0])!r}; a constant carries no signal",
                )
            )

    if target in df.columns and task == "regression":
        if pd.api.types.is_numeric_dtype(df[target]) and df[target].nunique() >= 2:
            failures += _leakage(df, features, target, cfg.max_abs_correlation, numeric=True)
    elif target in df.columns:
        labels = df[target].dropna()
        counts = labels.value_counts()
        if len(counts) < 2:
            failures.append(
                _fail(
                    target,
                    "label_has_two_classes",
                    f"found {len(counts)} class(es) {list(counts.index)[:5]}; "
                    "a classifier needs both",
                )
            )
        elif counts.min() / counts.sum() < cfg.min_minority_fraction:
            failures.append(
                _fail(
                    target,
                    "class_balance",
                    f"minority class {counts.idxmin()!r} is {counts.min() / counts.sum():.4%} of "
                    f"rows; minimum is {cfg.min_minority_fraction:.2%}",
                )
            )
        if len(counts) == 2:
            failures += _leakage(df, features, target, cfg.max_abs_correlation)

    if len(df):
        dup = float(df.duplicated().mean())
        if dup > cfg.max_duplicate_fraction:
            failures.append(
                _fail(
                    None,
                    "duplicate_rows",
                    f"{dup:.2%} of rows are exact duplicates; maximum is "
                    f"{cfg.max_duplicate_fraction:.2%}",
                )
            )
    return failures


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _clean_correlations(
    df: pd.DataFrame, features: list[str], y: pd.Series
) -> tuple[dict[str, float], list[str]]:
    """The correlation with ``y`` of every numeric feature that is finite wherever ``y`` is
    known, computed at once (a wide table has thousands); the other features, left to the
    column-by-column check. A constant column's correlation is NaN."""
    known = y.notna().to_numpy()
    numeric = [c for c in features if _numeric(df[c])]
    if known.sum() < 10 or not numeric:
        return {}, list(features)
    X = df[numeric].to_numpy(dtype=float, na_value=np.nan)[known]
    clean = np.isfinite(X).all(axis=0)
    xs = X[:, clean] - X[:, clean].mean(axis=0)
    ys = y.to_numpy(dtype=float)[known]
    ys = ys - ys.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xs * ys[:, None]).sum(axis=0) / np.sqrt((xs**2).sum(axis=0) * (ys**2).sum())
    names = [c for c, ok in zip(numeric, clean, strict=True) if ok]
    done = set(names)
    return dict(zip(names, r.tolist(), strict=True)), [c for c in features if c not in done]


def _leakage(
    df: pd.DataFrame,
    features: list[str],
    target: str,
    max_abs_corr: float,
    *,
    numeric: bool = False,
) -> list[ExpectationFailure]:
    """Features that predict the label perfectly: |correlation| >= ``max_abs_corr`` for numeric
    columns, a one-to-one mapping for categorical ones. ``numeric``: a regression target, used
    as is."""
    failures = []
    if numeric:
        y = df[target].astype(float)
    else:
        y = pd.Series(pd.factorize(df[target])[0], index=df.index).where(df[target].notna())
    corr, rest = _clean_correlations(df, features, y)
    for col, r in corr.items():
        if np.isfinite(r) and abs(r) >= max_abs_corr:
            failures.append(
                _fail(
                    col,
                    "target_leakage",
                    f"correlation with '{target}' is {r:+.4f} (|r| >= "
                    f"{max_abs_corr}); the feature leaks the label",
                )
            )
    for col in rest:
        s = df[col]
        both = pd.concat([s, y], axis=1).dropna()
        if len(both) < 10:
            continue
        if _numeric(s):
            x = both.iloc[:, 0].astype(float)
            finite = np.isfinite(x)
            if x[finite].nunique() < 2:
                continue
            corr = float(np.corrcoef(x[finite], both.iloc[:, 1][finite])[0, 1])
            if np.isfinite(corr) and abs(corr) >= max_abs_corr:
                failures.append(
                    _fail(
                        col,
                        "target_leakage",
                        f"correlation with '{target}' is {corr:+.4f} (|r| >= "
                        f"{max_abs_corr}); the feature leaks the label",
                    )
                )
        else:
            groups = both.groupby(both.columns[0], observed=True)[both.columns[1]]
            if (
                groups.ngroups >= 2
                and (groups.nunique() == 1).all()
                and groups.ngroups <= max(2, len(both) // 10)
            ):
                failures.append(
                    _fail(
                        col,
                        "target_leakage",
                        f"each value of '{col}' maps to a single '{target}' "
                        "class; the feature leaks the label",
                    )
                )
    return failures
