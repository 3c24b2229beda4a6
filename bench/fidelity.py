"""Should the budget-driven config stop trials at low-fidelity rungs? An A/B of the config
``honing init --budget B`` writes (no scheduler: boosting still stops early on its own
validation loss) against the same config with ASHA over the rungs of ``honing.models.fidelity``
(boosting rounds, trees, row subsamples), on the public tables of ``bench/automl.py``.

Both arms run the whole training flow on the same split per seed; the test metric and the
number of trials are recorded. Writes bench/results/fidelity.json and fidelity.md.

    .venv/bin/python bench/fidelity.py [--budget 60] [--seeds 0 1] [--tables NAME ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import automl  # noqa: E402  (the sibling benchmark: its tables and its projects)
from common import code_commit, edit_config, write_json, write_markdown  # noqa: E402

ASHA = {"kind": "asha", "max_t": 8, "grace_period": 2, "reduction_factor": 3}
DEFAULT_TABLES = ["hpc_data", "ames", "Caravan", "mlc_churn", "CreditCard"]


def arm(name: str, seed: int, budget: float, scheduler: dict[str, Any] | None) -> dict[str, Any]:
    """`honing init` then `honing run` of table ``name`` (the config ``init`` writes, or that
    config with ``scheduler``), from a cold start."""
    table = next(t for t in automl.TABLES if t.name == name)
    folder = automl.WORK / f"fidelity-{name}-{seed}-{'asha' if scheduler else 'none'}"
    automl.init_project(folder, table, automl.load(table), budget)
    if scheduler:
        edit_config(folder / "configs" / "case.yaml", {"search.scheduler": scheduler})
    run = automl.run_honing(folder, seed)
    return {
        "score": run["score"],
        "wall_s": round(run["wall_s"], 1),
        "trials": run["trials"],
        "stopped": run["trials_stopped"],
        "model": run["model"],
    }


def write(results: dict[str, Any]) -> None:
    write_json("fidelity", results)
    lines = [
        f"# Low-fidelity rungs: no scheduler vs ASHA (B = {results['budget_s']:.0f} s)",
        "",
        f"Commit `{results['commit']}`, seeds {results['seeds']}, ASHA {ASHA}. Mean test "
        "metric over the seeds (diff: ASHA minus none, ROC-AUC in points, RMSE relative, "
        "positive = ASHA better); trials run (stopped early).",
        "",
        "| table | metric | none | ASHA | diff | trials none | trials ASHA |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results["tables"].items():
        none, asha = row["none"], row["asha"]
        a, b = np.mean([r["score"] for r in none]), np.mean([r["score"] for r in asha])
        diff = f"{(b - a) * 100:+.2f} pt" if row["metric"] != "rmse" else f"{(a - b) / a:+.2%}"
        trials = [
            f"{np.mean([r['trials'] for r in rs]):.0f} ({np.mean([r['stopped'] for r in rs]):.0f})"
            for rs in (none, asha)
        ]
        lines.append(
            f"| {name} | {row['metric']} | {a:.4f} | {b:.4f} | {diff} | {trials[0]} | {trials[1]} |"
        )
    lines += ["", results.get("conclusion", ""), ""]
    write_markdown("fidelity", lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tables", nargs="*", default=DEFAULT_TABLES)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "budget_s": args.budget,
        "commit": code_commit(),
        "seeds": args.seeds,
        "scheduler": ASHA,
        "tables": {},
    }
    wins = 0
    for name in args.tables:
        task = next(t for t in automl.TABLES if t.name == name).task
        row: dict[str, Any] = {"metric": "rmse" if task == "regression" else "roc_auc"}
        row["none"] = [arm(name, s, args.budget, None) for s in args.seeds]
        row["asha"] = [arm(name, s, args.budget, ASHA) for s in args.seeds]
        a = np.mean([r["score"] for r in row["none"]])
        b = np.mean([r["score"] for r in row["asha"]])
        wins += bool(b > a if row["metric"] != "rmse" else b < a)
        results["tables"][name] = row
        print(name, row, flush=True)
        write(results)
    results["conclusion"] = f"ASHA scored better on {wins} of {len(args.tables)} tables. " + (
        "The default stays without a scheduler."
        if wins <= len(args.tables) / 2
        else "ASHA helps on most tables: consider it for the default."
    )
    write(results)


if __name__ == "__main__":
    main()
