"""Does a log target help honing's boosted models on skewed regression tables?

Issue 24 asked whether target transforms for skewed positive targets were the cause of
honing's regression losses. For the AutoML benchmark's regression tables small enough to
cross-validate quickly, each of two boosted configurations of honing's own pipelines
(``honing.modeling.training.make_model``: its encoding and models) is scored by 5-fold RMSE on the
original scale, over two shuffles, fitted on the raw target and on ``log1p`` of it
(scikit-learn's ``TransformedTargetRegressor``, predictions mapped back with ``expm1``).

Writes bench/results/target_transform.{json,md}.

    .venv/bin/python bench/target_transform.py
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from automl import TABLES, load  # bench/automl.py
from common import code_commit, machine, write_json, write_markdown  # bench/common.py

#: The regression tables of bench/automl.py that cross-validate in seconds (CPSSW8 and movies,
#: 60,000 rows each, are left out).
NAMES = ("Hitters", "ames", "Wage", "concrete")
SEEDS = (0, 1)


def rmse(estimator, X: pd.DataFrame, y: np.ndarray, seed: int) -> float:
    from sklearn.model_selection import KFold, cross_val_predict

    pred = cross_val_predict(estimator, X, y, cv=KFold(5, shuffle=True, random_state=seed))
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def main() -> None:
    from sklearn.compose import TransformedTargetRegressor

    from honing.config import FeaturesConfig
    from honing.modeling.features import infer_columns
    from honing.modeling.training import ModelSpec, TrainingSetup, make_model

    warnings.filterwarnings("ignore")
    specs = [
        ModelSpec(
            "lightgbm",
            {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10},
        ),  # fmt: skip
        ModelSpec("catboost", {"n_estimators": 500, "learning_rate": 0.05, "depth": 6}),
    ]
    out: dict = {"commit": code_commit(), "machine": machine(), "tables": {}}
    for name in NAMES:
        table = next(t for t in TABLES if t.name == name)
        df = load(table).dropna(subset=[table.target])
        y = df[table.target].to_numpy(float)
        X = df.drop(columns=[table.target, *table.drop])
        setup = TrainingSetup(
            "regression", infer_columns(X, FeaturesConfig()), FeaturesConfig(), 0, "rmse", 5
        )
        row: dict = {"rows": len(y), "skew": float(pd.Series(y).skew()), "models": {}}
        for spec in specs:
            model = make_model(spec, setup)
            log = TransformedTargetRegressor(model, func=np.log1p, inverse_func=np.expm1)
            raw_s = float(np.mean([rmse(model, X, y, s) for s in SEEDS]))
            log_s = float(np.mean([rmse(log, X, y, s) for s in SEEDS]))
            gain = 100 * (raw_s - log_s) / raw_s
            row["models"][spec.family] = {"raw": raw_s, "log": log_s, "log_vs_raw_pct": gain}
            print(f"{name} {spec.family}: raw {raw_s:.4g}, log {log_s:.4g}", flush=True)
        out["tables"][name] = row
    write_json("target_transform", out)
    lines = [
        "# A log target on skewed regression tables",
        "",
        f"{out['machine']} (`bench/target_transform.py`, commit `{out['commit']}`). 5-fold RMSE "
        f"on the original scale, mean of {len(SEEDS)} shuffles; positive: the log target is "
        "better.",
        "",
        "| table | rows | skew | model | raw target | log1p target | log vs raw |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in out["tables"].items():
        for family, m in row["models"].items():
            lines.append(
                f"| {name} | {row['rows']} | {row['skew']:.2f} | {family} | {m['raw']:.4g} | "
                f"{m['log']:.4g} | {m['log_vs_raw_pct']:+.1f}% |"
            )
    write_markdown("target_transform", lines)


if __name__ == "__main__":
    main()
