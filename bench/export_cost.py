"""What a served flavor's compression stage costs, against what the planner reserves for it.

The planner (:func:`honing.search.planner.trim`) decides before compression whether the chosen
model's ONNX export fits in the seconds left, from its estimate per kind of model
(:func:`honing.compression.export_seconds`). This
benchmark fits boosted models and votes of the sizes the search picks (binary, multiclass and
regression; LightGBM, XGBoost, CatBoost and a weighted vote of two), runs the compression
stage's own call (:func:`honing.compression.compress`, ONNX only, latency on 40 single rows
as a 60 s run plans) and times it, each case in a fresh process as a run's stage is, with the
planner's estimate beside it. It runs with
another process busy on one of the two cores (``--busy``, the default), as runs do on a
loaded machine.

    .venv/bin/python bench/export_cost.py [--quiet]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np
import pandas as pd
from common import code_commit, machine, write_json, write_markdown

from honing import compression
from honing.compression.candidates import CompressionOptions, export_seconds, n_parameters
from honing.config import FeaturesConfig
from honing.modeling.features import infer_columns
from honing.modeling.training import ModelSpec, TrainingSetup, make_model
from honing.models.artifacts import skops_bytes
from honing.search import planner


def _table(n: int, classes: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(12)})
    X["color"] = rng.choice(["red", "green", "blue", "grey"], n)
    X.loc[::13, "x0"] = np.nan
    z = X["x0"].fillna(0) + X["x1"] * X["x2"] + (X["color"] == "red") + rng.normal(size=n)
    if classes == 0:
        return X, z.to_numpy()
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))


def _fit(family: str, params: dict, X: pd.DataFrame, y: np.ndarray, classes: int):
    task = "regression" if classes == 0 else "classification"
    metric = "rmse" if classes == 0 else "roc_auc"
    setup = TrainingSetup(task, infer_columns(X, FeaturesConfig()), FeaturesConfig(), 0, metric, 5)
    return make_model(ModelSpec(family, params), setup).fit(X, y)


def _vote(models: list, weights: list[float], classes: int):
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    named = [(f"m{i}", m) for i, m in enumerate(models)]
    if classes == 0:
        vote = VotingRegressor(named, weights=weights)
    else:
        vote = VotingClassifier(named, voting="soft", weights=weights)
    vote.estimators_ = models
    vote.named_estimators_ = dict(named)
    if classes:
        from sklearn.preprocessing import LabelEncoder

        vote.le_ = LabelEncoder().fit(np.arange(classes))
        vote.classes_ = vote.le_.classes_
    return vote


VOTES = {  # a vote's members: family, params, weight
    "vote": [
        ("lightgbm", {"n_estimators": 200, "num_leaves": 31}, 0.6),
        ("xgboost", {"n_estimators": 200, "max_depth": 6}, 0.4),
    ],
    "vote_trees": [
        ("extra_trees", {"n_estimators": 100}, 0.5),
        ("lightgbm", {"n_estimators": 150, "num_leaves": 31}, 0.5),
    ],
}
CASES = [  # name, classes, family (or a vote of VOTES), params
    ("lightgbm binary 100 rounds", 2, "lightgbm", {"n_estimators": 100, "num_leaves": 31}),
    ("lightgbm binary 600 rounds", 2, "lightgbm", {"n_estimators": 600, "num_leaves": 63}),
    ("xgboost binary 300 rounds", 2, "xgboost", {"n_estimators": 300, "max_depth": 6}),
    ("catboost 4 classes 300 rounds", 4, "catboost", {"n_estimators": 300, "depth": 6}),
    ("lightgbm 4 classes 300 rounds", 4, "lightgbm", {"n_estimators": 300, "num_leaves": 31}),
    ("lightgbm regression 500 rounds", 0, "lightgbm", {"n_estimators": 500, "num_leaves": 31}),
    ("vote lightgbm + xgboost binary", 2, "vote", {}),
    ("catboost binary 500 rounds", 2, "catboost", {"n_estimators": 500, "depth": 6}),
    ("catboost regression 500 rounds", 0, "catboost", {"n_estimators": 500, "depth": 6}),
    ("xgboost 4 classes 200 rounds", 4, "xgboost", {"n_estimators": 200, "max_depth": 6}),
    ("xgboost regression 500 rounds", 0, "xgboost", {"n_estimators": 500, "max_depth": 6}),
    ("random_forest binary 100 trees", 2, "random_forest", {"n_estimators": 100}),
    ("lightgbm 22 classes 150 rounds", 22, "lightgbm", {"n_estimators": 150, "num_leaves": 31}),
    ("extra_trees 4 classes 100 trees", 4, "extra_trees", {"n_estimators": 100}),
    ("vote extra_trees + lightgbm 4 classes", 4, "vote_trees", {}),
]


def _spin(stop) -> None:  # a busy core, as the test suite or another run makes it
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def measure(name: str, classes: int, family: str, params: dict) -> dict:
    X, y = _table(6000, classes)
    X_test, y_test = _table(1500, classes, seed=1)
    if family in VOTES:
        members = [_fit(f, p, X, y, classes) for f, p, _ in VOTES[family]]
        model = _vote(members, [w for _, _, w in VOTES[family]], classes)
    else:
        model = _fit(family, params, X, y, classes)
    size = n_parameters(model) or 0
    # what a run has done by then: its stage cache kept the refit model with skops (whose
    # first use imports scikit-learn's and PyTorch's modules); the ONNX converters and
    # onnxruntime are first used by the compression stage itself
    skops_bytes(model)
    columns = infer_columns(X, FeaturesConfig())
    labels = list(range(classes)) if classes else []
    started = time.perf_counter()
    result = compression.compress(
        model, X, y, X_test, y_test, labels, numeric=columns.numeric,
        categorical=columns.text, options=CompressionOptions(techniques=("onnx",)),
        metric="rmse" if classes == 0 else "roc_auc", tolerance=0.005, latency_rows=40,
    )  # fmt: skip
    took = time.perf_counter() - started
    estimate = planner.COMPRESSION_MIN_S + export_seconds(model)
    by_nodes = planner.COMPRESSION_MIN_S + 2.0 * size / planner.ONNX_PARAMETERS_PER_S
    return {
        "case": name,
        "nodes": size,
        "served": result.choice.name,
        "compression_s": round(took, 2),
        "planner_estimate_s": round(estimate, 2),
        "ratio": round(took / estimate, 2),
        "by_nodes_s": round(by_nodes, 2),
        "by_nodes_ratio": round(took / by_nodes, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="no busy core beside it")
    args = parser.parse_args()
    header = {"commit": code_commit(), "machine": machine()}
    stop = multiprocessing.Event()
    spinner = None if args.quiet else multiprocessing.Process(target=_spin, args=(stop,))
    if spinner:
        spinner.start()
    try:
        # each case in a process of its own: a run's compression stage is the first export
        # in its process, and pays the converters' first use (imports, registrations)
        context = multiprocessing.get_context("spawn")
        rows = []
        for case in CASES:
            with context.Pool(1) as pool:
                rows.append(pool.apply(measure, case))
    finally:
        stop.set()
        if spinner:
            spinner.join()
    for row in rows:
        print(row)
    result = {**header, "busy": not args.quiet, "rows": rows}
    write_json("export_cost", result)
    lines = [
        "# What the compression stage costs, against the planner's estimate",
        "",
        f"`bench/export_cost.py` at `{header['commit']}` on {header['machine']}"
        f"{', one core kept busy beside it' if not args.quiet else ', quiet'}. The stage's "
        "own call (ONNX only, parity on 1,500 test rows, latency on 40 single rows), timed, "
        "each model in a fresh process (the converters' first use included, as in a run); "
        "the estimate is the planner's `COMPRESSION_MIN_S + export_seconds(model)` (per kind "
        "of model: LightGBM by its trees, CatBoost near nothing, others by their nodes) "
        "before its slowdown factor (the served flavor's registration is costed apart); "
        "`by nodes` is the generic `COMPRESSION_MIN_S + 2 x nodes / ONNX_PARAMETERS_PER_S` "
        "it falls back to.",
        "",
        "| model | nodes | served | stage s | estimate s | stage / estimate | by nodes s "
        "| stage / by nodes |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['case']} | {r['nodes']:,} | {r['served']} | {r['compression_s']} | "
            f"{r['planner_estimate_s']} | {r['ratio']} | {r['by_nodes_s']} | "
            f"{r['by_nodes_ratio']} |"
            for r in rows
        ],
    ]
    write_markdown("export_cost", lines)


if __name__ == "__main__":
    main()
