"""``honing init``: profile a new table into a pipeline config and an expectation suite.

The generated suite is a starting point written from the data as it is now, in two kinds:

- **contracts** (severity ``critical``: a breach refuses the table): the column set, the types
  (of the columns some row fills: an empty one has none yet), no missing label where the
  sample had none, a feature column the sample always filled filled on at least
  :data:`FEATURE_FILLED` of the rows, the label's values (classification), booleans;
- **statistics of the sample** (severity ``warning``: reported, never refused): numeric ranges
  (widened by a margin), category sets, the share of nulls where some were seen, the row count.
  A world that moves breaks them first: a new month, a count past its old maximum, a category
  not seen yet (encoded as unknown). Time-like columns get no range at all. An accepted batch
  widens them (:func:`honing.monitoring.versions.ingest`).

Review it, then commit it next to the config.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.config import FeaturesConfig, QualityConfig
from honing.data.reading import Reading
from honing.data.target import plain
from honing.data.target import positive_label as positive_label_of
from honing.exceptions import DataValidationError
from honing.modeling.features import detect_dates, detect_identifiers, infer_columns
from honing.validation.expectations import TEXT_TYPES
from honing.validation.fitted import fitted_rules, repeats_are_cases

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float32", "float64", "Float64"]
#: The budget ``honing init`` writes when ``--budget`` is not given, in seconds.
DEFAULT_BUDGET_S = 300.0
#: Trials run side by side (one CPU each): the 2-core machines honing is sized for.
DEFAULT_CONCURRENCY = 2


#: A breach of a contract refuses the table; a breach of a statistic is reported.
CONTRACT, STATISTIC = "critical", "warning"
#: Column names that say "a time": no range is written for them (the next batch is later).
TIME_LIKE = re.compile(
    r"(^|[_\W])(year|yr|month|mon|week|day|date|time|timestamp|ts|hour)s?($|[_\W])", re.I
)


#: The compression techniques ``init`` writes: every one that applies to the families it
#: picks (the MLP-only ones left out).
INIT_TECHNIQUES = ("onnx", "onnx_int8", "onnx_int8_static", "distill", "distill_booster", "trim")


def time_like(name: str) -> bool:
    """Whether a column's name says it holds a time (``year``, ``order_date``, ``ts``...)."""
    return bool(TIME_LIKE.search(str(name)))


#: A feature column the sample always filled must stay this full (a contract): below it,
#: its source is broken; above it, a missing value is imputed as any other.
FEATURE_FILLED = 0.9


def _expect(kind: str, severity: str = CONTRACT, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}, "severity": severity}


def _range(series: pd.Series, margin: float) -> tuple[float, float]:
    lo, hi = float(series.min()), float(series.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    low, high = lo - margin * span, hi + margin * span
    if lo >= 0:
        low = max(0.0, low)
    if pd.api.types.is_integer_dtype(series):
        return math.floor(low), math.ceil(high)
    return round(low, 6), round(high, 6)


def profile_suite(
    df: pd.DataFrame,
    *,
    name: str,
    target: str,
    max_categories: int = 50,
    range_margin: float = 0.1,
    task: str,
    dates: list[str] | None = None,
) -> dict[str, Any]:
    """Build an expectation suite (GX JSON form) describing ``df`` as it is: contracts
    (``critical``) and statistics of the sample (``warning``), see the module's docstring.
    A classification label's value set is a contract, a regression target's range a
    statistic; a column whose name says it holds a time (:func:`time_like`) gets no range,
    and ``dates`` (text columns known to hold dates) no value set."""
    if target not in df.columns:
        raise DataValidationError(
            f"target column '{target}' is not in the data (columns: {list(df.columns)})"
        )
    exps: list[dict[str, Any]] = [
        _expect("expect_table_columns_to_match_set", column_set=list(df.columns), exact_match=True),
        _expect(
            "expect_table_row_count_to_be_between",
            STATISTIC,
            min_value=max(1, len(df) // 2),
            max_value=None,
        ),
    ]
    for col in df.columns:
        s = df[col]
        nulls = float(s.isna().mean())
        if nulls == 0.0 and col == target:
            exps.append(_expect("expect_column_values_to_not_be_null", column=col))
        elif nulls == 0.0:  # a feature: the model imputes a missing value; a mostly empty
            # column is a broken source, a few empty cells are data
            exps.append(
                _expect("expect_column_values_to_not_be_null", column=col, mostly=FEATURE_FILLED)
            )
        else:
            mostly = max(0.0, round(1.0 - 2 * nulls - 0.01, 4))
            exps.append(
                _expect("expect_column_values_to_not_be_null", STATISTIC, column=col, mostly=mostly)
            )
        non_null = s.dropna()
        if non_null.empty and col != target:
            # a column no row fills has no type yet: a later batch may fill it with text as
            # well as numbers (a field recorded from some month on); init drops it
            continue
        is_label = col == target and task == "classification"
        moving = col in (dates or ()) or (col != target and time_like(col))
        if pd.api.types.is_bool_dtype(s):
            exps.append(
                _expect("expect_column_values_to_be_in_set", column=col, value_set=[False, True])
            )
        elif pd.api.types.is_numeric_dtype(s):
            exps.append(
                _expect(
                    "expect_column_values_to_be_in_type_list", column=col, type_list=NUMERIC_TYPES
                )
            )
            uniques = non_null.unique()
            if is_label or (
                col != target and len(uniques) <= 2 and pd.api.types.is_integer_dtype(s)
            ):
                exps.append(
                    _expect(
                        "expect_column_values_to_be_in_set",
                        CONTRACT if is_label else STATISTIC,
                        column=col,
                        value_set=plain(list(uniques)),
                    )
                )
            elif not moving and len(non_null) and np.isfinite(non_null.astype(float)).all():
                # (a column with infinities gets no range: init drops it, see flag_columns)
                lo, hi = _range(non_null, range_margin)
                exps.append(
                    _expect(
                        "expect_column_values_to_be_between",
                        STATISTIC,
                        column=col,
                        min_value=lo,
                        max_value=hi,
                    )
                )
        else:
            exps.append(
                _expect("expect_column_values_to_be_in_type_list", column=col, type_list=TEXT_TYPES)
            )
            uniques = non_null.unique()
            if is_label or (col != target and not moving and len(uniques) <= max_categories):
                exps.append(
                    _expect(
                        "expect_column_values_to_be_in_set",
                        CONTRACT if is_label else STATISTIC,
                        column=col,
                        value_set=plain(list(uniques)),
                    )
                )
    meta = {
        "generated_by": "honing init",
        "severities": "critical: a contract, whose breach refuses the table; warning: a "
        "statistic of the sample, reported and widened by accepted batches",
    }
    return {"name": name, "expectations": exps, "meta": meta}


#: The quality rules a feature column can break whatever the config says, and what ``init``
#: does about each: the column is dropped, with this reason.
COLUMN_RULES = {
    "honing.not_constant": "empty: no row holds a value",
    "honing.no_infinite_values": "holds infinite values, which no model can use",
    "honing.target_leakage": "predicts the label (almost) perfectly: it leaks it",
    "honing.not_named_like_an_output": "named like a column the model's answer adds "
    "(prediction, probability, probability_<class>, threshold): rename it to keep it",
}


def flag_columns(
    df: pd.DataFrame, target: str, task: str = "classification"
) -> dict[str, list[str]]:
    """What ``honing init`` tells the user about the feature columns: dates (expanded into
    calendar features), identifier-like text (dropped), high-cardinality categoricals
    (target-encoded), and the columns that break a quality rule of
    :mod:`honing.validation.rules` (:data:`COLUMN_RULES`: dropped, so that the config
    ``init`` writes passes its own table), keyed ``rule:<rule>``."""
    from honing.validation import check_rules

    X = df.drop(columns=[target])
    dates = detect_dates(X)
    identifiers = detect_identifiers(X, dates=dates)
    broken = check_rules(df, target=target, ignore=identifiers, cfg=QualityConfig(), task=task)
    flags: dict[str, list[str]] = {f"rule:{rule}": [] for rule in COLUMN_RULES}
    constant: list[str] = []
    for failure in broken:
        if failure.rule in COLUMN_RULES and failure.column and failure.column != target:
            # one value in every row is kept (honing.validation.fitted.constant_columns); an
            # empty column, which breaks the same rule, is dropped
            if failure.rule == "honing.not_constant" and df[failure.column].notna().any():
                constant.append(failure.column)
            else:
                flags[f"rule:{failure.rule}"].append(failure.column)
    dropped = [*identifiers, *(c for rule in COLUMN_RULES for c in flags[f"rule:{rule}"])]
    columns = infer_columns(X.drop(columns=dropped), FeaturesConfig(dates=dates))
    kept = [d for d in dates if d not in dropped]
    return {
        "dates": kept,
        "orders_rows": [c for c in kept if orders_rows(df, c)][:1],
        "identifiers": identifiers,
        "high_cardinality": columns.high_cardinality,
        "constant": constant,
        **flags,
    }


#: A date column orders the rows when it has at least this many distinct times.
MIN_ORDERING_TIMES = 10


def orders_rows(df: pd.DataFrame, column: str) -> bool:
    """Whether the rows of ``df`` are in the order of the date column ``column`` (oldest or
    newest first), every row with a time and at least :data:`MIN_ORDERING_TIMES` of them: a
    table recorded over time, whose newest rows a model will meet next. ``init`` then
    proposes ``split.kind: time`` on it."""
    from honing.data import time_values

    try:
        when = time_values(df, column, "split.time_column")
    except DataValidationError:  # a row without a time cannot be placed in time
        return False
    if when.nunique() < MIN_ORDERING_TIMES:
        return False
    return bool(when.is_monotonic_increasing or when.is_monotonic_decreasing)


def dropped_columns(flags: dict[str, list[str]]) -> dict[str, str]:
    """The columns ``init`` drops, each with its reason (:func:`flag_columns`' flags)."""
    out = {c: "identifier-like text: mostly distinct values" for c in flags["identifiers"]}
    for rule, reason in COLUMN_RULES.items():
        out.update({c: reason for c in flags.get(f"rule:{rule}", []) if c not in out})
    return out


def profile_config(
    df: pd.DataFrame,
    *,
    name: str,
    data_path: Path,
    suite_path: Path,
    target: str,
    positive_label: Any | None = None,
    drop_columns: list[str] | None = None,
    task: str,
    budget_s: float = DEFAULT_BUDGET_S,
    flags: dict[str, list[str]] | None = None,
    quality: dict[str, Any] | None = None,
    reading: Reading | None = None,
) -> dict[str, Any]:
    """A budget-driven pipeline config (as a plain mapping, ready to dump as YAML) for a newly
    profiled table: the whole run keeps to ``budget_s``, the search runs until its share is
    spent, starting from the portfolio of known-good configurations, and ensemble selection
    is on. Dates are named, identifier-like text columns dropped (``flags``: what
    :func:`flag_columns` found, profiled here when None; ``quality``: the rules
    :func:`fitted_rules` fitted, likewise; ``reading``: the markers of missing values and
    the thousands separator ``df`` was read with, written into the config)."""
    from honing.search.portfolio import default_families

    flags = flags if flags is not None else flag_columns(df, target, task)
    drop = list(dict.fromkeys([*(drop_columns or []), *dropped_columns(flags)]))
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(df[target]):
            raise DataValidationError(
                f"column '{target}': regression needs a numeric target, found {df[target].dtype}"
            )
        metric, label = "rmse", None
        thresholds: dict[str, float] = {"r2": 0.0}
    else:
        metric, thresholds = "roc_auc", {"roc_auc": 0.6}
        label = positive_label_of(df, target, positive_label)
    data: dict[str, Any] = {"path": str(data_path), "target": target}
    if label is not None:
        data["positive_label"] = label
    data["drop_columns"] = drop
    if reading is not None and reading.missing_values:
        data["missing_values"] = list(reading.missing_values)
    if reading is not None and reading.thousands:
        data["thousands"] = reading.thousands
    if quality is None:
        quality = fitted_rules(df, target, task)[0]
    # binary tasks: a threshold tuned on out-of-fold predictions, calibration when it helps
    decision = (
        {"decision": {"objective": "auto", "calibration": "auto"}} if label is not None else {}
    )
    return {
        "name": name,
        "task": task,
        "time_budget_s": float(budget_s),
        "data": data,
        "validation": {"suite": str(suite_path), "quality": quality},
        # a table whose rows must repeat keeps its repeats: they are its frequencies
        "cleaning": {"deduplicate": not repeats_are_cases(df), "drop_invalid_labels": True},
        "split": _split(flags.get("orders_rows", [])),
        "features": {
            "dates": [c for c in flags["dates"] if c not in drop],
            "numeric_imputer": "median",
            "scaler": "standard",
            "encoder": "auto",
            "max_onehot_categories": 25,
            "high_cardinality": "target",
        },
        "search": {
            "families": default_families(task),
            "algorithm": "tpe",
            "portfolio": True,
            "trials_per_family": None,
            "validation": "auto",
            "cv_folds": 5,
            "metric": metric,
            "seed": 42,
            "max_concurrent_trials": DEFAULT_CONCURRENCY,
            "cpus_per_trial": 1,
            "ensemble": {"enabled": True, "selection": True, "methods": []},
        },
        "evaluation": {"thresholds": thresholds},
        **decision,
        "compression": {
            "techniques": list(INIT_TECHNIQUES),
            "metric": "accuracy" if task == "classification" else "r2",
        },
        "registry": {
            "model_name": f"honing-{name}",
            "metric": metric,
            "promotion_margin": 0.0,
            "gate": "statistical",
            "confidence": 0.95,
        },
        # an error's units are the target's: its allowed rise is a share of its value
        "monitoring": {"metric": metric, **_allowed_drop(metric), "retrain_after_new_rows": 1.0},
        "tracking": {"experiment": f"honing-{name}"},
    }


def _split(ordering: list[str]) -> dict[str, Any]:
    """A random split, or a time split on the date column that orders the rows: the model
    is then tested on the newest rows, and validated forward (:func:`orders_rows`)."""
    if ordering:
        return {"kind": "time", "time_column": ordering[0], "test_size": 0.2, "seed": 42}
    return {"test_size": 0.2, "seed": 42}


def split_note(flags: dict[str, list[str]]) -> str | None:
    """What ``init`` says of the split it proposed, when it is a time split."""
    if not flags.get("orders_rows"):
        return None
    column = flags["orders_rows"][0]
    return (
        f"kind: time proposed by init: the rows are in the order of '{column}', so the test "
        "split is the newest 20% and every inner validation is forward (set kind: random, "
        "without time_column, for a shuffled split)"
    )


def _allowed_drop(metric: str) -> dict[str, float]:
    """What ``init`` writes for the monitored metric's allowed worsening: 0.05 of a bounded
    score (five points of ROC-AUC), 10% of an unbounded error (RMSE, MAE, log loss)."""
    from honing.metrics import METRICS

    if METRICS[metric].bounded:
        return {"max_metric_drop": 0.05}
    return {"max_metric_drop_relative": 0.1}


def to_yaml(
    raw: dict[str, Any], *, header: str = "", comments: dict[str, str] | None = None
) -> str:
    """A config mapping as YAML, short lists (distributions, value sets) on one line;
    ``comments`` are written above the line of each named key."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flow = all(not isinstance(v, dict | list) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    _Dumper.add_representer(list, _list)
    body = yaml.dump(raw, Dumper=_Dumper, sort_keys=False, width=100)
    lines = []
    for line in body.splitlines():
        key = line.strip().split(":", 1)[0]
        if comments and key in comments:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}# {comments[key]}")
        lines.append(line)
    return "".join(f"# {line}\n" for line in header.splitlines()) + "\n".join(lines) + "\n"


def widen_suite(
    suite: dict[str, Any], df: pd.DataFrame, failures: list[Any], *, range_margin: float = 0.1
) -> tuple[dict[str, Any], list[str]]:
    """The suite with the statistics (``warning`` expectations) that ``failures`` name widened
    to take in ``df`` (an accepted table): a range to its values (by the same margin as
    ``init``'s), a category set to its values. Returns the new suite and one line per change;
    contracts are never touched."""
    import copy

    out = copy.deepcopy(suite)
    moved = {(f.column, f.rule) for f in failures if f.severity == STATISTIC and f.column}
    changes = []
    for exp in out["expectations"]:
        column = exp.get("kwargs", {}).get("column")
        if exp.get("severity") != STATISTIC or (column, exp["type"]) not in moved:
            continue
        values, kw = df[column].dropna(), exp["kwargs"]
        if exp["type"] == "expect_column_values_to_be_between" and len(values):
            lo, hi = _range(values, range_margin)
            low, high = min(kw["min_value"], lo), max(kw["max_value"], hi)
            changes.append(
                f"{column}: range [{kw['min_value']}, {kw['max_value']}] -> [{low}, {high}]"
            )
            kw["min_value"], kw["max_value"] = low, high
        elif exp["type"] == "expect_column_values_to_be_in_set":
            new = [v for v in plain(list(values.unique())) if v not in kw["value_set"]]
            changes.append(f"{column}: values {new[:10]} added to its set")
            kw["value_set"] = plain([*kw["value_set"], *new])
    return out, changes
