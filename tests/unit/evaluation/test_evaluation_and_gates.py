import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from honing.evaluation import EvaluationReport, evaluate, gate, plot_figures
from honing.exceptions import ModelQualityError
from honing.registry.champion import ChampionScore, champion_gate


class FixedModel:
    """A model whose predictions we choose, to check metric arithmetic exactly."""

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)

    def predict_proba(self, X):
        return np.column_stack([1 - self.proba, self.proba])

    def predict(self, X):
        return (self.proba >= 0.5).astype(int)


def _report(**metrics) -> EvaluationReport:
    return EvaluationReport(
        metrics=metrics, confusion_matrix=[[1, 0], [0, 1]], classes=["no", "yes"], n_test=2
    )


def test_evaluate_computes_metrics_exactly():
    y = np.array([0, 0, 1, 1, 1])
    model = FixedModel([0.1, 0.6, 0.7, 0.4, 0.9])
    report = evaluate(model, pd.DataFrame({"x": range(5)}), y, ["no", "yes"])
    m = report.metrics
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert report.confusion_matrix == [[1, 1], [1, 2]]
    assert report.n_test == 5


def test_quality_gate_passes_and_fails_with_named_metrics():
    report = _report(roc_auc=0.81, accuracy=0.70)
    gate(report, {"roc_auc": 0.8})
    with pytest.raises(ModelQualityError) as exc:
        gate(report, {"roc_auc": 0.85, "accuracy": 0.6})
    assert "roc_auc: 0.8100 < minimum 0.8500" in str(exc.value)
    assert "accuracy" not in str(exc.value)
    assert exc.value.report is report


def test_a_threshold_the_champion_misses_too_does_not_stop_a_model_that_scores_no_worse():
    """A retrain on a window the world moved away from, where no model reaches the floor:
    the model goes on (to the champion/challenger gate) when the serving champion misses the
    same limit on the same rows and scores no better; the miss is returned to be said. A
    champion that passes, or scores better, keeps the floor in force, for errors too."""
    floor = {"r2": 0.0}
    challenger = _report(r2=-0.70, rmse=25.7)
    with pytest.raises(ModelQualityError, match="r2"):
        gate(challenger, floor)  # no champion
    (said,) = gate(challenger, floor, champion=_report(r2=-1.87, rmse=63.4))
    assert "r2: -0.7000 < minimum 0.0000" in said and "champion scores -1.8700" in said
    assert gate(challenger, floor, champion=_report(r2=-0.70)) != []  # a tie goes on
    for champion in (_report(r2=0.20), _report(r2=-0.50)):  # passes, or scores better
        with pytest.raises(ModelQualityError, match="r2"):
            gate(challenger, floor, champion=champion)
    ceiling = {"rmse": 20.0}
    assert gate(challenger, ceiling, champion=_report(rmse=63.4))
    with pytest.raises(ModelQualityError, match="rmse: 25.7000 > maximum 20.0000"):
        gate(challenger, ceiling, champion=_report(rmse=24.0))
    assert gate(_report(r2=0.3), floor, champion=_report(r2=-1.0)) == []  # nothing missed


def test_champion_gate_decisions():
    challenger = _report(roc_auc=0.80)
    first = champion_gate(challenger, None, metric="roc_auc", margin=0.0)
    assert first.promote and "no champion" in first.reason

    better = champion_gate(
        challenger, ChampionScore("3", _report(roc_auc=0.79)), metric="roc_auc", margin=0.0
    )
    assert better.promote and better.champion_version == "3"

    tie = champion_gate(
        challenger, ChampionScore("3", _report(roc_auc=0.80)), metric="roc_auc", margin=0.0
    )
    assert tie.promote

    worse = champion_gate(
        challenger, ChampionScore("3", _report(roc_auc=0.81)), metric="roc_auc", margin=0.0
    )
    assert not worse.promote and "champion kept" in worse.reason

    within_margin = champion_gate(
        challenger, ChampionScore("3", _report(roc_auc=0.805)), metric="roc_auc", margin=0.01
    )
    assert within_margin.promote

    unscorable = champion_gate(
        challenger, ChampionScore("3", None, "KeyError: 'tenure'"), metric="roc_auc", margin=0.5
    )
    assert not unscorable.promote and "could not be scored" in unscorable.reason
    assert unscorable.tags()["honing.gate.promoted"] == "false"


def test_champion_gate_rejects_non_finite_metric():
    decision = champion_gate(_report(roc_auc=float("nan")), None, metric="roc_auc", margin=0.0)
    assert not decision.promote


def test_plots_are_real_figures():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200)})
    y = (X["x"] + rng.normal(scale=0.5, size=200) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    report = evaluate(model, X, y, [0, 1])
    figures = plot_figures(model, X, y, report)
    assert set(figures) == {
        "confusion_matrix.png",
        "roc_curve.png",
        "precision_recall.png",
        "calibration.png",
    }
    for fig in figures.values():
        assert fig.axes and fig.axes[0].has_data()


def test_a_confusion_matrix_of_many_classes_is_drawn_as_colours_not_counts():
    """Each cell's count is written up to 30 classes; past that a colour scale stands for
    them (10,000 counts took 7 s to draw at 100 classes, twice per run), and past 60 the
    classes are not named on the axes."""
    from honing.evaluation import EvaluationReport

    def drawn(k):
        cm = (np.eye(k, dtype=int) * 9 + 1).tolist()
        report = EvaluationReport({}, cm, [f"c{i}" for i in range(k)], k * (k + 9))
        return plot_figures(None, None, None, report)["confusion_matrix.png"]

    few, many, most = drawn(8), drawn(45), drawn(150)
    assert len(few.axes[0].texts) == 64 and len(few.axes) == 1
    assert not many.axes[0].texts and len(many.axes) == 2  # the colour bar
    assert [t.get_text() for t in many.axes[0].get_yticklabels()][:2] == ["c0", "c1"]
    assert not [
        t.get_text() for t in most.axes[0].get_yticklabels() if t.get_text().startswith("c")
    ]


def test_constant_model_has_chance_auc():
    X = pd.DataFrame({"x": range(10)})
    y = np.array([0, 1] * 5)
    report = evaluate(DummyClassifier(strategy="prior").fit(X, y), X, y, [0, 1])
    assert report.metrics["roc_auc"] == pytest.approx(0.5)
