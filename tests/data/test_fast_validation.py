"""The endpoint's pandas evaluation of a suite agrees with Great Expectations, failure by
failure, on the demo table and on broken copies of it."""

import numpy as np
import pandas as pd
import pytest

from honing.serving.inference import inference_suite
from honing.validation import check_expectations
from honing.validation.fast import check_fast, supported

pytestmark = pytest.mark.data

BROKEN = {
    "clean": lambda d: d,
    "missing column": lambda d: d.drop(columns=["contract"]),
    "extra column": lambda d: d.assign(note="x"),
    "text in a number": lambda d: d.assign(tenure=d["tenure"].astype(str)),
    "unseen category": lambda d: d.assign(
        contract=np.where(np.arange(len(d)) % 7 == 0, "Weekly", d["contract"])
    ),
    "out of range": lambda d: d.assign(monthly_charges=d["monthly_charges"] * 10),
    "nulls": lambda d: d.assign(payment_method=d["payment_method"].where(d.index % 5 != 0)),
    "float flags": lambda d: d.assign(female=d["female"].astype(float)),
    "two faults": lambda d: d.drop(columns=["tenure"]).assign(contract="Weekly"),
}


def _failed(report):
    return sorted((f.column or "", f.rule) for f in report.failures)


@pytest.mark.parametrize("rows", [300, 5])  # 5: a request's size, checked value by value
@pytest.mark.parametrize("case", list(BROKEN))
def test_pandas_and_great_expectations_fail_the_same_rules(case, rows, churn_df, churn_suite):
    features = churn_df.drop(columns=["churn"]).head(rows)
    suite = inference_suite(churn_suite, "churn", [])
    assert supported(suite)
    frame = BROKEN[case](features.copy())
    fast = check_fast(frame, suite, source="request")
    slow = check_expectations(frame, suite, source="request")
    assert _failed(fast) == _failed(slow)
    assert fast.success == (case in ("clean", "extra column", "float flags"))
    # the whole training suite too (row count, label rules)
    full = BROKEN[case](churn_df.head(rows).copy())
    assert _failed(check_fast(full, churn_suite, source="t")) == _failed(
        check_expectations(full, churn_suite, source="t")
    )


def test_a_rule_on_a_missing_column_says_the_column_is_missing_in_both_evaluators(
    churn_df, churn_suite
):
    """GX words a type rule on a column the batch lacks by its own error ("list index out of
    range"); both evaluators say what is wrong instead."""
    frame = churn_df.drop(columns=["churn", "contract"]).head(50)
    suite = inference_suite(churn_suite, "churn", [])
    for report in (
        check_fast(frame, suite, source="b"),
        check_expectations(frame, suite, source="b"),
    ):
        on_it = [f.details for f in report.failures if f.column == "contract"]
        assert on_it and set(on_it) == {"could not be evaluated: column 'contract' is missing"}


def test_a_large_table_is_validated_by_honing_with_the_same_verdicts(churn_df):
    """Over GX_MAX_EXPECTATIONS, validate() evaluates the suite itself: the same failures as
    Great Expectations on a wide table with broken columns, in a fraction of the time."""
    import pandas as pd

    from honing.validation import GX_MAX_EXPECTATIONS, validate
    from honing.validation.profiling import profile_suite

    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(300, 110)), columns=[f"c{i}" for i in range(110)])
    wide["y"] = rng.choice(["a", "b"], 300)
    suite = profile_suite(wide, name="wide", target="y", task="classification")
    assert len(suite["expectations"]) > GX_MAX_EXPECTATIONS
    broken = wide.assign(c3=wide["c3"] * 100, c7="text", c9=None).drop(columns=["c5"])
    fast = validate(broken, suite, source="wide.csv", rules=None)
    assert fast.engine == "honing" and not fast.success
    assert _failed(fast) == _failed(check_expectations(broken, suite, source="wide.csv"))
    small = validate(churn_df.head(300), {**suite, "expectations": suite["expectations"][:5]},
                     source="t", rules=None)  # fmt: skip
    assert small.engine == "great_expectations"
    # a run's budget counts too: 200 expectations at GX's pace (~5 s) are more than 5% of a
    # 60 s run, not of a 600 s one
    mid = {**suite, "expectations": suite["expectations"][:200]}
    assert validate(broken, mid, source="t", rules=None).engine == "great_expectations"
    short = validate(broken, mid, source="t", rules=None, budget_s=60)
    assert short.engine == "honing"
    assert _failed(short) == _failed(check_expectations(broken, mid, source="t"))
    assert validate(broken, mid, source="t", rules=None, budget_s=600).engine == (
        "great_expectations"
    )


def test_great_expectations_is_imported_only_where_the_validation_may_use_it(
    tmp_path, churn_df, churn_suite
):
    """`honing run` preloads Great Expectations (some 2.6 s of CPU at every start) only when
    its suite and budget may have GX evaluate the table (`may_use_gx`), and honing's own
    evaluator never imports it: a suite too long for the budget costs the start nothing."""
    import subprocess
    import sys

    from honing.validation import may_use_gx, save_suite

    suite = save_suite(churn_suite, tmp_path / "churn.json")
    count = len(churn_suite["expectations"])  # GX's pace: 25 ms each, at most 5% of a budget
    assert may_use_gx(suite, None) and may_use_gx(suite, count * 0.5)
    assert not may_use_gx(suite, count * 0.5 - 1)
    assert may_use_gx(tmp_path / "missing.json", 30)  # the validation says why it is missing
    table = tmp_path / "churn.csv"
    churn_df.to_csv(table, index=False)
    code = (
        "import sys, pandas as pd; from honing.validation import load_suite, validate; "
        f"r = validate(pd.read_csv({str(table)!r}), load_suite({str(suite)!r}), source='t', "
        f"rules=None, budget_s={count * 0.5 - 1}); "
        "print(r.engine, r.success, 'great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["honing", "True", "False"], out.stdout + out.stderr


def test_a_wide_table_is_checked_in_numpy_with_the_same_verdicts():
    """2,000 numeric columns: the range checks and the leakage correlations are counted at
    once, and say what the column-by-column path says (a leak, an out-of-range column, a
    constant one, one with missing values)."""
    from honing.config import QualityConfig
    from honing.validation import QualityRules, validate

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(400, 2000)), columns=[f"c{i}" for i in range(2000)])
    df["y"] = (df["c0"] + rng.normal(size=400) > 0).astype(int)
    df["leak"] = df["y"] * 2.0 + rng.normal(scale=0.01, size=400)
    df["flat"] = 1.0
    df.loc[::7, "c5"] = np.nan
    expectations = [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": c, "min_value": -10.0, "max_value": 10.0}, "meta": {}}
        for c in df.columns if c != "y"
    ]  # fmt: skip
    expectations[3]["kwargs"]["max_value"] = 0.0  # c3: half its values above
    suite = {"name": "wide", "expectations": expectations}
    rules = QualityRules("y", "classification", QualityConfig())
    report = validate(df, suite, source="wide.csv", rules=rules)
    failed = {(f.column, f.rule) for f in report.failures}
    assert {c for c, rule in failed if rule == "honing.target_leakage"} == {"leak"}
    assert {c for c, rule in failed if rule == "expect_column_values_to_be_between"} == {"c3"}
    assert ("flat", "honing.not_constant") in failed  # constant: no correlation, its own rule
