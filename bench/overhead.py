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

Prefect's overhead is ``flow - plain``; MLflow's (tracking, model logging, the registry and
the champion gate's scoring) is ``plain - compute``. Each mode runs ``REPEATS`` times,
alternating, and the medians are compared. Timings start before the first stage, after the
imports. Writes bench/results/overhead.{json,md}.

    .venv/bin/python bench/overhead.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TRIALS_PER_FAMILY = 3
REPEATS = 3
MODES = ("flow", "plain", "compute")


def _project(tmp: Path) -> tuple[Path, Path]:
    raw = yaml.safe_load((ROOT / "configs" / "churn.yaml").read_text())
    raw.pop("time_budget_s", None)
    raw["data"]["path"] = str(ROOT / "data" / "churn.csv")
    raw["validation"]["suite"] = str(ROOT / "expectations" / "churn.json")
    raw["search"]["trials_per_family"] = TRIALS_PER_FAMILY
    raw["search"]["time_budget_s"] = None
    config = tmp / "churn.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = tmp / "env.yaml"
    env.write_text(
        yaml.safe_dump(
            {
                "profile": "bench",
                "mlflow": {
                    "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                    "artifact_root": str(tmp / "mlartifacts"),
                },
                "ray": {"num_cpus": 2, "storage_path": str(tmp / "ray_results")},
            }
        )
    )
    return config, env


def run_mode(mode: str, config: str, env: str, repo: str) -> dict[str, float]:
    """One pipeline in this process; returns its wall seconds (after the imports)."""
    from honing import data, planner, validation
    from honing.lineage import build_lineage
    from honing.stages import compress, evaluate, finish, fit, prepare, record, register, start
    from honing.stages import validate as validate_stage
    from honing.tracking import search_name

    if mode == "flow":
        from honing_flows.flows.training import training_pipeline

        began = time.monotonic()
        training_pipeline(
            config_path=config, env_path=env, repo=repo, resume_search=False, force=True
        )
        return {"wall_s": time.monotonic() - began}

    began = time.monotonic()
    if mode == "plain":
        started = start.start(config, env, run_name="overhead plain", tags={}, environ=os.environ)
        cfg, run = started.cfg, started.run
        validated = validate_stage.validate(
            cfg, run, repo=repo, config_path=config, flow_run_id="none"
        )
        raw, lineage = validated.raw, validated.lineage
    else:
        cfg = start.load(config, os.environ)
        settings = start.connect(env, os.environ)  # Ray's address; MLflow is never called
        raw = data.load_table(cfg.data.path, cfg.data.format)
        report = validation.validate(
            raw,
            validation.load_suite(cfg.validation.suite),
            source=str(cfg.data.path),
            rules=validation.QualityRules.from_config(cfg),
        )
        validation.gate(report)
        lineage = build_lineage(
            data_path=Path(cfg.data.path),
            data_md5=data.file_md5(cfg.data.path),
            repo=Path(repo),
            config_hash=cfg.content_hash,
            config_path=config,
            flow_run_id="none",
        )
    ray = (started.settings if mode == "plain" else settings).ray
    prepared = prepare.prepare(cfg, raw, lineage, elapsed_s=time.monotonic() - began)
    name = search_name(cfg.name, cfg.content_hash, lineage, resume=False)
    result = fit.run_search(cfg, prepared, ray=ray, experiment_name=name)
    refit_s = planner.refit_budget(None, None, compression=True)
    choice = fit.choose(cfg, prepared, result, refit_s=refit_s)
    refit = fit.refit(cfg, prepared, choice)
    evaluated = evaluate.evaluate(cfg, prepared, refit, left_s=None)
    explained = evaluate.explain_model(cfg, prepared, refit, evaluated.trims)
    compressed = compress.compress(cfg, prepared, refit, evaluated.trims)
    if mode == "plain":
        record.log_evaluation(
            run,
            cfg,
            prepared=prepared,
            search=result,
            choice=choice,
            nested=None,
            refit=refit,
            evaluated=evaluated,
            explained=explained,
        )
        evaluation_gate(cfg, evaluated)
        registered = register.register(
            run,
            cfg,
            prepared=prepared,
            refit=refit,
            evaluated=evaluated,
            lineage=lineage,
            compressed=compressed,
        )
        finish.finish(
            started,
            lineage=lineage,
            prepared=prepared,
            search=result,
            choice=choice,
            nested=None,
            refit=refit,
            evaluated=evaluated,
            explained=explained,
            registered=registered,
            timings={"total": time.monotonic() - began},
        )
    else:
        evaluation_gate(cfg, evaluated)
    return {"wall_s": time.monotonic() - began}


def evaluation_gate(cfg, evaluated) -> None:  # type: ignore[no-untyped-def]
    from honing import evaluation

    evaluation.gate(
        evaluated.report, cfg.evaluation.thresholds, evaluated.slices, cfg.evaluation.slice_gate
    )


def _child(mode: str, tmp: Path) -> float:
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
    return float(json.loads(out.stdout.strip().splitlines()[-1])["wall_s"])


def main() -> None:
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="honing-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        _project(tmp)
        for repeat in range(REPEATS):
            for mode in MODES:
                walls[mode].append(_child(mode, tmp))
                print(f"repeat {repeat + 1}: {mode} {walls[mode][-1]:.1f} s", flush=True)
    med = {m: statistics.median(v) for m, v in walls.items()}
    prefect_s, mlflow_s = med["flow"] - med["plain"], med["plain"] - med["compute"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "trials_per_family": TRIALS_PER_FAMILY,
        "repeats": REPEATS,
        "wall_s": walls,
        "median_s": med,
        "prefect_overhead_s": prefect_s,
        "prefect_overhead_share": prefect_s / med["flow"],
        "mlflow_overhead_s": mlflow_s,
        "mlflow_overhead_share": mlflow_s / med["flow"],
        "goal_share": 0.05,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(
        f"| {m} | {med[m]:.1f} | {', '.join(f'{w:.1f}' for w in walls[m])} |" for m in MODES
    )
    verdict = "met" if (prefect_s + mlflow_s) / med["flow"] <= 0.05 else "missed"
    (RESULTS / "overhead.md").write_text(
        f"""# Orchestration and tracking overhead

The demo pipeline (Telco churn, {TRIALS_PER_FAMILY} trials per family, no time budget,
compression on) run {REPEATS} times in each mode, in fresh processes, on {result["machine"]}
(`bench/overhead.py`).

| mode | median wall (s) | runs (s) |
|---|---|---|
{rows}

- **Prefect** (flow against the same stages called directly): {prefect_s:+.1f} s,
  {100 * result["prefect_overhead_share"]:+.1f}% of the flow's wall time. This includes
  starting Prefect's ephemeral API in the process and recording every task run.
- **MLflow** (tracking, the trials' runs and leaderboard, model logging, the registry and the
  champion gate's scoring): {mlflow_s:+.1f} s, {100 * result["mlflow_overhead_share"]:+.1f}%.
- Goal: both together at most 5% of the wall time: **{verdict}**.
"""
    )
    print((RESULTS / "overhead.md").read_text())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--mode":
        timings = run_mode(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        print(json.dumps(timings))
    else:
        main()
