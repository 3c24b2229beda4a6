"""The bundled demo data and its expectation suite."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from honing.data import file_md5, write_table
from honing.validation import gate, validate
from tests.conftest import ROOT

pytestmark = pytest.mark.data


def test_demo_table_is_the_real_telco_churn(churn_df: pd.DataFrame):
    assert churn_df.shape == (7043, 20)
    assert "rownames" not in churn_df.columns
    assert set(churn_df["churn"]) == {"No", "Yes"}
    assert churn_df["total_charges"].isna().sum() == 11  # real missing values
    assert 0.25 < (churn_df["churn"] == "Yes").mean() < 0.28


def test_demo_file_matches_the_dvc_lock(churn_df: pd.DataFrame, tmp_path: Path):
    """Regenerating the demo file gives exactly the content DVC tracks."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    out = next(o for o in lock["stages"]["prepare_data"]["outs"] if o["path"] == "data/churn.csv")
    path = write_table(churn_df, tmp_path / "churn.csv")
    assert file_md5(path) == out["md5"]
    assert path.stat().st_size == out["size"]


def test_suite_passes_on_demo_data(churn_df, churn_suite):
    report = validate(churn_df, churn_suite, source="data/churn.csv", rules=None)
    assert report.success, report.table()
    assert report.evaluated == len(churn_suite["expectations"])
    gate(report)


@pytest.mark.parametrize(
    ("mutate", "column", "rule"),
    [
        (lambda d: d.drop(columns=["tenure"]), None, "expect_table_columns_to_match_set"),
        (
            lambda d: d.assign(monthly_charges=d["monthly_charges"].astype(str) + " USD"),
            "monthly_charges",
            "expect_column_values_to_be_in_type_list",
        ),
        (
            lambda d: d.assign(churn=d["churn"].where(d.index % 50 != 0)),
            "churn",
            "expect_column_values_to_not_be_null",
        ),
        (
            lambda d: d.assign(churn=d["churn"].replace("Yes", "Maybe")),
            "churn",
            "expect_column_values_to_be_in_set",
        ),
        (
            lambda d: d.assign(tenure=-d["tenure"] - 1),
            "tenure",
            "expect_column_values_to_be_between",
        ),
        (
            lambda d: d.assign(contract=d["contract"].replace("One year", "Lifetime")),
            "contract",
            "expect_column_values_to_be_in_set",
        ),
    ],
)
def test_suite_catches_bad_demo_batches(churn_df, churn_suite, mutate, column, rule):
    report = validate(mutate(churn_df), churn_suite, source="bad.csv", rules=None)
    assert any(f.rule == rule and f.column == column for f in report.failures), report.table()


def test_multiclass_demo_matches_the_dvc_lock_and_its_suite(tmp_path: Path):
    """The penguins table (multiclass demo) regenerates to the bytes DVC tracks, and passes
    the suite `honing init` wrote for it."""
    from honing.data import load_table
    from honing.data.demo_data import fetch_penguins
    from honing.validation import load_suite

    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    out = lock["stages"]["prepare_penguins"]["outs"][0]
    path = write_table(fetch_penguins(), tmp_path / "penguins.csv")
    assert file_md5(path) == out["md5"] and path.stat().st_size == out["size"]
    table = load_table(path)
    assert sorted(table["species"].unique()) == ["Adelie", "Chinstrap", "Gentoo"]
    suite = load_suite(ROOT / "expectations" / "penguins.json")
    gate(validate(table, suite, source="data/penguins.csv", rules=None))
