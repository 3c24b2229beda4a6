"""The bad-input catalog: each case goes through the real training flow (or the CLI for
inference) and must end in a clear error naming the file, the column and the rule, with no
model registered and the input file left byte-for-byte as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from honing.data import file_md5
from honing.exceptions import ConfigError, DataLoadError, DataValidationError

pytestmark = [pytest.mark.data, pytest.mark.integration, pytest.mark.slow]


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[pd.DataFrame, Path], Path]  # writes the bad file, returns its path
    error: type[Exception]
    column: str | None
    rule: str


def _csv(df: pd.DataFrame, path: Path, **kw) -> Path:
    df.to_csv(path, index=False, **kw)
    return path


def _bytes(data: bytes, path: Path) -> Path:
    path.write_bytes(data)
    return path


def _truncate(df: pd.DataFrame, path: Path) -> Path:
    text = df.to_csv(index=False)
    path.write_text(text[: text.rfind(",", 0, len(text) - 40)])
    return path


def _latin1(df: pd.DataFrame, path: Path) -> Path:
    bad = df.assign(payment_method=df["payment_method"].replace("Mailed check", "Chèque"))
    path.write_bytes(bad.to_csv(index=False).encode("latin-1"))
    return path


def _imbalanced(df: pd.DataFrame, path: Path) -> Path:
    yes = df[df["churn"] == "Yes"].head(20)
    return _csv(pd.concat([df[df["churn"] == "No"], yes]), path)


CASES = [
    Case("empty-file", lambda d, p: _bytes(b"", p), DataLoadError, None, "empty"),
    Case(
        "header-only",
        lambda d, p: _bytes((",".join(d.columns) + "\n").encode(), p),
        DataLoadError,
        None,
        "no rows",
    ),
    Case("truncated-csv", _truncate, DataLoadError, None, "truncated"),
    Case(
        "corrupt-parquet",
        lambda d, p: _bytes(b"PAR1\x00\x01garbage", p.with_suffix(".parquet")),
        DataLoadError,
        None,
        "parquet",
    ),
    Case(
        "wrong-delimiter", lambda d, p: _csv(d, p, sep=";"), DataLoadError, None, "comma-separated"
    ),
    Case("wrong-encoding", _latin1, DataLoadError, None, "UTF-8"),
    Case(
        "duplicated-column",
        lambda d, p: _bytes(d.to_csv(index=False).replace("tenure,", "contract,", 1).encode(), p),
        DataLoadError,
        "contract",
        "column names must be unique",
    ),
    Case(
        "missing-column",
        lambda d, p: _csv(d.drop(columns=["contract"]), p),
        DataValidationError,
        "contract",
        "expect_table_columns_to_match_set",
    ),
    Case(
        "extra-column",
        lambda d, p: _csv(d.assign(notes="x"), p),
        DataValidationError,
        "notes",
        "expect_table_columns_to_match_set",
    ),
    Case(
        "renamed-column",
        lambda d, p: _csv(d.rename(columns={"tenure": "tenure_months"}), p),
        DataValidationError,
        "tenure_months",
        "expect_table_columns_to_match_set",
    ),
    Case(
        "wrong-dtype",
        lambda d, p: _csv(d.assign(monthly_charges=d["monthly_charges"].map("${:.2f}".format)), p),
        DataValidationError,
        "monthly_charges",
        "expect_column_values_to_be_in_type_list",
    ),
    Case(
        "nan-in-feature",
        lambda d, p: _csv(d.assign(tenure=d["tenure"].where(d.index % 5 != 0)), p),
        DataValidationError,
        "tenure",
        "expect_column_values_to_not_be_null",
    ),
    Case(
        "inf-in-feature",
        lambda d, p: _csv(
            d.assign(monthly_charges=d["monthly_charges"].where(d.index != 7, np.inf)), p
        ),
        DataValidationError,
        "monthly_charges",
        "honing.no_infinite_values",
    ),
    Case(
        "null-labels",
        lambda d, p: _csv(d.assign(churn=d["churn"].where(d.index % 9 != 0)), p),
        DataValidationError,
        "churn",
        "expect_column_values_to_not_be_null",
    ),
    Case(
        "single-class-label",
        lambda d, p: _csv(d.assign(churn="No"), p),
        DataValidationError,
        "churn",
        "honing.label_has_two_classes",
    ),
    Case(
        "unseen-label",
        lambda d, p: _csv(d.assign(churn=d["churn"].replace("Yes", "Y")), p),
        DataValidationError,
        "churn",
        "expect_column_values_to_be_in_set",
    ),
    Case(
        "constant-column",
        lambda d, p: _csv(d.assign(senior_citizen=0), p),
        DataValidationError,
        "senior_citizen",
        "honing.not_constant",
    ),
    Case("extreme-imbalance", _imbalanced, DataValidationError, "churn", "honing.class_balance"),
    Case(
        "duplicate-rows",
        lambda d, p: _csv(pd.concat([d, d.head(800)]), p),
        DataValidationError,
        None,
        "honing.duplicate_rows",
    ),
    Case(
        "target-leak",
        lambda d, p: _csv(d.assign(paperless_billing=(d["churn"] == "Yes").astype(int)), p),
        DataValidationError,
        "paperless_billing",
        "honing.target_leakage",
    ),
    Case(
        "feature-named-like-an-output",
        lambda d, p: _csv(d.assign(probability=d["tenure"] / 100), p),
        DataValidationError,
        "probability",
        "honing.not_named_like_an_output",
    ),
]


@pytest.fixture
def flow_in(project, prefect_harness, monkeypatch):
    from honing_flows.flows.training import training_pipeline

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()

    def run(config: Path):
        return training_pipeline(
            config_path=str(config), env_path=str(project["env"]), repo=str(project["root"])
        )

    yield run
    mlflow.set_tracking_uri(before)


def _no_model(project) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project['root'] / 'mlflow.db'}")
    assert client.search_registered_models() == []


def test_every_quality_rule_has_a_bad_input_case():
    """The catalog follows the product's rule table: a new quality rule without a case here
    fails (names are unique, so each case is its own test)."""
    from honing.validation import RULES

    assert {f"honing.{rule}" for rule in RULES} <= {c.rule for c in CASES}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_training_input(case: Case, project, flow_in, churn_df):
    # neutral file names: the rule and column words must come from the error, not the path
    n = CASES.index(case)
    bad = case.write(churn_df, project["root"] / "data" / f"input{n}.csv")
    cfg = yaml.safe_load(project["config"].read_text())
    cfg["data"]["path"] = str(bad)
    config = project["root"] / "configs" / f"run{n}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    before = file_md5(bad)

    with pytest.raises(case.error) as exc:
        flow_in(config)
    msg = str(exc.value)
    assert str(bad) in msg, msg
    assert case.rule in msg, msg
    if case.column:
        assert case.column in msg, msg
    report = getattr(exc.value, "report", None)
    if report is not None and hasattr(report, "failures"):  # the same failure names both
        assert any(  # a table-level rule names its columns in its details
            case.rule in f.rule
            and (case.column is None or case.column in (f.column, *f.details.split("'")))
            for f in report.failures
        ), report.failures
    assert file_md5(bad) == before
    _no_model(project)


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda c: c["search"].update(n_trials=5), "search.n_trials"),
        (lambda c: c["split"].update(test_size=0), "split.test_size"),
        (lambda c: c.update(time_budget_s=float("inf")), "time_budget_s"),
        (lambda c: c["registry"].update(champion_alias="latest"), "registry.champion_alias"),
    ],
    ids=["config-unknown-key", "config-out-of-range", "config-infinite", "config-reserved-alias"],
)
def test_bad_config(edit, where, project, flow_in):
    cfg = yaml.safe_load(project["config"].read_text())
    edit(cfg)
    config = project["root"] / "configs" / "bad.yaml"
    config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as exc:
        flow_in(config)
    assert str(config) in str(exc.value) and where in str(exc.value)
    _no_model(project)


def test_unseen_category_at_inference(project, flow_in, churn_df, monkeypatch):
    from honing_flows.cli.flows import app

    result = flow_in(project["config"])  # a champion to serve
    assert result.promoted
    batch = churn_df.drop(columns=["churn"]).head(30)
    batch.loc[batch.index[3], "contract"] = "Lifetime"
    path = project["root"] / "batch.csv"
    batch.to_csv(path, index=False)
    out = project["root"] / "predictions.csv"
    monkeypatch.chdir(project["root"])

    def predict():
        args = [
            "predict",
            str(path),
            "--out",
            str(out),
            "--config",
            str(project["config"]),
            "--env",
            str(project["env"]),
        ]
        return CliRunner().invoke(app, args)

    res = predict()
    text = " ".join(res.output.split())
    assert res.exit_code == 1, text
    assert str(path) in text.replace(" ", "") or path.name in text
    assert "contract" in text and "expect_column_values_to_be_in_set" in text
    assert "Lifetime" in text
    assert not out.exists()

    good = churn_df.drop(columns=["churn"]).head(30)
    good.to_csv(path, index=False)
    res = predict()
    assert res.exit_code == 0, res.output
    scored = pd.read_csv(out)
    assert len(scored) == 30 and set(scored["prediction"]) <= {"No", "Yes"}
    assert scored["probability"].between(0, 1).all()

    # a batch column named like an output would be written twice: refused, naming both
    good.assign(prediction="?").to_csv(path, index=False)
    out.unlink()
    res = predict()
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "column 'prediction'" in text and "outputs" in text, text
    assert not out.exists()
