from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.config import MonitoringConfig
from honing.monitoring import (
    ColumnDrift,
    DriftReport,
    drift_report,
    gate,
    unseen_rows,
    with_performance,
    with_volume,
)


def _frames(shift: float):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "a": rng.normal(size=1500),
            "b": rng.normal(size=1500),
            "c": rng.choice(["x", "y"], size=1500),
        }
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(shift, 1, size=1500),
            "b": rng.normal(size=1500),
            "c": rng.choice(["x", "y"], size=1500),
        }
    )
    return ref, cur


def test_drift_report_finds_the_shifted_column(tmp_path: Path):
    ref, cur = _frames(shift=1.5)
    report = drift_report(
        ref, cur, numeric=["a", "b"], categorical=["c"], html_path=tmp_path / "drift.html"
    )
    assert report.drifted == ["a"]
    assert report.drifted_share == 1 / 3
    assert (tmp_path / "drift.html").stat().st_size > 10_000
    same = drift_report(ref, _frames(shift=0.0)[1], numeric=["a", "b"], categorical=["c"])
    assert same.drifted == []


def _report(share: float, perf=None, ref=None) -> DriftReport:
    cols = [ColumnDrift("a", "K-S p_value", 0.001, 0.05, share > 0)]
    return with_performance(DriftReport(100, 100, cols, share), perf or {}, ref or {})


def test_gate_on_drift_share_and_metric_drop():
    cfg = MonitoringConfig(drift_share=0.3, metric="roc_auc", max_metric_drop=0.05)
    assert not gate(_report(0.0), cfg).retrain
    decision = gate(_report(0.5), cfg)
    assert decision.retrain and "50% of columns drifted" in decision.reasons[0]
    dropped = gate(_report(0.0, {"roc_auc": 0.70}, {"roc_auc": 0.80}), cfg)
    assert dropped.retrain and "roc_auc fell by 0.1000" in dropped.reasons[0]
    assert not gate(_report(0.0, {"roc_auc": 0.78}, {"roc_auc": 0.80}), cfg).retrain


def test_a_batch_of_a_few_rows_decides_nothing():
    """One row makes every drift test fire (and any metric swing): it is reported only."""
    cfg = MonitoringConfig(drift_share=0.3, min_rows=30)
    cols = [ColumnDrift("a", "K-S p_value", 0.0, 0.05, True)]
    tiny = with_performance(DriftReport(1000, 1, cols, 1.0), {"roc_auc": 0.0}, {"roc_auc": 0.80})
    decision = gate(tiny, cfg)
    assert not decision.retrain
    assert decision.reasons == [
        "the batch has 1 rows, fewer than monitoring.min_rows (30): its drift and metrics "
        "are reported, not acted on"
    ]
    assert gate(replace(tiny, current_rows=30), cfg).retrain


def test_a_one_row_batch_is_reported_without_numpy_warnings():
    """Evidently correlates the batch's columns: on one row numpy warned of zero degrees of
    freedom and a division by zero, on the screen of `honing monitor`. The report is made,
    quietly, with the batch's one row."""
    import warnings

    ref, cur = _frames(shift=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = drift_report(ref, cur.head(1), numeric=["a", "b"], categorical=["c"])
    assert report.current_rows == 1 and {d.column for d in report.columns} == {"a", "b", "c"}


def test_a_metric_undefined_on_the_batch_leaves_the_decision_to_the_estimate():
    """A labelled batch of one class has no ROC-AUC: that is no drop and no hold."""
    cfg = MonitoringConfig(metric="roc_auc", max_metric_drop=0.05)
    one_class = DriftReport(
        100, 100, [], 0.0,
        performance={"roc_auc": float("nan"), "accuracy": 0.9},
        estimated={"roc_auc": 0.70},
        reference_performance={"roc_auc": 0.80},
    )  # fmt: skip
    decision = gate(one_class, cfg)
    assert decision.retrain and decision.reasons[0].startswith("estimated roc_auc fell")
    assert "the measured roc_auc is undefined on this batch: not deciding" in decision.warnings
    steady = replace(one_class, estimated={"roc_auc": 0.79})
    assert not gate(steady, cfg).retrain


def test_a_relative_allowed_drop_scales_with_the_error_and_init_writes_one():
    """RMSE is in the target's units: 0.05 would retrain on any batch of house prices. A
    relative allowance is a share of the value at registration; `init` writes one for errors
    and keeps the absolute one for bounded scores."""
    from honing.validation.profiling import profile_config

    cfg = MonitoringConfig(metric="rmse", max_metric_drop_relative=0.1)
    assert cfg.allowed_drop(2000.0) == pytest.approx(200.0)
    assert not gate(_report(0.0, {"rmse": 2150.0}, {"rmse": 2000.0}), cfg).retrain
    rose = gate(_report(0.0, {"rmse": 2300.0}, {"rmse": 2000.0}), cfg)
    assert (
        rose.retrain
        and "rmse rose by 300.0000" in rose.reasons[0]
        and "allowed 200" in (rose.reasons[0])
    )
    absolute = MonitoringConfig(metric="rmse")  # the default, in the target's units
    assert gate(_report(0.0, {"rmse": 2000.1}, {"rmse": 2000.0}), absolute).retrain
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.normal(size=200)})
    table["y"] = table["x"] * 3 + rng.normal(size=200)
    written = profile_config(
        table, name="r", data_path=Path("r.csv"), suite_path=Path("r.json"), target="y",
        task="regression",
    )  # fmt: skip
    assert written["monitoring"] == {
        "metric": "rmse",
        "max_metric_drop_relative": 0.1,
        "retrain_after_new_rows": 1.0,
    }
    table["y"] = np.where(table["x"] + rng.normal(size=200) > 0, "a", "b")
    written = profile_config(
        table, name="c", data_path=Path("c.csv"), suite_path=Path("c.json"), target="y",
        task="classification",
    )  # fmt: skip
    assert written["monitoring"] == {
        "metric": "roc_auc",
        "max_metric_drop": 0.05,
        "retrain_after_new_rows": 1.0,
    }


def test_unseen_rows_counts_new_labelled_rows_once_however_they_were_read():
    trained = pd.DataFrame({"x": [1, 2, 3], "c": ["a", "b", "a"], "y": [0, 1, 0]})
    # the newest version: the trained rows (one read back as floats), and two new ones
    newest = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "c": ["a", "b", "a", "b", "b"], "y": [0, 1, 0, 1, 1]}
    )
    # the batch: one row already ingested, one new, one new but not yet labelled
    batch = pd.DataFrame({"x": [5, 6, 7], "c": ["b", "a", "a"], "y": [1.0, 0.0, None]})
    assert unseen_rows(trained, [newest, batch], "y") == 3
    # a row repeated within a batch is two rows; one already in an earlier table, one
    twice = pd.DataFrame({"x": [8, 8, 4], "c": ["a", "a", "b"], "y": [1, 1, 1]})
    assert unseen_rows(trained, [newest, twice], "y") == 4
    assert unseen_rows(trained, [trained], "y") == 0
    assert unseen_rows(trained, [batch.drop(columns="y")], "y") == 0  # no labels: none


def test_the_champion_retrains_once_its_unseen_labelled_rows_match_its_training_rows():
    """A champion whose metric holds still retrains once the labelled rows it has not seen
    reach the configured share of those it was trained on, whatever the trigger; off by
    default, so only a config that asks (``init`` writes 1.0) gets it."""
    held = _report(0.0, {"roc_auc": 0.79}, {"roc_auc": 0.80})
    for trigger in ("auto", "drift", "performance"):
        cfg = MonitoringConfig(metric="roc_auc", trigger=trigger, retrain_after_new_rows=1.0)
        assert not gate(with_volume(held, 1000, 999), cfg).retrain
        decision = gate(with_volume(held, 1000, 1000), cfg)
        assert decision.retrain and decision.reasons == [
            "1000 labelled rows no training has seen, 1.00x the 1000 the latest was trained on "
            "(retrain_after_new_rows: 1)"
        ]
    assert not gate(with_volume(held, 1000, 5000), MonitoringConfig(metric="roc_auc")).retrain
    assert not gate(held, MonitoringConfig(retrain_after_new_rows=1.0)).retrain  # not counted


def test_effect_sizes_judge_small_and_big_batches_alike():
    """``effect_size`` measures every batch with the normed Wasserstein distance and PSI (the
    default switches to p-values under 1,000 rows): a 0.05-sd shift is no drift on 500 rows
    or on 40,000, a 1.5-sd shift is drift on both."""
    rng = np.random.default_rng(1)
    n = 40_000
    ref = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(["x", "y"], size=n)})
    tiny = pd.DataFrame({"a": rng.normal(0.05, 1, size=n), "c": rng.choice(["x", "y"], size=n)})
    big = tiny.assign(a=rng.normal(1.5, 1, size=n))
    kw = {"numeric": ["a"], "categorical": ["c"], "method": "effect_size"}
    for rows in (500, None):
        cap = {"max_rows": rows}
        trivial = drift_report(ref, tiny, **kw, **cap)
        assert trivial.drifted == [] and {c.method for c in trivial.columns} == {
            "wasserstein",
            "psi",
        }
        assert drift_report(ref, big, **kw, **cap).drifted == ["a"]


def test_large_batches_are_sampled_and_report_their_own_size():
    ref, cur = _frames(shift=1.5)
    report = drift_report(ref, cur, numeric=["a", "b"], categorical=["c"], max_rows=1000)
    assert (report.reference_rows, report.current_rows) == (1500, 1500)
    assert "a" in report.drifted


def test_a_label_free_estimate_from_calibrated_probabilities():
    """Labels drawn from the probabilities themselves: the estimate matches what the labels
    then show, within sampling error."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from honing.monitoring import estimate_performance

    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 4, size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    codes = (p >= 0.3).astype(int)
    est = estimate_performance(np.column_stack([1 - p, p]), codes)
    assert est["accuracy"] == pytest.approx(accuracy_score(y, codes), abs=0.01)
    assert est["f1"] == pytest.approx(f1_score(y, codes), abs=0.02)
    assert est["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)
    cfg = MonitoringConfig(metric="roc_auc", max_metric_drop=0.05)
    report = DriftReport(100, 100, [], 0.0, estimated={"roc_auc": 0.70},
                         reference_performance={"roc_auc": 0.80})  # fmt: skip
    decision = gate(report, cfg)
    assert decision.retrain and decision.reasons[0].startswith("estimated roc_auc fell")


def test_drift_is_weighted_by_what_the_model_relies_on_and_answers_are_apart():
    from honing.monitoring import PREDICTION, TARGET

    ref, cur = _frames(shift=1.5)  # only "a" drifts
    rng = np.random.default_rng(1)
    ref[PREDICTION], cur[PREDICTION] = rng.uniform(size=1500), rng.uniform(0.3, 1.0, size=1500)
    ref[TARGET], cur[TARGET] = "x", "x"
    args = {"numeric": ["a", "b", PREDICTION], "categorical": ["c", TARGET]}
    args["method"] = "effect_size"
    cfg = MonitoringConfig(drift_share=0.3, prediction_drift=False)
    # the model barely uses the drifted column: a third of the columns, 5% of what matters
    unused = drift_report(ref, cur, **args, weights={"a": 0.05, "b": 0.6, "c": 0.35})
    assert unused.drifted == ["a"] and unused.drifted_share == 1 / 3
    assert unused.weighted_share == pytest.approx(0.05)
    assert unused.prediction.drifted and unused.target is not None and not unused.target.drifted
    assert PREDICTION not in unused.drifted and len(unused.columns) == 3
    assert not gate(unused, cfg).retrain
    assert "a drifted (wasserstein" in unused.explain()[0]
    assert "5% of the model's importance" in unused.explain()[0]
    assert any(line.startswith("the model's answers drifted") for line in unused.explain())
    # the same drift on the column the model relies on retrains, and says why in words
    relied = drift_report(ref, cur, **args, weights={"a": 0.7, "b": 0.2, "c": -0.1})
    assert relied.weighted_share == pytest.approx(0.7 / 0.9)  # negative importance counts 0
    decision = gate(relied, cfg)
    assert decision.retrain and "78% of the model's importance drifted" in decision.reasons[0]
    # answers that drift retrain too, when the config says so
    answers = gate(unused, MonitoringConfig(drift_share=0.3))
    assert answers.retrain and "the model's answers drifted" in answers.reasons[0]
    # without weights, the plain share of columns decides
    plain = drift_report(ref, cur, **args)
    assert plain.weighted_share is None and plain.share == 1 / 3 and gate(plain, cfg).retrain


def test_a_labelled_batch_whose_metric_held_keeps_the_model_despite_drift():
    drifted = _report(0.5, {"roc_auc": 0.79}, {"roc_auc": 0.80})  # half the columns moved
    auto = gate(drifted, MonitoringConfig(drift_share=0.3))
    assert not auto.retrain
    assert auto.reasons[0].startswith("the measured roc_auc held: 0.7900 on the batch")
    assert auto.warnings and "50% of columns drifted" in auto.warnings[0]
    assert any("noted, not deciding: 50% of columns" in line for line in auto.log_lines())
    assert gate(drifted, MonitoringConfig(drift_share=0.3, trigger="drift")).retrain
    # the measured drop decides under auto and performance, whatever the drift
    fell = _report(0.0, {"roc_auc": 0.70}, {"roc_auc": 0.80})
    for trigger in ("auto", "performance", "drift"):
        assert gate(fell, MonitoringConfig(trigger=trigger)).retrain
    # without labels, auto acts on the drift; performance waits for a measured or estimated drop
    unlabelled = DriftReport(100, 100, drifted.columns, 0.5)
    assert gate(unlabelled, MonitoringConfig(drift_share=0.3)).retrain
    assert not gate(unlabelled, MonitoringConfig(drift_share=0.3, trigger="performance")).retrain


def test_a_multiclass_estimate_covers_the_metrics_the_evaluation_reports():
    """Four classes, labels drawn from calibrated probabilities: accuracy, and the macro
    precision, recall, F1 and one-vs-rest ROC-AUC match what the drawn labels then show."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    from honing.metrics import METRICS
    from honing.monitoring import estimate_performance

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(30_000, 4)) * np.array([2.0, 1.5, 1.0, 0.5])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    codes = p.argmax(axis=1)
    est = estimate_performance(p, codes)
    assert set(est) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert est["accuracy"] == pytest.approx(accuracy_score(y, codes), abs=0.01)
    macro = {"average": "macro", "zero_division": 0}
    assert est["precision"] == pytest.approx(precision_score(y, codes, **macro), abs=0.015)
    assert est["recall"] == pytest.approx(recall_score(y, codes, **macro), abs=0.015)
    assert est["f1"] == pytest.approx(f1_score(y, codes, **macro), abs=0.015)
    # the evaluation's own multiclass ROC-AUC (macro one-vs-rest)
    assert est["roc_auc"] == pytest.approx(METRICS["roc_auc"].from_predictions(y, p), abs=0.01)
    # a model whose confidence fell: every estimate falls with it
    flat = 0.5 * p + 0.5 / 4
    assert all(estimate_performance(flat, codes)[k] < v for k, v in est.items())


def test_a_regression_estimate_follows_the_error_where_the_batch_moved():
    """Direct loss estimation: the noise grows with x and the batch moves to large x. The
    estimated RMSE and MAE rise with it and match what the batch's labels then show."""
    from sklearn.linear_model import LinearRegression

    from honing.monitoring import estimate_loss

    rng = np.random.default_rng(7)

    def table(n, low, high):
        x = rng.uniform(low, high, n)
        kind = rng.choice(["a", "b"], n)
        noise = rng.normal(size=n) * (0.2 + x) * np.where(kind == "b", 2.0, 1.0)
        return pd.DataFrame({"x": x, "kind": kind}), 3 * x + noise

    X_train, y_train = table(3000, 0, 1)
    champion = LinearRegression().fit(X_train[["x"]], y_train)
    X_ref, y_ref = table(2000, 0, 1)  # held out: the champion never saw these rows
    X_cur, y_cur = table(2000, 0.6, 1.0)  # the batch: the noisy end
    pred_ref, pred_cur = champion.predict(X_ref[["x"]]), champion.predict(X_cur[["x"]])
    est = estimate_loss(X_ref, pred_ref, y_ref, X_cur, pred_cur)
    rmse = float(np.sqrt(np.mean((y_cur - pred_cur) ** 2)))
    mae = float(np.mean(np.abs(y_cur - pred_cur)))
    before = float(np.sqrt(np.mean((y_ref - pred_ref) ** 2)))
    assert est["rmse"] == pytest.approx(rmse, rel=0.08) and est["rmse"] > 1.2 * before
    assert est["mae"] == pytest.approx(mae, rel=0.08)
    # on rows like the reference, it says what the reference said
    X_same, y_same = table(2000, 0, 1)
    same = estimate_loss(X_ref, pred_ref, y_ref, X_same, champion.predict(X_same[["x"]]))
    assert same["rmse"] == pytest.approx(before, rel=0.08)
    assert estimate_loss(X_ref.head(10), pred_ref[:10], y_ref[:10], X_cur, pred_cur) == {}


def test_an_estimate_that_labels_found_off_stops_deciding_until_one_agrees():
    """A labelled batch checks the label-free estimate against the labels. While its latest
    check is off by more than the allowed drop, a falling estimate on an unlabelled batch
    is noted, not acted on (drift still decides); a check that agrees restores it."""
    from honing.monitoring import EstimateAudit, audit_estimate, with_audit, with_estimate

    cfg = MonitoringConfig(drift_share=0.3, metric="roc_auc", max_metric_drop=0.05)
    reference = {"roc_auc": 0.80}
    # concept drift: the estimate believes 0.79, the labels say 0.55
    labelled = with_estimate(
        _report(0.0, {"roc_auc": 0.55}, reference), {"roc_auc": 0.79}, reference
    )
    checked = audit_estimate(labelled, cfg, "batch-03.csv")
    audit = checked.audit
    assert audit == EstimateAudit("roc_auc", 0.79, 0.55, 0.05, "batch-03.csv")
    assert audit.error == pytest.approx(0.24) and not audit.trusted
    decision = gate(checked, cfg)
    assert decision.retrain and "roc_auc fell" in decision.reasons[0]  # measured decides
    assert any("estimate is off" in w and "0.2400" in w for w in decision.warnings)
    assert EstimateAudit.from_dict(audit.to_dict()) == audit

    # the next, unlabelled batch: the estimate falls, but it was last seen off
    falling = with_estimate(DriftReport(100, 100, [], 0.0), {"roc_auc": 0.70}, reference)
    assert gate(falling, cfg).retrain  # never checked: the estimate decides
    distrusted = gate(with_audit(falling, audit), cfg)
    assert not distrusted.retrain
    assert any(
        "estimated roc_auc fell by 0.1000" in w and "does not decide" in w and "0.2400" in w
        for w in distrusted.warnings
    ), distrusted.warnings
    drifted = with_estimate(_report(0.5), {"roc_auc": 0.70}, reference)
    assert gate(with_audit(drifted, audit), cfg).retrain  # drift still decides

    # a later labelled batch where the estimate agrees: it decides again
    agreed = audit_estimate(
        with_estimate(_report(0.0, {"roc_auc": 0.78}, reference), {"roc_auc": 0.77}, reference),
        cfg,
        "batch-04.csv",
    ).audit
    assert agreed.trusted
    assert gate(with_audit(falling, agreed), cfg).retrain
    # relative drops scale the allowed error as they scale the allowed drop
    rmse = MonitoringConfig(metric="rmse", max_metric_drop_relative=0.1)
    rel = with_estimate(
        _report(0.0, {"rmse": 1100.0}, {"rmse": 1000.0}), {"rmse": 1050.0}, {"rmse": 1000.0}
    )
    assert audit_estimate(rel, rmse, "b").audit.allowed == pytest.approx(100.0)


def test_a_batch_without_a_feature_column_is_refused_naming_the_file_and_column(tmp_path: Path):
    """A monitored batch that lacks a column the champion uses is bad data: one message with
    the file, the column and the rule (it was a scikit-learn ValueError, retried three
    times as if the disk had failed)."""
    from honing.config import FeaturesConfig, WindowConfig, parse_config
    from honing.exceptions import DataValidationError
    from honing.modeling import features
    from honing.stages.monitor import Reference, drift
    from tests.conftest import demo_config_dict

    cfg = parse_config(demo_config_dict(), source=Path("c.yaml"), root=tmp_path)
    rows = pd.DataFrame({"tenure": [1, 5, 9], "contract": ["a", "b", "a"], "churn": ["No"] * 3})
    X = rows.drop(columns=["churn"])
    ref = Reference(
        name="m", version="3", model=None, metrics={}, classes=["No", "Yes"],
        columns=features.infer_columns(X, FeaturesConfig()), trained_on=rows, rows=rows,
        window=WindowConfig(), path=tmp_path / "ref.csv", folder=tmp_path,
    )  # fmt: skip
    batch = tmp_path / "batch.csv"
    rows.drop(columns=["contract"]).to_csv(batch, index=False)
    with pytest.raises(DataValidationError) as refused:
        drift(cfg, ref, batch, repo=str(tmp_path))
    assert str(refused.value) == (
        f"{batch}: column(s) 'contract' missing; rule: a monitored batch has every feature "
        "column champion v3 was trained on"
    )
    assert not refused.value.transient
