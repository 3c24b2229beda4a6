"""The run's summary table says how decisions are made and what 0.5 would have given."""

from honing.stages.summary import TrainingSummary


def _summary(**extra):
    base = dict(
        run_id="r", experiment_id="1", tracking_uri="sqlite:///x.db", task="classification",
        model_name="honing-churn", version="2", promoted=True, gate_reason="promote",
        champion_version="1", best_model="lightgbm", model_choice="", cv_metric="roc_auc",
        cv_score=0.85, trials=3, trials_failed=0, trials_stopped=0, trials_restored=0,
        validation_scheme="5-fold CV", time_budget_s=None,
        test_metrics={"roc_auc": 0.84, "f1": 0.62}, classes=["No", "Yes"],
        confusion_matrix=[[900, 100], [120, 280]],
        lineage={"honing.data_path": "data/churn.csv", "honing.data_md5": "abc",
                 "honing.git_commit": "c0ffee", "honing.config_hash": "h"},
        cleaning={"rows_in": 7043},
    )  # fmt: skip
    return TrainingSummary(**{**base, **extra})


def test_the_decision_and_the_metrics_at_one_half_are_shown():
    s = _summary(
        decision="'Yes' when P('Yes') >= 0.3100 (tuned for f1)",
        threshold=0.31,
        test_at_default={"f1": 0.55},
    )
    rows = dict(s.rows())
    assert rows["decision"].startswith("'Yes' when P('Yes') >= 0.3100")
    assert rows["test f1"] == "0.6200 (at 0.5: 0.5500)"
    assert rows["test roc_auc"] == "0.8400"  # a ranking metric has no threshold
    assert "- **decision**: 'Yes' when" in s.markdown()
    assert "| f1 | 0.6200 (at 0.5: 0.5500) |" in s.markdown()


def test_regression_rows_have_no_decision():
    rows = dict(_summary(task="regression", test_metrics={"rmse": 3.2}, classes=[],
                         confusion_matrix=[]).rows())  # fmt: skip
    assert "decision" not in rows and rows["test rmse"] == "3.2000"


def test_a_confusion_matrix_of_many_classes_is_summed_up_not_written_out():
    """Three classes are written row by row; 39 would be a wall of counts on screen, so the
    summary gives the rows on the diagonal and points at the run's figure."""
    small = dict(_summary(confusion_matrix=[[5, 1, 0], [0, 4, 2], [1, 0, 7]]).rows())
    assert small["confusion matrix"] == "5 1 0 / 0 4 2 / 1 0 7 (rows: true)"
    many = [[3 if i == j else int(j == (i + 1) % 39) for j in range(39)] for i in range(39)]
    shown = dict(_summary(confusion_matrix=many).rows())["confusion matrix"]
    assert (
        shown == "39 classes: 117 of 156 test rows on the diagonal (the run's confusion_matrix.png)"
    )


def test_the_leaderboard_says_which_trials_their_deadline_cut():
    """A trial the budget stopped before its configured rounds is marked in the leaderboard
    a reviewer reads first: its score is that of the rounds it had grown."""
    from honing.modeling.training import ModelSpec
    from honing.search import SearchResult, TrialResult
    from honing.tracking.trial_runs import leaderboard

    trials = [
        TrialResult("a", ModelSpec("lightgbm", {"n_estimators": 10}), 0.81, 0.01, [0.8, 0.82],
                    2.0, cut=True),
        TrialResult("b", ModelSpec("logistic_regression", {"C": 1.0}), 0.84, 0.01, [0.84],
                    1.0),
    ]  # fmt: skip
    board = leaderboard(SearchResult("roc_auc", trials), ["r1", "r2"], "7")
    assert board["family"] == ["logistic_regression", "lightgbm"]  # best first
    assert dict(zip(board["family"], board["cut"], strict=True)) == {
        "logistic_regression": False,
        "lightgbm": True,
    }
    assert list(board).index("cut") == list(board).index("status") + 1


def test_logs_and_leaderboards_show_the_hyperparameters_the_model_was_fitted_with():
    """The sampler hands LightGBM num_leaves 21.33; the model fits int(21.33) = 21 leaves, and
    that is what the search line, the leaderboard, the refit line and the summary show (an
    ensemble's members too), while the float stays what the sampler learns from."""
    from honing.modeling.training import ModelSpec
    from honing.search import SearchResult, TrialResult
    from honing.search.ensembles import EnsembleDecision
    from honing.stages.summary import describe_model
    from honing.tracking.trial_runs import leaderboard

    sampled = {"n_estimators": 958.9, "num_leaves": 21.33, "learning_rate": 0.05}
    spec = ModelSpec("lightgbm", sampled)
    fitted = spec.effective().params
    assert fitted == {"n_estimators": 958, "num_leaves": 21, "learning_rate": 0.05}
    assert spec.params == sampled  # the spec itself is not changed
    trial = TrialResult("a", spec, 0.81, 0.01, [0.8, 0.82], 2.0)
    result = SearchResult("roc_auc", [trial])
    assert "num_leaves=21)" in result.log_lines()[0] and "21.33" not in result.log_lines()[0]
    assert leaderboard(result, ["r1"], "7")["params"] == [
        "lightgbm(learning_rate=0.05, n_estimators=958, num_leaves=21)"
    ]
    assert describe_model(EnsembleDecision(spec, "best", {})) == (
        "lightgbm(learning_rate=0.05, n_estimators=958, num_leaves=21)"
    )
    ensemble = ModelSpec(
        "ensemble_selection", {"members": [{"family": "lightgbm", "params": sampled}],
                               "weights": [1.0]},
    )  # fmt: skip
    assert ensemble.effective().params["members"][0]["params"]["num_leaves"] == 21
    # what a family does not cast is left alone, and an unknown family is shown as given
    assert ModelSpec("logistic_regression", {"C": 0.5}).effective().params == {"C": 0.5}
    assert ModelSpec("soft_voting", {"x": 1.5}).effective().params == {"x": 1.5}


def test_an_unchanged_run_reports_its_version_and_registers_nothing():
    s = _summary(model_choice="unchanged", cv_score=float("nan"), trials=0, version="1",
                 gate_reason="unchanged since v1 (same data, config and commit)")  # fmt: skip
    assert s.log_lines()[0].startswith("reported honing-churn v1: unchanged, the champion")
    assert "nan" not in " ".join(s.log_lines()) and "nan" not in s.markdown()
    assert "CV roc_auc" not in dict(s.rows())
    assert s.markdown().startswith("# honing-churn v1: **unchanged, the champion**")
    later = _summary(model_choice="unchanged", cv_score=float("nan"), promoted=False)
    assert later.verdict == "unchanged, not the champion"
    assert _summary().log_lines()[0].startswith("registered honing-churn v2: promoted")


def test_the_served_flavor_is_shown_against_the_native_model():
    """Size, single-row p50/p99 and batch throughput of the served flavor beside the native
    model's, in the table, the summary and the log (from the compression report)."""
    from honing.stages.summary import ServedSummary

    served = ServedSummary(
        model_name="honing-churn-served", version="2", candidate="distilled_booster",
        reason="distilled_booster: accuracy 0.8 within 0.005 of native 0.8",
        candidates={
            "candidate": ["native", "onnx", "distilled_booster"],
            "size_bytes": [2_650_000, 251_000, 69_000], "p50_ms": [4.2, 0.11, 0.05],
            "p99_ms": [9.0, 0.3, 0.09], "throughput_rows_s": [80_000, 400_000, 900_000],
        },
        skipped={},
    )  # fmt: skip
    versus = served.against_native()
    assert versus == (
        "size 69.0 KB against 2,650.0 KB native; single-row p50 0.050 ms against 4.200, "
        "p99 0.090 against 9.000; batches 900,000 rows/s against 80,000"
    )
    s = _summary(served=served)
    assert dict(s.rows())["served vs native"] == versus
    assert f"- **served against native**: {versus}" in s.markdown()
    assert f"served: honing-churn-served v2 (distilled_booster): {versus}" in s.log_lines()
    bare = ServedSummary("m", "1", "onnx", "why", {"candidate": ["onnx"]}, {})
    assert bare.against_native() == ""


def test_a_refit_the_budget_cut_says_so_in_its_log_and_its_summary_row():
    """The refit line names the model that was grown, and a line says what the budget cut
    (the words the run's summary lists first under "trimmed to the budget")."""
    from honing.modeling.decision import DecisionFit, DecisionRule
    from honing.modeling.training import ModelSpec, TrainResult
    from honing.stages.fit import Refit

    asked = ModelSpec("catboost", {"n_estimators": 964, "learning_rate": 0.1})
    grown = ModelSpec("catboost", {"n_estimators": 340, "learning_rate": 0.1})
    rule = DecisionFit(DecisionRule.argmax([0, 1]), {}, None, None, None, 0, [])
    cut = Refit(TrainResult(grown, None, None, planned=asked), rule)
    assert cut.cut() == "refit: 340 of the 964 rounds (trees) asked for, at the budget"
    lines = cut.log_lines()
    assert lines[0] == "refit: catboost(learning_rate=0.1, n_estimators=340)"
    assert lines[1] == f"trimmed: {cut.cut()}"
    whole = Refit(TrainResult(asked, None, None), rule)
    assert whole.cut() is None and not any("trimmed" in line for line in whole.log_lines())
