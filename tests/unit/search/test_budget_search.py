"""The budget planner, the per-family TPE scheduler, the portfolio, out-of-fold ensemble
selection and the metric table (binary, multiclass, regression)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from honing import metrics
from honing.config import CompressionConfig, SearchConfig
from honing.modeling.training import ModelSpec
from honing.search import SearchResult, TrialResult, anytime, planner
from honing.search.anytime import holdout_share
from honing.search.ensembles import choose, select_ensemble
from honing.search.portfolio import PORTFOLIO, SPACES, points
from honing.search.search_space import num_samples
from honing.search.tpe import TRIALS_PER_DIMENSION, FamilySearcher

# ---------------------------------------------------------------------------- the planner


def test_plan_gives_the_search_what_the_later_stages_do_not_need():
    plan = planner.plan(60.0, elapsed_s=5.0, compression=True)
    assert plan.search_s == pytest.approx(60.0 - 5.0 - plan.reserved_s, abs=0.1)
    assert 0.25 * 60 <= plan.search_s < 60
    without = planner.plan(200.0, elapsed_s=5.0, compression=False)
    assert without.search_s > planner.plan(200.0, elapsed_s=5.0, compression=True).search_s
    # a 60 s budget keeps compression's share (a booster student fits it); 30 s keeps none
    assert planner.plan(60.0, elapsed_s=5.0, compression=False).search_s > plan.search_s
    short = planner.plan(30.0, elapsed_s=5.0, compression=True)
    assert planner.plan(30.0, elapsed_s=5.0, compression=False).search_s == short.search_s
    capped = planner.plan(600.0, elapsed_s=5.0, compression=True, search_cap_s=30.0)
    assert capped.search_s == 30.0
    # a validation that ate most of the budget still leaves the search its minimum share
    late = planner.plan(60.0, elapsed_s=55.0, compression=True)
    assert late.search_s == pytest.approx(planner.MIN_SEARCH_SHARE * 60)
    assert planner.plan(None, elapsed_s=1.0, compression=True).search_s is None


def test_search_config_takes_the_planned_share():
    cfg = SearchConfig(families={"lightgbm": {}}, trials_per_family=None, time_budget_s=900)
    plan = planner.plan(60.0, elapsed_s=2.0, compression=True, search_cap_s=900)
    assert planner.search_config(cfg, plan).time_budget_s == plan.search_s
    assert num_samples(cfg) == -1  # no cap: the budget ends the search


def test_explanations_turned_off_leave_their_time_to_compression():
    """``evaluation.explain: false``: no permutation repeat and no SHAP row, with or without
    a budget, no note about cutting what was not asked for, and compression gets the seconds
    the explanations would have had."""
    techniques = ("onnx", "onnx_int8", "distill")
    off = planner.trim(None, None, predict_s=0.01, columns=10, techniques=techniques,
                       compression=True, explain=False)  # fmt: skip
    assert (off.permutation_repeats, off.shap_rows, off.notes) == (0, 0, [])
    on, off = (
        planner.trim(
            600.0,
            400.0,
            predict_s=0.01,
            columns=10,
            techniques=techniques,
            compression=True,
            explain=explain,
        )  # fmt: skip
        for explain in (True, False)
    )
    assert (off.permutation_repeats, off.shap_rows, off.notes) == (0, 0, [])
    explanations = 5 * 10 * 0.01 + planner.SHAP_MIN_S
    assert off.compression_s == pytest.approx(on.compression_s + explanations)


def test_trims_cut_optional_work_in_order_and_say_so():
    techniques = ("onnx", "onnx_int8", "distill")
    roomy = planner.trim(
        600.0, 400.0, predict_s=0.01, columns=10, techniques=techniques, compression=True
    )
    assert roomy.notes == [] and roomy.permutation_repeats == 5 and roomy.shap_rows == 100
    # compression's own seconds (a student's training stops there): what is left once
    # registration, explanations and the ONNX export with its served flavor are kept aside
    registration = 0.03 * 600  # its reserve: a share of the budget, over its 8 s floor
    explanations = 5 * 10 * 0.01 + planner.SHAP_MIN_S  # five repeats of ten columns, SHAP
    export = planner.SERVED_REGISTRATION_S  # no tree nodes were given: the flavor alone
    assert roomy.compression_s == pytest.approx(400 - registration - explanations - export)
    assert (
        roomy.compression_config(CompressionConfig()).techniques == CompressionConfig().techniques
    )

    tight = planner.trim(  # 8 s of it are registration's, 2.5 s the served flavor's
        60.0, 26.0, predict_s=0.2, columns=30, techniques=techniques, compression=True
    )
    assert tight.permutation_repeats < 5 and tight.shap_rows == 0
    assert any("permutation" in n for n in tight.notes) and any("SHAP" in n for n in tight.notes)
    trimmed = tight.compression_config(CompressionConfig(techniques=list(techniques)))
    assert trimmed.enabled and set(trimmed.techniques) <= set(techniques)

    # a big tree ensemble takes its ONNX export out of a budget that a small one fits
    small = planner.trim(
        60.0, 40.0, predict_s=0.05, columns=10, techniques=techniques, compression=True,
        model_size=10_000,
    )  # fmt: skip
    big = planner.trim(
        60.0, 40.0, predict_s=0.05, columns=10, techniques=techniques, compression=True,
        model_size=1_000_000,
    )  # fmt: skip
    assert small.compression != () and big.compression == ()
    assert any("1,000,000 parameters" in n for n in big.notes)
    # ... where its booster student still fits: that student is trained and exported alone,
    # until compression's deadline less the student's own export and served flavor
    students = ("onnx", "distill_booster", "trim")
    taught = planner.trim(
        60.0, 40.0, predict_s=0.05, columns=10, techniques=students, compression=True,
        model_size=1_000_000, student_s=1.8,
    )  # fmt: skip
    assert taught.compression == ("distill_booster",)
    assert any("booster student alone" in n and "1,000,000" in n for n in taught.notes)
    # registration's 8 s, and 5 s more for a million nodes; then five permutation repeats
    heavy = 1_000_000 / planner.REGISTRATION_NODES_PER_S
    assert any(f"~{heavy:.0f}s more kept" in n for n in taught.notes)
    rest = 40.0 - 8.0 - heavy - 5 * 10 * 0.05
    student_export = 1.8 + planner.SERVED_REGISTRATION_S
    assert taught.compression_s == pytest.approx(rest - student_export)
    # short of both, explanations yield to the served flavor: 8.5 s after registration's 8,
    # of which explanations' 30% would have left the student (~6.3 s: 3 to train, 0.8 to
    # export, 2.5 to register) too few; one permutation repeat stays (1.5 s: 30 columns,
    # 0.05 s each)
    first = planner.trim(
        60.0, 16.5, predict_s=0.05, columns=30, techniques=students, compression=True,
        model_size=100_000, student_s=0.8,
    )  # fmt: skip
    assert first.compression == ("distill_booster",) and first.permutation_repeats == 1
    assert first.shap_rows == 0
    crowded = planner.trim(  # with no room for both, the repeat stays and compression goes
        60.0, 15.0, predict_s=0.05, columns=30, techniques=students, compression=True,
        model_size=100_000, student_s=0.8,
    )  # fmt: skip
    assert crowded.permutation_repeats == 1 and crowded.compression == ()
    # a model with no ONNX graph (a family without converter) spends no time on its export: its
    # student alone where one applies, nothing otherwise, and the log says why
    dated = dict(predict_s=0.05, columns=10, compression=True, model_size=10_000,
                 exportable=False)  # fmt: skip
    alone = planner.trim(60.0, 40.0, techniques=students, student_s=1.8, **dated)
    assert alone.compression == ("distill_booster",)
    none = planner.trim(60.0, 40.0, techniques=students, student_s=None, **dated)
    assert none.compression == () and any("no ONNX graph" in n for n in none.notes)
    for no_student in (
        dict(techniques=techniques, student_s=1.8),  # not configured
        dict(techniques=students, student_s=None),  # a linear model: none applies
        dict(techniques=students, student_s=1_000.0),  # its export does not fit either
    ):
        none = planner.trim(
            60.0, 40.0, predict_s=0.05, columns=10, compression=True, model_size=1_000_000,
            **no_student,
        )  # fmt: skip
        assert none.compression == (), no_student

    spent = planner.trim(
        60.0, 2.0, predict_s=0.2, columns=30, techniques=techniques, compression=True
    )
    assert spent.compression == () and spent.permutation_repeats == 0
    assert spent.compression_s is None  # nothing to train
    assert not spent.compression_config(CompressionConfig()).enabled
    assert any("compression skipped" in n for n in spent.notes)


def test_refit_budget_keeps_the_later_stages_reserve():
    assert planner.refit_budget(None, None, compression=True) is None
    roomy = planner.refit_budget(200.0, 100.0, compression=True)
    assert 0 < roomy < 100.0
    assert planner.refit_budget(200.0, 100.0, compression=False) > roomy
    # a plan refits under its own budget, compression and slowdown
    busy = planner.plan(200.0, elapsed_s=30, compression=True, load=planner.MachineLoad(30))
    assert busy.refit_s(100.0) == planner.refit_budget(
        200.0, 100.0, compression=True, slowdown=busy.slowdown
    )
    assert planner.plan(None, elapsed_s=1.0, compression=True).refit_s(50.0) is None


def test_the_refit_stops_where_only_the_stages_no_run_skips_are_left():
    """The refit's hard stop keeps the reserves of evaluation and registration only: the
    optional stages are trimmed to what it leaves, never the model for them."""
    assert planner.refit_limit(None, 30.0) is None
    busy = planner.plan(60.0, elapsed_s=25, compression=True, load=planner.MachineLoad(20))
    # the loaded run of flights' delays: 28 s left after the search, x1.35 slower
    assert busy.refit_s(28.0) == 3.6  # planned with every later stage: the refit's floor
    limit = busy.refit_limit_s(28.0)
    required = sum(max(60.0 * share, floor) for share, floor in
                   (planner.RESERVE[s] for s in planner.REQUIRED_AFTER_REFIT))  # fmt: skip
    assert limit == pytest.approx(28.0 - busy.slowdown * required, abs=0.05)
    assert limit > 15.0
    # out of time: the refit's own share of the budget, so that a run ends with a model
    assert planner.refit_limit(60.0, 2.0) == pytest.approx(60.0 * planner.RESERVE["refit"][0])


def test_a_slow_start_keeps_longer_reserves():
    """A run that reached its search later than a quiet machine does (a busy machine, a big
    table) expects its later stages to take longer too, up to MAX_SLOWDOWN times."""
    quiet = planner.plan(
        60.0, elapsed_s=25, compression=True, load=planner.MachineLoad(planner.QUIET_START_S)
    )
    busy = planner.plan(
        60.0, elapsed_s=25, compression=True, load=planner.MachineLoad(1.5 * planner.QUIET_START_S)
    )
    assert planner.plan(60.0, elapsed_s=25, compression=True).slowdown == 1.0  # not measured
    assert quiet.slowdown == 1.0 and busy.slowdown == 1.5
    assert busy.reserved_s == pytest.approx(1.5 * quiet.reserved_s, abs=0.1)
    assert f"(x1.5: a start of {1.5 * planner.QUIET_START_S:.0f}s" in busy.note
    assert "a start of" not in quiet.note
    assert planner.slowdown(10 * planner.QUIET_START_S) == planner.MAX_SLOWDOWN
    assert planner.refit_budget(60.0, 40.0, compression=False, slowdown=1.5) < (
        planner.refit_budget(60.0, 40.0, compression=False)
    )
    left = dict(predict_s=0.01, columns=10, techniques=("onnx",), compression=True)
    calm = planner.trim(120.0, 22.0, **left, model_size=60_000)
    rushed = planner.trim(120.0, 22.0, **left, model_size=60_000, slowdown=2.0)
    assert calm.compression != () and rushed.compression == ()


def test_cpu_work_slower_than_an_idle_cores_keeps_longer_reserves():
    """A flow called in a running process (a served deployment's, a test's) has no start of
    its own to time: a busy machine shows in its CPU work running slower than on an idle
    core. The larger reading wins, up to MAX_SLOWDOWN; a quiet core's noise changes nothing."""
    quiet = planner.plan(45.0, elapsed_s=6, compression=False, load=planner.MachineLoad(2.0, 1.05))
    busy = planner.plan(45.0, elapsed_s=6, compression=False, load=planner.MachineLoad(2.0, 1.8))
    assert quiet.slowdown == 1.0 and busy.slowdown == 1.8
    assert busy.reserved_s == pytest.approx(1.8 * quiet.reserved_s, abs=0.1)
    assert busy.search_s < quiet.search_s
    assert "(x1.8: CPU work ran 1.8x slower than on an idle core)" in busy.note
    assert "x1" not in quiet.note
    # budget.json says what the slowdown was read from
    said = busy.to_dict()
    assert (said["slowdown"], said["startup_s"], said["contention"]) == (1.8, 2.0, 1.8)
    assert planner.MachineLoad(None, 5.0).slowdown == planner.MAX_SLOWDOWN
    # a slow start and a busy core: the larger of the two, and both are said
    both = planner.MachineLoad(1.6 * planner.QUIET_START_S, 1.3)
    assert both.slowdown == 1.6 and "a start of" in both.reason() and "1.3x" in both.reason()


def test_contention_reads_a_busy_loop_that_shares_its_core():
    """The measure itself: pinned to one core with a busy loop pinned beside it (two runnable
    threads on one core), the thread's CPU work takes about twice its CPU time in wall time,
    whatever else the machine runs (other work only adds to it). On an idle core it reads
    1.00 (bench/anytime.py's runs, alone, read no slowdown)."""
    import subprocess
    import sys

    code = (
        "import os, subprocess, sys, time\n"
        "from honing import runtime\n"
        "os.sched_setaffinity(0, {0})\n"
        "alone = runtime.contention()\n"
        "spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "time.sleep(0.3)\n"
        "try:\n"
        "    beside = runtime.contention()\n"
        "finally:\n"
        "    spin.kill()\n"
        "print(alone, beside)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    alone, beside = map(float, out.stdout.split())
    assert beside >= 1.6, (alone, beside)  # two runnable threads on the one core: about 2


def test_budget_report_judges_the_total_against_the_slack():
    plan = planner.plan(60.0, elapsed_s=1.0, compression=True)
    report = planner.budget_report(plan, planner.Trims(), {"ray_start": 5.0, "total": 70.0})
    assert report["limit_s"] == pytest.approx(71.0) and report["within_budget"] is True
    late = planner.budget_report(plan, planner.Trims(), {"ray_start": 0.0, "total": 67.0})
    assert late["within_budget"] is False
    unbounded = planner.plan(None, elapsed_s=1.0, compression=True)
    assert (
        planner.budget_report(unbounded, planner.Trims(), {"total": 9.0})["within_budget"] is None
    )


def test_stage_clock_adds_up_stages():
    clock = planner.StageClock(10.0, started=time.monotonic() - 3.0)
    assert clock.startup() >= 3.0  # no stage yet: all of it
    with clock.stage("a"):
        pass
    with clock.stage("a"):
        pass
    assert set(clock.seconds) == {"a"} and clock.seconds["a"] >= 0
    assert 3.0 <= clock.startup() < clock.elapsed()  # until the first stage began
    # where a failed run says it failed: the stage that raised, or the step after the last
    assert clock.current == "the step after a"
    with pytest.raises(RuntimeError), clock.stage("search"):
        raise RuntimeError("boom")
    assert clock.current == "search"
    assert clock.left() <= 10.0 and planner.StageClock(None).left() is None


# ---------------------------------------------------------------------------- the search


def _searcher(families: dict, **extra):
    cfg = SearchConfig(families=families, algorithm="tpe", trials_per_family=None, **extra)
    return FamilySearcher.build(cfg, family_key="family", sep="__", bounded=True).state


def test_portfolio_runs_first_then_every_family_is_capped_by_its_dimensions():
    state = _searcher({f: SPACES[f] for f in ("lightgbm", "logistic_regression")})
    first = [state.suggest(f"t{i}") for i in range(4)]
    expected = [f for f, _ in PORTFOLIO if f in ("lightgbm", "logistic_regression")]
    assert [c["family"] for c in first] == expected[:4]
    assert first[0]["lightgbm__num_leaves"] == 31  # the first portfolio entry, as written
    for i in range(len(first)):
        state.complete(f"t{i}", {"score": 0.8, "time_total_s": 0.1}, False)
    # the 1-D logistic regression stops at TRIALS_PER_DIMENSION trials
    seen = []
    for i in range(4, 200):
        config = state.suggest(f"t{i}")
        if config is None:
            break
        seen.append(config["family"])
        state.complete(f"t{i}", {"score": 0.8, "time_total_s": 0.01}, False)
    assert state.counts["logistic_regression"] == TRIALS_PER_DIMENSION * 1
    assert state.counts["lightgbm"] <= TRIALS_PER_DIMENSION * len(SPACES["lightgbm"])


def test_time_goes_to_the_competitive_family():
    state = _searcher(
        {"lightgbm": SPACES["lightgbm"], "random_forest": SPACES["random_forest"]}, portfolio=False
    )
    for i in range(40):
        config = state.suggest(f"t{i}")
        score = 0.90 if config["family"] == "lightgbm" else 0.70  # forests far behind
        state.complete(f"t{i}", {"score": score, "time_total_s": 1.0}, False)
    assert state.counts["lightgbm"] > 3 * state.counts["random_forest"]


def test_a_configuration_already_tried_is_not_run_again():
    state = _searcher({"knn": {"n_neighbors": {"choice": [5, 15]}}}, portfolio=False)
    labels = set()
    for i in range(2):
        config = state.suggest(f"t{i}")
        labels.add(config["knn__n_neighbors"])
        state.complete(f"t{i}", {"score": 0.7, "time_total_s": 0.1}, False)
    assert labels == {5, 15}  # the second ask skipped the duplicate of the first


def test_portfolio_points_fill_every_dimension_and_respect_the_space():
    cfg = SearchConfig(
        families={
            "lightgbm": SPACES["lightgbm"],
            "logistic_regression": {"C": {"loguniform": [10.0, 100.0]}},
        },
        features={"scaler": {"choice": ["standard", "robust"]}},
        algorithm="evolutionary",
    )
    pts = points(cfg, family_key="family", sep="__")
    assert {p["family"] for p in pts} == {"lightgbm"}  # C=1.0 and 0.05 are outside [10, 100]
    dims = {"family", "features__scaler", "logistic_regression__C"} | {
        f"lightgbm__{k}" for k in SPACES["lightgbm"]
    }
    assert all(set(p) == dims for p in pts)


def test_validation_auto_switches_to_holdout_for_large_tables():
    cfg = SearchConfig(families={"lightgbm": {}}, validation="auto", time_budget_s=60)
    assert holdout_share(cfg, 1_000, 10) is None
    assert holdout_share(cfg, 100_000, 20) == cfg.holdout_fraction
    # a larger table keeps about MAX_HOLDOUT_ROWS to score on, at least MIN_HOLDOUT_SHARE
    share = holdout_share(cfg, 1_000_000, 20)
    assert share is not None and share * 1_000_000 == pytest.approx(anytime.MAX_HOLDOUT_ROWS)
    assert holdout_share(cfg, 10**8, 20) == anytime.MIN_HOLDOUT_SHARE
    # a configured holdout keeps its share
    held = cfg.model_copy(update={"validation": "holdout"})
    assert holdout_share(held, 1_000_000, 20) == cfg.holdout_fraction
    assert holdout_share(cfg.model_copy(update={"validation": "cv"}), 10**6, 50) is None


# ---------------------------------------------------------------------------- ensembles


def _trial(i: int, family: str, oof: np.ndarray, y: np.ndarray) -> TrialResult:
    score = metrics.score_predictions("roc_auc", y, oof)
    return TrialResult(
        f"t{i}", ModelSpec(family, {"i": i}), score, 0.0, [score], 1.0,
        oof=oof, oof_rows=np.arange(len(y)),
    )  # fmt: skip


def test_ensemble_selection_mixes_complementary_trials_and_refits_only_members():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    signal_a, signal_b = rng.normal(size=600), rng.normal(size=600)
    logit = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    # two models that each see half of the signal, plus a useless one
    a = logit(2 * (y - 0.5) * (signal_a > 0) + rng.normal(size=600))
    b = logit(2 * (y - 0.5) * (signal_b > 0) + rng.normal(size=600))
    junk = rng.random(600)
    to_matrix = lambda p: np.column_stack([1 - p, p])  # noqa: E731
    result = SearchResult(
        "roc_auc",
        [_trial(0, "lightgbm", to_matrix(a), y), _trial(1, "xgboost", to_matrix(b), y),
         _trial(2, "knn", to_matrix(junk), y)],
    )  # fmt: skip
    selection = select_ensemble(result, y)
    assert selection is not None
    weights = dict.fromkeys(("lightgbm", "xgboost", "knn"), 0.0)
    for member, weight in zip(
        selection.spec.params["members"], selection.spec.params["weights"], strict=True
    ):
        weights[member["family"]] += weight
    assert weights["lightgbm"] >= 0.3 and weights["xgboost"] >= 0.3
    assert weights["knn"] <= 0.1  # chance gains from the useless model stay small
    assert sum(selection.spec.params["weights"]) == pytest.approx(1.0)
    assert selection.score > selection.best_single
    decision = choose(result.best, [], selection=selection, metric="roc_auc")
    assert decision.spec.family == "ensemble_selection" and "ensemble selection" in decision.reason
    # a refit budget too small for a second member: no ensemble
    assert select_ensemble(result, y, refit_budget_s=0.5) is None


def test_ensemble_selection_keeps_a_dominant_single_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    perfect = np.column_stack([1 - y, y]).astype(float)
    noisy = np.column_stack([np.full(400, 0.5), np.full(400, 0.5)]) + rng.normal(0, 0.01, (400, 2))
    result = SearchResult(
        "roc_auc", [_trial(0, "lightgbm", perfect, y), _trial(1, "knn", noisy, y)]
    )
    assert select_ensemble(result, y) is None


# ---------------------------------------------------------------------------- metrics


def test_one_metric_table_serves_binary_multiclass_and_regression():
    X, y = make_classification(n_samples=300, n_classes=3, n_informative=5, random_state=0)
    model = LogisticRegression(max_iter=500).fit(X, y)
    proba = model.predict_proba(X)
    assert metrics.METRICS["roc_auc"].from_predictions(y, proba) == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert metrics.METRICS["f1"].from_predictions(y, proba) == pytest.approx(
        skm.f1_score(y, proba.argmax(1), average="macro")
    )
    assert metrics.METRICS["log_loss"].from_predictions(y, proba) == pytest.approx(
        skm.log_loss(y, proba)
    )
    # the scikit-learn scorer built from the table gives the same numbers (log loss negated)
    for name in ("roc_auc", "f1", "log_loss", "average_precision"):
        by_scorer = cross_val_score(model, X, y, cv=3, scoring=metrics.scorer(name))
        assert np.isfinite(by_scorer).all()
    assert metrics.scorer("log_loss")(model, X, y) == pytest.approx(-skm.log_loss(y, proba))
    yb = (y == 1).astype(int)
    binary = LogisticRegression(max_iter=500).fit(X, yb)
    assert metrics.scorer("roc_auc")(binary, X, yb) == pytest.approx(
        skm.roc_auc_score(yb, binary.predict_proba(X)[:, 1])
    )
    assert metrics.lower_is_better("rmse") and not metrics.lower_is_better("r2")
    assert metrics.passes("rmse", 1.0, 0.9, margin=0.1) and not metrics.passes("r2", 0.7, 0.9)


def test_the_models_own_export_estimate_decides_over_its_node_count():
    """A million CatBoost nodes export in about the stage's fixed part: the model's own
    estimate (``export_s``) keeps the ONNX export that its node count alone would skip, and
    the student is then not needed."""
    common = dict(predict_s=0.05, columns=10, compression=True, model_size=1_000_000,
                  techniques=("onnx", "distill_booster"), student_s=1.8)  # fmt: skip
    by_nodes = planner.trim(60.0, 40.0, **common)
    own = planner.trim(60.0, 40.0, export_s=0.4, **common)
    assert by_nodes.compression == ("distill_booster",)
    assert own.compression is None or "onnx" in own.compression
    assert not any("compression" in n and "student" in n for n in own.notes)


def test_one_pipeline_keeps_less_for_registration_than_a_vote():
    """A single model registers in 3-5 s where a vote of pipelines took up to 8: the seconds
    between the two floors go to its compression. With 14 s left and an export of 7 s (1.5 s
    fixed, 3 s its own, 2.5 s the served flavor), a vote keeps 8 s for registration and
    skips compression; one pipeline keeps 5 s and is exported, explanations yielding."""
    common = dict(predict_s=0.05, columns=10, compression=True, techniques=("onnx",),
                  model_size=50_000, export_s=3.0)  # fmt: skip
    vote = planner.trim(60.0, 14.0, **common)
    single = planner.trim(60.0, 14.0, ensemble=False, **common)
    assert vote.compression == () and any("compression skipped" in n for n in vote.notes)
    assert single.compression is None  # every configured technique stays
    # what its techniques may train in: 14 s less registration's 5 s and 0.25 s for 50,000
    # nodes, three permutation repeats (0.5 s each), the export's own 3 s and the flavor's 2.5
    assert planner.COMPRESSION_MIN_S == 1.5 and single.permutation_repeats == 3
    assert single.compression_s == pytest.approx(14.0 - 5.0 - 0.25 - 3 * 0.5 - 3.0 - 2.5)


def test_a_command_counts_its_budget_from_its_own_start():
    """`runtime.process_started`, where a command's budget starts: the moment its process
    was started, to within a few clock ticks, whatever happened since (here 1.5 s asleep
    before the call). The boot's wall time in /proc/stat is whole seconds, and reading the
    start through it put it up to a second early."""
    import subprocess
    import sys

    before = time.time()
    out = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(1.5); "
         "from honing.runtime import process_started; print(repr(process_started()))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    after = time.time()
    started = float(out.stdout.strip())
    assert before - 0.05 <= started <= after - 1.5, (before, started, after)
