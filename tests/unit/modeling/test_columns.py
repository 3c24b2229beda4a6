"""Real-world columns: dates expanded into calendar features, high-cardinality categoricals
target- or frequency-encoded, identifier-like text flagged and dropped by ``honing init``,
and multiclass targets encoded and profiled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.config import FeaturesConfig, QualityConfig, parse_config
from honing.data import encode_target
from honing.exceptions import DataValidationError
from honing.modeling.features import (
    DATE_PARTS,
    DATE_WIDTH,
    DateFeatures,
    build_preprocessor,
    categorical_positions,
    detect_dates,
    detect_identifiers,
    infer_columns,
)
from honing.modeling.training import ModelSpec, TrainingSetup, make_model
from honing.validation.profiling import flag_columns, profile_config, to_yaml


def _table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    city = rng.choice([f"city{i:03d}" for i in range(60)], n)  # 60 values: high cardinality
    df = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "signup": days.strftime("%Y-%m-%d"),
            "city": city,
            "plan": rng.choice(["a", "b", "c"], n),
            "customer_id": [f"C{i:06d}" for i in range(n)],
        }
    )
    # the label depends on the month (a calendar effect) and on the city
    month = days.month.to_numpy()
    city_effect = np.array([int(c[-1]) % 2 for c in city])
    df["label"] = np.where((month >= 7) & (city_effect == 1), "yes", "no")
    df.loc[::17, "signup"] = None  # missing dates are imputed
    return df


def test_dates_are_detected_and_expanded_into_calendar_parts():
    df = _table()
    assert detect_dates(df) == ["signup"]
    assert detect_dates(pd.DataFrame({"code": ["12", "7", "2024"], "x": [1, 2, 3]})) == []
    Z = DateFeatures().fit(df[["signup"]]).transform(df[["signup"]])
    assert Z.shape == (len(df), DATE_WIDTH)
    first = df["signup"].dropna().index[0]
    when = pd.Timestamp(df.loc[first, "signup"])
    assert Z[first, 0] == when.year and Z[first, 1] == when.month
    assert np.isnan(Z[0, 0])  # a missing date stays missing until the imputer


def test_high_cardinality_columns_are_target_encoded_not_one_hot():
    df = _table()
    X = df.drop(columns=["label", "customer_id"])
    y = (df["label"] == "yes").to_numpy(dtype=int)
    cols = infer_columns(X, FeaturesConfig())
    assert cols.high_cardinality == ["city"] and cols.categorical == ["plan"]
    assert cols.dates == ["signup"] and cols.numeric == ["amount"]
    pre = build_preprocessor(cols, FeaturesConfig(), task="classification").fit(X, y)
    width = pre.transform(X).shape[1]
    assert width == 1 + DATE_WIDTH + 3 + 1  # amount, date parts, one-hot plan, encoded city
    capped = build_preprocessor(
        cols, FeaturesConfig(high_cardinality="frequency", max_onehot_categories=10),
        task="classification",
    ).fit(X, y)  # fmt: skip
    assert capped.transform(X).shape[1] <= 1 + DATE_WIDTH + 3 + 11


def test_boosting_splits_ordinal_categoricals_natively_and_learns_from_dates():
    df = _table(2000)
    X = df.drop(columns=["label", "customer_id"])
    y = (df["label"] == "yes").to_numpy(dtype=int)
    cols = infer_columns(X, FeaturesConfig())
    assert categorical_positions(cols, "ordinal") == [1 + DATE_WIDTH]
    assert categorical_positions(cols, "onehot") == []
    setup = TrainingSetup("classification", cols, FeaturesConfig(), 0, "roc_auc", 5)
    model = make_model(ModelSpec("lightgbm", {"n_estimators": 60}), setup)
    assert model.steps[-1][1].get_params()["categorical_column"] == [1 + DATE_WIDTH]
    model.fit(X.iloc[:1500], y[:1500])
    accuracy = (model.predict(X.iloc[1500:]) == y[1500:]).mean()
    assert accuracy > 0.9  # needs both the month (from the date) and the encoded city
    undated = infer_columns(X.drop(columns=["signup"]), FeaturesConfig())
    no_dates = make_model(
        ModelSpec("lightgbm", {"n_estimators": 60}),
        TrainingSetup("classification", undated, FeaturesConfig(), 0, "roc_auc", 5),
    ).fit(X.iloc[:1500].drop(columns=["signup"]), y[:1500])
    assert (no_dates.predict(X.iloc[1500:].drop(columns=["signup"])) == y[1500:]).mean() < accuracy


def test_init_flags_identifiers_and_dates_and_writes_a_budget_config(tmp_path: Path):
    df = _table()
    flags = flag_columns(df, "label")
    assert flags == {
        "dates": ["signup"],
        "orders_rows": [],  # signups in no order: a random split
        "identifiers": ["customer_id"],
        "high_cardinality": ["city"],
        "constant": [],
        "rule:honing.not_constant": [],
        "rule:honing.no_infinite_values": [],
        "rule:honing.target_leakage": [],
        "rule:honing.not_named_like_an_output": [],
    }
    assert detect_identifiers(df.drop(columns=["label"])) == ["customer_id"]
    raw = profile_config(
        df, name="t", data_path=Path("t.csv"), suite_path=Path("t.json"), target="label",
        budget_s=90, task="classification",
    )  # fmt: skip
    cfg = parse_config(raw, source=Path("t.yaml"), root=tmp_path)
    assert cfg.time_budget_s == 90 and cfg.search.trials_per_family is None
    assert cfg.data.drop_columns == ["customer_id"] and cfg.features.dates == ["signup"]
    assert cfg.split.kind == "random"
    assert {"lightgbm", "xgboost"} <= set(cfg.search.families)
    assert cfg.search.ensemble.enabled and cfg.search.ensemble.selection
    assert "loguniform: [16, 10000]" in to_yaml(raw)  # short lists on one line


def test_init_fits_the_quality_rules_to_the_data(tmp_path: Path):
    df = _table()
    dup = pd.concat([df, df.iloc[: len(df) // 10]], ignore_index=True)  # ~9% duplicates
    raw = profile_config(
        dup,
        name="t",
        data_path=Path("t.csv"),
        suite_path=Path("t.json"),
        target="label",
        task="classification",
    )
    assert raw["validation"]["quality"]["max_duplicate_fraction"] > dup.duplicated().mean()


def test_multiclass_targets_are_encoded_and_profiled(tmp_path: Path):
    y = pd.Series(["b", "a", "c", "a", "b"], name="species")
    codes, classes = encode_target(y, None)
    assert classes == ["a", "b", "c"] and codes.tolist() == [1, 0, 2, 0, 1]
    with pytest.raises(DataValidationError, match="binary"):
        encode_target(y, "a")
    df = pd.DataFrame({"x": range(30), "species": ["a", "b", "c"] * 10})
    raw = profile_config(
        df,
        name="m",
        data_path=Path("m.csv"),
        suite_path=Path("m.json"),
        target="species",
        task="classification",
    )
    cfg = parse_config(raw, source=Path("m.yaml"), root=tmp_path)
    assert cfg.data.positive_label is None and cfg.registry.metric == "roc_auc"


def _breaking(rule: str) -> tuple[pd.DataFrame, str]:
    """A table that breaks ``rule`` of honing.validation.rules as it comes."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)})
    df["label"] = np.where(df["a"] + rng.normal(size=n) > 0, "yes", "no")
    if rule == "not_constant":
        df["site"] = "north"
    elif rule == "empty":
        df["notes"] = np.nan
    elif rule == "no_infinite_values":
        df["ratio"] = np.where(np.arange(n) % 40 == 0, np.inf, rng.random(n))
    elif rule == "target_leakage":
        df["flag"] = (df["label"] == "yes").astype(int)
    elif rule == "duplicate_rows":
        df = pd.concat([df, df.head(60)], ignore_index=True)
    elif rule == "class_balance":
        df.loc[df.index[:397], "label"] = "no"  # 3 of 400 rows are "yes": 0.75%
    elif rule == "not_named_like_an_output":
        df["prediction"] = rng.normal(size=n)  # an earlier model's score, say
    return df, "label"


@pytest.mark.parametrize(
    "rule",
    ["not_constant", "empty", "no_infinite_values", "target_leakage", "duplicate_rows",
     "class_balance", "not_named_like_an_output"],
)  # fmt: skip
def test_init_never_writes_a_rule_its_own_table_breaks(tmp_path: Path, rule: str):
    """What `honing init` writes (suite, rules, dropped columns), then the validation that
    `honing run` starts with, on a table that breaks one rule: it passes."""
    from honing import validation
    from honing.validation.fitted import fitted_rules
    from honing.validation.profiling import profile_suite

    df, target = _breaking(rule)
    broken = validation.check_rules(
        df, target=target, ignore=[], cfg=QualityConfig(), task="classification"
    )
    assert broken  # the table as it comes breaks the default rules
    suite = profile_suite(df, name="t", target=target, task="classification")
    rules, _ = fitted_rules(df, target, "classification")
    raw = profile_config(
        df, name="t", data_path=Path("t.csv"), suite_path=Path("t.json"), target=target,
        task="classification", quality=rules,
    )  # fmt: skip
    cfg = parse_config(raw, source=Path("t.yaml"), root=tmp_path)
    report = validation.validate(
        df, suite, source="t.csv", rules=validation.QualityRules.from_config(cfg)
    )
    assert report.success, report.table()
    validation.gate(report)


def _parts_by_pandas(X: pd.DataFrame) -> np.ndarray:
    """The date parts as pandas' own accessors give them: the reference."""
    out = []
    for col in X.columns:
        t = pd.to_datetime(pd.Series(X[col]), errors="coerce", format="mixed", utc=True)
        out.extend(getattr(t.dt, part).astype("float64") for part in DATE_PARTS)
        out.append((t - pd.Timestamp(0, tz="UTC")).dt.total_seconds() / 86400.0)
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in out])


def test_date_parts_are_exactly_pandas_own_on_every_kind_of_date():
    """DateFeatures computes the parts on the arrays (6 ms a served row with two date
    columns through pandas' accessors, ~1 ms this way): the same float64 values, bit for
    bit, before 1970 and near pandas' bounds, across time zones and resolutions, with
    missing and unparseable values NaN."""
    rng = np.random.default_rng(0)
    ticks = rng.integers(-9 * 10**9, 9 * 10**9, 3000) * 10**9 + rng.integers(0, 10**9, 3000)
    texts = pd.to_datetime(ticks).strftime("%Y-%m-%d %H:%M:%S.%f").tolist() + [
        "2020-02-29", "1969-12-31 23:59:59", "1900-03-01T05:00:00+05:00", "", None, "garbage",
        "2024-12-31T23:59:59Z", "03/04/2021", "2262-04-11", "1677-09-21 00:12:44", "3000-01-01",
    ]  # fmt: skip
    tables = [
        pd.DataFrame({"a": texts, "b": texts[::-1]}),
        pd.DataFrame({"a": pd.to_datetime(ticks[:300]).tz_localize("Europe/Paris",
                                                                   ambiguous="NaT",
                                                                   nonexistent="NaT")}),
        *[pd.DataFrame({"a": pd.Series(pd.to_datetime(ticks[:300]), dtype=f"datetime64[{u}]")})
          for u in ("s", "ms", "us", "ns")],
        pd.DataFrame({"a": [None, None]}),
    ]  # fmt: skip
    for X in tables:
        ours = DateFeatures().fit(X).transform(X)
        assert ours.shape == (len(X), DATE_WIDTH * X.shape[1]) and ours.dtype == np.float64
        np.testing.assert_array_equal(ours, _parts_by_pandas(X))
