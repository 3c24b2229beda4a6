"""Slices and fairness on the churn table: per-slice metrics, their gates, fairlearn's
differences, and the promotion gate's per-slice non-inferiority."""

import math

import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from honing.config import EvaluationConfig, RegistryConfig, SliceGateConfig
from honing.evaluation import evaluate, gate, slices
from honing.exceptions import ModelQualityError
from honing.modeling.decision import DecisionRule, answers
from honing.registry.champion import ChampionScore, decide

CATS = ["contract", "internet_service", "female"]
NUMS = ["tenure", "monthly_charges"]


@pytest.fixture(scope="module")
def fitted(churn_df):
    X = churn_df[CATS + NUMS]
    y = (churn_df["churn"] == "Yes").astype(int).to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), CATS), ("passthrough", NUMS)
        ),
        LogisticRegression(max_iter=2000),
    ).fit(X_train, y_train)
    return model, X_train, X_test, y_train, y_test


def _report(fitted, columns=("contract", "tenure"), sensitive=("female",)):
    model, _, X_test, _, y_test = fitted
    cfg = EvaluationConfig(slices=list(columns), sensitive=list(sensitive))
    return slices.evaluate_slices(
        model, DecisionRule(["No", "Yes"], 0.35, "f1"), X_test, y_test, ["No", "Yes"], cfg,
        metric="roc_auc", task="classification",
    )  # fmt: skip


def test_every_slice_gets_its_rows_and_metrics(fitted):
    report = _report(fitted)
    contract = [s for s in report.slices if s.column == "contract"]
    assert {s.value for s in contract} == {"Month-to-month", "One year", "Two year"}
    assert sum(s.rows for s in contract) == len(fitted[2])
    tenure = [s for s in report.slices if s.column == "tenure"]
    assert len(tenure) == 4  # a numeric column with many values: quartiles
    for s in report.slices:
        assert {"roc_auc", "f1", "accuracy"} <= set(s.metrics)
        assert math.isfinite(s.metrics["accuracy"])
    table = report.table()
    assert len(table["column"]) == len(report.slices) and "roc_auc" in table
    # fairlearn's differences for the sensitive column, between 0 and 1
    diffs = report.fairness["female"]
    assert set(diffs) == {"demographic_parity_difference", "equalized_odds_difference"}
    assert all(0 <= v <= 1 for v in diffs.values())
    assert any("roc_auc by contract" in line for line in report.log_lines())


def test_slice_gates_stop_registration_and_say_which_slice(fitted):
    model, _, X_test, _, y_test = fitted
    report = _report(fitted)
    ev = evaluate(model, X_test, y_test, ["No", "Yes"])
    gate(ev, {}, report, SliceGateConfig(minimum=0.5, max_gap=0.5))  # loose: passes
    with pytest.raises(ModelQualityError) as exc:
        gate(ev, {}, report, SliceGateConfig(max_gap=0.0001, min_rows=50))
    assert "slice contract=" in str(exc.value) and "worse than overall" in str(exc.value)
    with pytest.raises(ModelQualityError, match="demographic_parity_difference"):
        gate(ev, {}, report, SliceGateConfig(max_fairness_difference=1e-6))
    small = slices.slice_gate(report, SliceGateConfig(max_gap=0.0001, min_rows=10_000))
    assert small == []  # slices under min_rows are reported, not gated


def test_promotion_is_refused_when_a_slice_regresses(fitted):
    model, X_train, X_test, y_train, y_test = fitted
    # a challenger that ignores the contract: better nowhere, worse on some contract slices
    blind = make_pipeline(
        make_column_transformer(("passthrough", NUMS)), LogisticRegression(max_iter=2000)
    ).fit(X_train, y_train)
    classes = [0, 1]
    champion = ChampionScore(
        "1", evaluate(model, X_test, y_test, classes), answers=answers(model, X_test, classes)
    )
    registry_cfg = RegistryConfig(model_name="m", gate="point", promotion_margin=1.0)
    evaluation_cfg = EvaluationConfig(
        slices=["contract"], slice_gate=SliceGateConfig(non_inferiority=0.0)
    )
    plain = decide(
        evaluate(blind, X_test, y_test, classes), blind, None, X_test, y_test, champion,
        registry_cfg,
    )  # fmt: skip
    assert plain.promote  # a huge margin lets it through on the overall figure
    sliced = decide(
        evaluate(blind, X_test, y_test, classes), blind, None, X_test, y_test, champion,
        registry_cfg, evaluation=evaluation_cfg,
    )  # fmt: skip
    assert not sliced.promote and "contract=" in sliced.reason
