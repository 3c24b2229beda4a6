"""What Prefect and MLflow cost: the demo pipeline as a Prefect flow, against the same stages
called as plain library functions (with and without MLflow).

Three modes, each in a fresh process on the demo's data and config, with a fixed amount of
work (the config's ``time_budget_s`` removed and the search capped at ``TRIALS_PER_FAMILY``
trials per family, so that no mode can buy speed by searching less):

- ``flow``: ``training_pipeline``, the Prefect flow ``honing run`` runs (Prefect's ephemeral
  API started in the process, every stage a task run, MLflow tracking and registry);
- ``plain``: the same :mod:`honing.stages` functions called one after the other, with the
  same MLflow logging and registration, no Prefect;
- ``compute``: the stages' computations only (load, validate, prepare, search, choose,
  refit, evaluate, explain, compress), no MLflow and no Prefect.

Prefect's overhead is ``flow - plain`` (``empty``, a flow with no task, shows how much of it
is the temporary API's start); MLflow's (tracking, model logging, the registry and the
champion gate's scoring) is ``plain - compute``, broken down by stage. Each mode runs
``REPEATS`` times, alternating, and the medians are compared. Timings start before the first
stage, after the imports. Writes bench/results/overhead.{json,md}.

    .venv/bin/python bench/overhead.py
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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

ROOT = Path(__file__).resolve().parents[1]
TRIALS_PER_FAMILY = 3
REPEATS = 3
MODES = ("flow", "plain", "compute")


def _project(tmp: Path) -> tuple[Path, Path]:
    raw = yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())
    raw.pop("time_budget_s", None)
    for name in ("data/churn.csv", "expectations/churn.json"):  # data stays in the project
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp / name)
    raw["data"]["path"] = str(tmp / "data" / "churn.csv")
    raw["validation"]["suite"] = str(tmp / "expectations" / "churn.json")
    raw["search"]["trials_per_family"] = TRIALS_PER_FAMILY
    raw["search"]["time_budget_s"] = None
    return write_yaml(tmp / "churn.yaml", raw), write_env(tmp / "env.yaml", tmp)


#: The plain mode's MLflow-side steps, timed one by one, and what each does.
MLFLOW_SIDE = {
    "validate": "validate (with lineage tags, dataset input, config, report)",
    "log_evaluation": "log_evaluation (trials, leaderboard, metrics, plots)",
    "register": "register (models, champion scoring, gate, load-and-query check)",
    "finish": "finish (summary, timings)",
}


class Timed:
    """The steps of ``honing.stages.steps``, each call's seconds added to ``seconds`` under
    its label (:data:`MLFLOW_SIDE`): the measuring device of the plain mode."""

    def __init__(self, steps: Any, seconds: dict[str, float]) -> None:
        self.steps, self.seconds = steps, seconds

    def __getattr__(self, name: str) -> Any:
        step = getattr(self.steps, name)
        if name not in MLFLOW_SIDE:
            return step

        def timed(**kwargs: Any) -> Any:
            began = time.monotonic()
            try:
                return step(**kwargs)
            finally:
                label = MLFLOW_SIDE[name]
                self.seconds[label] = self.seconds.get(label, 0.0) + time.monotonic() - began

        return timed


def run_mode(mode: str, config: str, env: str, repo: str) -> dict[str, object]:
    """One pipeline in this process; returns its wall seconds (after the imports) and, for
    ``plain``, the seconds of its MLflow-side stages. ``plain`` and ``compute`` run the
    library's own stage order (:mod:`honing.stages.pipeline`) over the plain steps."""
    from honing.search.planner import StageClock
    from honing.stages import pipeline, start, steps
    from honing.stages import validate as validate_stage
    from honing.stages.cache import StageStore
    from honing.stages.context import RunContext

    if mode == "flow":
        from honing_flows.flows.training import training_pipeline

        began = time.monotonic()
        training_pipeline(
            config_path=config, env_path=env, repo=repo, resume_search=False, force=True
        )
        return {"wall_s": time.monotonic() - began}
    if mode == "empty":  # Prefect's fixed cost: its temporary API and one flow run
        from prefect import flow

        began = time.monotonic()
        flow(name="empty")(lambda: 1)()
        return {"wall_s": time.monotonic() - began}

    began = time.monotonic()
    if mode == "plain":  # the whole run, as the flow runs it, without Prefect
        seconds: dict[str, float] = {}
        started = start.start(config, env, run_name="overhead plain", tags={}, environ=os.environ)
        seconds["start (experiment, stale runs, run)"] = time.monotonic() - began
        pipeline.train(
            Timed(steps, seconds),
            started,
            repo=repo,
            config_path=config,
            flow_run_id="none",
            resume_search=False,
            force=True,
        )
        return {"wall_s": time.monotonic() - began, "stages": seconds}
    # compute: the same stages' computations, with no MLflow call at all
    cfg = start.load(config, os.environ)
    settings = start.connect(env, os.environ)  # Ray's address; MLflow is never called
    clock = StageClock(None)
    validated = validate_stage.check(cfg, repo=repo, config_path=config, flow_run_id="none")
    steps.validation_gate(validated=validated)
    prepared = steps.prepare(
        cfg=cfg, raw=validated.raw, lineage=validated.lineage, elapsed_s=clock.elapsed()
    )
    ctx = RunContext.for_run(cfg, settings.ray, StageStore.off())
    fitted = pipeline.fitted(steps, ctx, prepared, clock)
    steps.quality_gate(ctx=ctx, evaluated=fitted.evaluated)
    steps.compress(ctx=ctx, prepared=prepared, refit=fitted.refit, trims=fitted.evaluated.trims)
    return {"wall_s": time.monotonic() - began}


def _child(mode: str, tmp: Path) -> dict[str, Any]:
    config, env = tmp / "churn.yaml", tmp / "env.yaml"
    out = subprocess.run(
        [sys.executable, __file__, "--mode", mode, str(config), str(env), str(tmp)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp,
        env={**os.environ, "PREFECT_HOME": str(tmp / ".prefect")},
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


_QUIET: dict[str, Any] = {"capture_output": True, "text": True, "check": False}


def main() -> None:
    commit = code_commit()  # the code that runs: read before anything else can change
    walls: dict[str, list[float]] = {m: [] for m in (*MODES, "empty")}
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="honing-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        _project(tmp)
        for repeat in range(REPEATS):
            for mode in (*MODES, "empty"):
                got = _child(mode, tmp)
                walls[mode].append(float(got["wall_s"]))
                for name, seconds in dict(got.get("stages") or {}).items():
                    if mode == "plain":
                        stages.setdefault(name, []).append(float(seconds))
                print(f"repeat {repeat + 1}: {mode} {walls[mode][-1]:.1f} s", flush=True)
    med = {m: statistics.median(v) for m, v in walls.items()}
    stage_med = {k: statistics.median(v) for k, v in stages.items()}
    prefect_s, mlflow_s = med["flow"] - med["plain"], med["plain"] - med["compute"]
    result = {
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "trials_per_family": TRIALS_PER_FAMILY,
        "repeats": REPEATS,
        "wall_s": walls,
        "median_s": med,
        "plain_mlflow_stages_median_s": stage_med,
        "prefect_overhead_s": prefect_s,
        "prefect_overhead_share": prefect_s / med["flow"],
        "prefect_fixed_s": med["empty"],
        "mlflow_overhead_s": mlflow_s,
        "mlflow_overhead_share": mlflow_s / med["flow"],
        "goal_share": 0.05,
    }
    write_json("overhead", result)
    rows = "\n".join(
        f"| {m} | {med[m]:.1f} | {', '.join(f'{w:.1f}' for w in walls[m])} |"
        for m in (*MODES, "empty")
    )
    stage_rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in stage_med.items())
    verdict = "met" if (prefect_s + mlflow_s) / med["flow"] <= 0.05 else "missed"
    write_markdown(
        "overhead",
        f"""# Orchestration and tracking overhead

The demo pipeline (Telco churn, {TRIALS_PER_FAMILY} trials per family, no time budget,
compression on) run {REPEATS} times in each mode, in fresh processes, on {result["machine"]},
at commit {result["commit"]} (`bench/overhead.py`). `empty` is a Prefect flow with no task:
the fixed cost of starting Prefect's temporary API in a new process.

| mode | median wall (s) | runs (s) |
|---|---|---|
{rows}

- **Prefect** (the flow against the same stages called directly): {prefect_s:+.1f} s,
  {100 * result["prefect_overhead_share"]:+.1f}% of the flow's wall time, of which about
  {med["empty"]:.1f} s is the temporary API's start (a Prefect server, as in the distributed
  profile, does not pay it) and the rest the 15 task runs' bookkeeping.
- **MLflow** (everything the plain mode does beyond the computations): {mlflow_s:+.1f} s,
  {100 * result["mlflow_overhead_share"]:+.1f}%. Its stages in the plain mode (medians; they
  include some work that is not tracking, such as scoring the champion and loading the new
  version in a fresh process before its alias moves):

| MLflow-side stage | seconds |
|---|---|
{stage_rows}

- Goal: both together at most 5% of the flow's wall time: **{verdict}**
  ({100 * (prefect_s + mlflow_s) / med["flow"]:.1f}%).
""",
    )
    print((RESULTS / "overhead.md").read_text())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--mode":
        timings = run_mode(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        print(json.dumps(timings))
    else:
        main()
