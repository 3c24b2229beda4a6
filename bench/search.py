"""honing's search against FLAML's AutoML at equal time budget, and ASHA against random search
on the PyTorch MLP. One process, the same splits for every contender.

Part 1, for Telco churn, digits and breast cancer (test accuracy, wall time):

* ``honing``: ``honing.search.run_search`` (Ray Tune, Optuna TPE over families and feature
  options, 3-fold CV) with ``time_budget_s`` = 60% of the budget, then the ensembles that fit
  in what is left and the refit of the best trial or ensemble, exactly as the training flow
  does; the whole of it is timed;
* ``flaml``: ``flaml.AutoML(time_budget=budget, metric="accuracy")``;
* ``baseline``: scikit-learn's HistGradientBoosting with default parameters in honing's
  feature pipeline.

Part 2: the MLP space searched by random sampling with and without ASHA (the same seeded
configurations, so the comparison isolates early stopping): best CV ROC-AUC and wall time.

Writes bench/results/search.{json,md}.

    .venv/bin/python bench/search.py [--budget 30] [--mlp-trials 32]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import (  # bench/common.py (scripts run from bench/)
    RESULTS,
    code_commit,
    machine,
    write_json,
    write_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SEARCH_SHARE = 0.6  # of the budget, for honing's search; measured: Ray overshoots by ~5 s

#: The space honing searches in part 1 (what a user would write in configs/*.yaml).
FAMILIES: dict[str, dict[str, Any]] = {
    "logistic_regression": {
        "C": {"loguniform": [0.001, 100.0]},
        "penalty": {"choice": ["l1", "l2"]},
    },
    "svm": {"C": {"loguniform": [0.1, 100.0]}, "gamma": {"loguniform": [0.0001, 0.1]}},
    "knn": {"n_neighbors": {"randint": [3, 40]}, "weights": {"choice": ["uniform", "distance"]}},
    "extra_trees": {
        "n_estimators": 300,
        "min_samples_leaf": {"randint": [1, 10]},
        "max_features": {"choice": ["sqrt", 0.5]},
    },
    "hist_gradient_boosting": {
        "learning_rate": {"loguniform": [0.02, 0.3]},
        "max_leaf_nodes": {"randint": [8, 64]},
        "max_iter": 200,
    },
}
FEATURES = {"scaler": {"choice": ["standard", "minmax", "robust"]}}


def _datasets() -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    from sklearn.datasets import load_breast_cancer, load_digits

    from honing.data import clean, encode_target
    from honing.data.demo_data import fetch_demo_dataset

    churn, _ = clean(fetch_demo_dataset(), "churn")
    y_churn, _ = encode_target(churn["churn"], "Yes")
    digits = load_digits(as_frame=True)
    cancer = load_breast_cancer(as_frame=True)
    return {
        "churn": (churn.drop(columns=["churn"]), y_churn),
        "digits": (digits.data, digits.target.to_numpy()),
        "breast_cancer": (cancer.data, cancer.target.to_numpy()),
    }


def _split(X: pd.DataFrame, y: np.ndarray) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)
    return X_tr.reset_index(drop=True), X_te.reset_index(drop=True), y_tr, y_te


def run_honing(X_tr, y_tr, X_te, y_te, budget: float, storage: str) -> dict[str, Any]:
    from honing.config import FeaturesConfig, RaySettings, SearchConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import TrainingSetup, train_model
    from honing.search import run_search
    from honing.search.ensembles import affordable, choose, ensemble_specs, score_ensembles

    cfg = SearchConfig.model_validate(
        {
            "families": FAMILIES,
            "features": FEATURES,
            "algorithm": "tpe",
            "trials_per_family": 200,  # the time budget ends the search
            "cv_folds": 3,
            "metric": "accuracy",
            "seed": SEED,
            "max_concurrent_trials": 2,
            # the search gets part of the budget, the ensemble check and the refit the rest
            "time_budget_s": SEARCH_SHARE * budget,
            "ensemble": {"enabled": True, "top_k": 3},
        }
    )
    features = FeaturesConfig()
    cols = infer_columns(X_tr, features)
    start = time.perf_counter()
    result = run_search(
        X_tr,
        y_tr,
        cfg=cfg,
        setup=TrainingSetup(
            "classification", cols, features, seed=cfg.seed, metric=cfg.metric, folds=cfg.cv_folds
        ),
        ray_settings=RaySettings(num_cpus=2, storage_path=storage),
    )
    search_s = time.perf_counter() - start
    # what is left of the budget, less the refit of the best (about one CV fold's fit)
    refit_s = (result.best.fit_seconds or 0.0) / 2
    specs, notes = affordable(
        ensemble_specs(result, cfg.ensemble),
        result,
        budget - (time.perf_counter() - start) - refit_s,
    )
    scored = score_ensembles(
        X_tr,
        y_tr,
        specs,
        TrainingSetup("classification", cols, features, seed=SEED, metric="accuracy", folds=3),
    )
    decision = choose(result.best, scored, notes)
    model = train_model(
        X_tr,
        y_tr,
        decision.spec,
        TrainingSetup("classification", cols, features, seed=SEED, metric="roc_auc", folds=5),
    ).model
    wall = time.perf_counter() - start
    return {
        "accuracy": float((model.predict(X_te) == y_te).mean()),
        "wall_s": wall,
        "search_s": search_s,
        "trials": len(result.completed),
        "model": decision.spec.family
        if decision.spec.family in ("soft_voting", "stacking")
        else decision.spec.label(),
        "ensemble": decision.reason,
    }


def run_flaml(X_tr, y_tr, X_te, y_te, budget: float, log_dir: str) -> dict[str, Any]:
    from flaml import AutoML

    automl = AutoML()
    start = time.perf_counter()
    automl.fit(
        X_tr.copy(),
        y_tr,
        task="classification",
        metric="accuracy",
        time_budget=budget,
        seed=SEED,
        verbose=0,
        log_file_name=str(Path(log_dir) / "flaml.log"),
    )
    wall = time.perf_counter() - start
    return {
        "accuracy": float((automl.predict(X_te.copy()) == y_te).mean()),
        "wall_s": wall,
        "model": str(automl.best_estimator),
    }


def run_baseline(X_tr, y_tr, X_te, y_te) -> dict[str, Any]:
    from honing.config import FeaturesConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import ModelSpec, TrainingSetup, train_model

    start = time.perf_counter()
    model = train_model(
        X_tr,
        y_tr,
        ModelSpec("hist_gradient_boosting", {}),
        TrainingSetup(
            "classification",
            infer_columns(X_tr, FeaturesConfig()),
            FeaturesConfig(),
            seed=SEED,
            metric="roc_auc",
            folds=5,
        ),
    ).model
    return {
        "accuracy": float((model.predict(X_te) == y_te).mean()),
        "wall_s": time.perf_counter() - start,
        "model": "hist_gradient_boosting (defaults)",
    }


def asha_vs_random(trials: int, storage: str) -> dict[str, Any]:
    """The same seeded random MLP configurations, with and without ASHA."""
    from honing.config import FeaturesConfig, RaySettings, SearchConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import TrainingSetup
    from honing.search import run_search

    X, y = _datasets()["churn"]
    X_tr, _, y_tr, _ = _split(X, y)
    features = FeaturesConfig()
    cols = infer_columns(X_tr, features)
    space = {
        "mlp": {
            "hidden_layers": {"choice": [1, 2, 3]},
            "width": {"choice": [32, 64, 128]},
            "dropout": {"uniform": [0.0, 0.4]},
            "optimizer": {"choice": ["adam", "sgd", "nesterov", "rmsprop", "adagrad"]},
            "learning_rate": {"loguniform": [1e-5, 3e-2]},
            "weight_decay": {"loguniform": [1e-6, 1e-2]},
            "max_epochs": 40,
            "early_stopping": False,
        }
    }
    out: dict[str, Any] = {}
    for kind in ("none", "asha"):
        cfg = SearchConfig.model_validate(
            {
                "families": space,
                "algorithm": "random",
                "trials_per_family": trials,
                "cv_folds": 3,
                "metric": "roc_auc",
                "seed": SEED,
                "max_concurrent_trials": 2,
                "scheduler": {"kind": kind, "max_t": 8, "grace_period": 1, "reduction_factor": 3},
            }
        )
        start = time.perf_counter()
        result = run_search(
            X_tr,
            y_tr,
            cfg=cfg,
            setup=TrainingSetup(
                "classification",
                cols,
                features,
                seed=cfg.seed,
                metric=cfg.metric,
                folds=cfg.cv_folds,
            ),
            ray_settings=RaySettings(num_cpus=2, storage_path=storage),
        )
        out["random" if kind == "none" else "asha"] = {
            "best_roc_auc": float(result.best.score),
            "wall_s": time.perf_counter() - start,
            "trials": len(result.completed),
            "stopped_early": sum(1 for t in result.trials if (t.rungs or 8) < 8)
            if kind == "asha"
            else 0,
        }
    return out


def render(results: dict[str, Any]) -> str:
    budget = results["budget_s"]
    lines = [
        "# Search benchmark",
        "",
        f"`bench/search.py` at commit `{results.get('commit', '?')}` on {results['machine']}, "
        f"budget {budget:g} s per contender, test "
        "accuracy on a stratified 25% split (the same split for all).",
        "",
        "| dataset | honing acc | honing wall (s) | FLAML acc | FLAML wall (s) | baseline acc | "
        "honing - FLAML | honing model | FLAML model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["datasets"].items():
        h, f, b = r["honing"], r["flaml"], r["baseline"]
        lines.append(
            f"| {name} | {h['accuracy']:.4f} | {h['wall_s']:.1f} | {f['accuracy']:.4f} | "
            f"{f['wall_s']:.1f} | {b['accuracy']:.4f} | {h['accuracy'] - f['accuracy']:+.4f} | "
            f"{h['model'][:60]} | {f['model']} |"
        )
    a = results["asha_vs_random"]
    r, s = a["random"], a["asha"]
    ok_score = s["best_roc_auc"] >= r["best_roc_auc"] - 0.005
    ok_time = s["wall_s"] <= 0.5 * r["wall_s"]
    lines += [
        "",
        f"honing's wall time is all of it: the search (given {SEARCH_SHARE:.0%} of the budget, "
        "after which Ray starts no trial and stops the running ones), the ensemble check and "
        "the refit. Ensembles: "
        + "; ".join(f"{n}: {r['honing']['ensemble']}" for n, r in results["datasets"].items()),
        "",
        f"## ASHA vs random search on the PyTorch MLP (Telco churn, {r['trials']} trials, "
        "3-fold CV ROC-AUC, 40 epochs in 8 rungs)",
        "",
        "| search | best CV ROC-AUC | wall (s) | trials stopped early |",
        "|---|---|---|---|",
        f"| random | {r['best_roc_auc']:.4f} | {r['wall_s']:.1f} | {r['stopped_early']} |",
        f"| random + ASHA | {s['best_roc_auc']:.4f} | {s['wall_s']:.1f} | {s['stopped_early']} |",
        "",
        f"Target: ASHA within 0.5 point of random's best ({'met' if ok_score else 'not met'}) "
        f"in at most half its wall time ({s['wall_s'] / r['wall_s']:.2f}x: "
        f"{'met' if ok_time else 'not met'}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--mlp-trials", type=int, default=32)
    parser.add_argument("--datasets", default="churn,digits,breast_cancer")
    parser.add_argument(
        "--parts", default="flaml,asha", help="flaml: part 1, asha: part 2 (comma-separated)"
    )
    args = parser.parse_args()
    commit = code_commit()

    from honing import runtime
    from honing.config import RaySettings
    from honing.search import connect_ray

    runtime.quiet_environment(os.environ)
    os.environ.update(runtime.ray_environment(None))
    connect_ray(RaySettings(num_cpus=2))  # started once, outside every timing
    tmp = tempfile.mkdtemp(prefix="honing-bench-search-")
    data = _datasets()
    results: dict[str, Any] = {
        "commit": commit,
        "machine": machine(),
        "budget_s": args.budget,
        "datasets": {},
    }
    parts = args.parts.split(",")
    previous = RESULTS / "search.json"
    if set(parts) != {"flaml", "asha"} and previous.exists():  # keep the other part's results
        earlier = json.loads(previous.read_text())
        if "flaml" not in parts:
            results["datasets"] = earlier["datasets"]
            results["budget_s"] = earlier["budget_s"]
        if "asha" not in parts:
            results["asha_vs_random"] = earlier["asha_vs_random"]
    for name in args.datasets.split(",") if "flaml" in parts else []:
        X_tr, X_te, y_tr, y_te = _split(*data[name])
        results["datasets"][name] = {
            "honing": run_honing(X_tr, y_tr, X_te, y_te, args.budget, f"{tmp}/ray"),
            "flaml": run_flaml(X_tr, y_tr, X_te, y_te, args.budget, tmp),
            "baseline": run_baseline(X_tr, y_tr, X_te, y_te),
        }
        print(name, json.dumps(results["datasets"][name], default=str))
    if "asha" in parts:
        results["asha_vs_random"] = asha_vs_random(args.mlp_trials, f"{tmp}/ray")
    write_json("search", results)
    text = render(results)
    write_markdown("search", text)
    print(text)


if __name__ == "__main__":
    main()
