"""The served flavor on every table of ``bench/automl.py``: what a user gets from
``honing init DATA --budget 60`` then ``honing run``, served against native.

For each table (the first seed's split, from a cold start, as ``automl.py`` runs it) the run's
own compression report is read from its summary: the candidate it registered as the served
flavor, that flavor's serialized size and single-row p50 latency (one thread) as shares of
the native model's, its p99 and batch throughput, and every test metric of both, with the
test score beside the one ``automl.py`` measured on the same split (its commit named), so
that what the compression reserve cost the search is seen too. A run that served its native
model, or registered no served flavor, says why (its budget trims).

Targets (issue 26): a compressed served flavor on at least 90% of the tables; on each,
p50 <= 0.2x and size <= 0.5x the native model's, within tolerance on every metric (the pick
only serves a candidate within tolerance, so this is the pick's own rule).

With ``--from-automl`` nothing is run: ``automl.py``'s own runs at the budget record their
served flavor, and their first seed is read (with how many of the table's seeds served a
compressed flavor), so one benchmark run measures both.

Writes bench/results/compression_tables.{json,md}, merging the tables already there.

    .venv/bin/python bench/compression_tables.py [--budget 60] [--tables NAME ...]
        [--from-automl]
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from automl import TABLES, WORK, fmt, init_project, load, run_honing  # bench/automl.py
from common import RESULTS, code_commit, machine, write_json, write_markdown

NAME = "compression_tables"
P50_TARGET, SIZE_TARGET, SHARE_TARGET = 0.2, 0.5, 0.9


def automl_score(table: str, budget: float) -> tuple[float | None, str | None]:
    """honing's first-seed test score on ``table`` in ``automl.json``, and its commit."""
    path = RESULTS / "automl.json"
    if not path.exists():
        return None, None
    row = json.loads(path.read_text())["budgets"].get(f"{budget:.0f}", {})
    row = row.get("tables", {}).get(table, {})
    for run in row.get("runs", []):
        if run.get("seed") == 0 and "score" in run.get("honing", {}):
            return run["honing"]["score"], row.get("commit")
    return None, None


def from_automl(budget: float) -> dict[str, dict[str, Any]]:
    """The rows of every table that ``automl.py`` ran at ``budget`` with this script's
    records (its runs keep their served flavor): the first seed's run, as :func:`one_table`
    would make it, and how many of the table's seeds served a compressed flavor."""
    found = json.loads((RESULTS / "automl.json").read_text())["budgets"].get(f"{budget:.0f}", {})
    rows: dict[str, dict[str, Any]] = {}
    for name, table in found.get("tables", {}).items():
        runs = [r["honing"] for r in table.get("runs", []) if "score" in r.get("honing", {})]
        first = next((r["honing"] for r in table.get("runs", []) if r.get("seed") == 0), None)
        if first is None or "score" not in first or "served" not in first:
            continue  # failed, or measured before runs recorded their served flavor
        compressed = sum(
            (r.get("served") or {}).get("served", "none") not in ("none", "native") for r in runs
        )
        rows[name] = {
            "commit": table.get("commit"), "score": first["score"],
            "automl_score": first["score"], "automl_commit": table.get("commit"),
            "wall_s": first["wall_s"], "model": first["model"], "record": first.get("served"),
            "trimmed": first.get("trimmed", []), "seconds": first.get("seconds", {}),
            "seeds_compressed": f"{compressed} of {len(runs)}",
        }  # fmt: skip
    return rows


def one_table(name: str, budget: float) -> dict[str, Any]:
    table = next(t for t in TABLES if t.name == name)
    folder = WORK.parent / "compression" / f"{name}-{budget:.0f}"
    init_project(folder, table, load(table), budget)
    run = run_honing(folder, seed=0)
    before, commit = automl_score(name, budget)
    return {
        "commit": code_commit(),
        "score": run["score"],
        "automl_score": before,
        "automl_commit": commit,
        "wall_s": run["wall_s"],
        "model": run["model"],
        "record": run.get("served"),
        "trimmed": run.get("trimmed", []),
        "seconds": run["seconds"],
    }


def judged(row: dict[str, Any]) -> dict[str, Any]:
    """The issue's shape for one table: served, p50 and size ratios, within tolerance, the
    metrics native and served."""
    record = row.get("record") or {}
    served = record.get("served", "none")
    compressed = served not in ("none", "native")
    return {
        "served": served,
        "p50_ratio": record.get("p50_ratio"),
        "size_ratio": record.get("size_ratio"),
        "within_tolerance": bool(record),  # the pick serves nothing outside it
        "meets": compressed
        and record["p50_ratio"] <= P50_TARGET
        and record["size_ratio"] <= SIZE_TARGET,
        "metrics": record.get("metrics", {}),
    }


def columns_read(record: dict[str, Any]) -> str:
    """How many of the table's columns the served graph reads ("all" unless its inputs were
    cut), from its candidate's note."""
    found = re.search(r"reads (\d+ of \d+) columns", record.get("note") or "")
    return found.group(1) if found else ("all" if record else "-")


def render(results: dict[str, Any]) -> str:
    tables = results["tables"]
    lines = [
        "# The served flavor of `honing init --budget 60` on the AutoML tables",
        "",
        f"{results['machine']}. One `honing init DATA --budget B` then `honing run` per table "
        "(first seed's split, cold start); the served flavor's size and single-row p50 (one "
        "thread) as shares of the native model's, from the run's own compression report. "
        "`score`: the run's test metric; `automl.py`: the same split's score in "
        "`automl.json` (its commit), before or without this run's compression reserve.",
        "",
        "| table | commit | model | served | seeds compressed | columns read | size x | p50 x "
        "| p50 / p99 ms | rows/s served (native) | score | automl.py | meets | why not |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in tables.items():
        j, rec = row, row.get("record") or {}
        why = "" if j["meets"] else "; ".join(row.get("trimmed", [])) or rec.get("reason", "")
        lines.append(
            f"| {name} | `{row['commit']}` | {row['model'][:40]} | {j['served']} | "
            f"{row.get('seeds_compressed', '-')} | {columns_read(rec)} | "
            f"{fmt(j['size_ratio'], 3)} | {fmt(j['p50_ratio'], 3)} | {fmt(rec.get('p50_ms'), 3)} / "
            f"{fmt(rec.get('p99_ms'), 3)} | {fmt(rec.get('throughput_rows_s'), 0)} "
            f"({fmt(rec.get('native_throughput_rows_s'), 0)}) | {fmt(row['score'], 4)} | "
            f"{fmt(row['automl_score'], 4)} (`{row['automl_commit']}`) | "
            f"{'yes' if j['meets'] else 'no'} | {why[:160]} |"
        )
    done = list(tables.values())
    compressed = [r for r in done if r["served"] not in ("none", "native")]
    meets = [r for r in done if r["meets"]]
    share_met = "met" if len(compressed) >= SHARE_TARGET * len(done) else "NOT met"
    lines += [
        "",
        "Targets:",
        "",
        f"- a compressed served flavor on {len(compressed)} of {len(done)} tables (target "
        f"{SHARE_TARGET:.0%}) - {share_met}",
        f"- p50 <= {P50_TARGET}x and size <= {SIZE_TARGET}x native, within tolerance: "
        f"{len(meets)} of {len(compressed)} compressed tables",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--tables", nargs="*", default=None)
    parser.add_argument(
        "--from-automl", action="store_true",
        help="read automl.json's runs at --budget (they record their served flavor) instead "
        "of running honing again",
    )  # fmt: skip
    args = parser.parse_args()
    names = args.tables or [t.name for t in TABLES]
    path = RESULTS / f"{NAME}.json"
    results = json.loads(path.read_text()) if path.exists() else {"tables": {}}
    results.update(commit=code_commit(), machine=machine(), budget_s=args.budget)
    if args.from_automl:
        for name, row in from_automl(args.budget).items():
            row.update(judged(row))
            results["tables"][name] = row
        write_json(NAME, results)
        write_markdown(NAME, render(results))
        print(render(results))
        return
    for name in names:
        try:
            row = one_table(name, args.budget)
        except Exception as exc:  # noqa: BLE001 - a failure is a result
            print(f"{name}: FAILED {str(exc)[-300:]}", flush=True)
            continue
        row.update(judged(row))
        results["tables"][name] = row
        print(f"{name}: served {row['served']}, meets {row['meets']}", flush=True)
        write_json(NAME, results)
        write_markdown(NAME, render(results))


if __name__ == "__main__":
    main()
