"""`honing init` writes a config its own data passes: a quality rule the table breaks is
moved with room for later batches, a column that breaks one is dropped (a constant one is
kept, and the rule off), each with a comment in the YAML and a warning, and the first
`honing run` on it trains and registers a model, its time budget counted from the command's
own start. A column of numbers with a marker of missing values is read as numbers, by init
and by the run."""

import json
import os
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, prefect_home

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HONING = str(ROOT / ".venv" / "bin" / "honing")
BUDGET = 30


def test_init_on_a_table_that_breaks_every_rule_then_run_within_the_budget(project, churn_df):
    root = project["root"]
    table = churn_df.sample(2500, random_state=0)
    table["plant"] = "north"  # constant
    table["notes"] = np.nan  # empty
    table["ratio"] = np.where(np.arange(len(table)) % 50 == 0, np.inf, 1.0 / (1 + table.index))
    table["churned_flag"] = (table["churn"] == "Yes").astype(int)  # the label, leaked
    # a measurement whose missing values are written "." (read as text but for the marker):
    # init writes the marker into the config, and the run's validation, which types the
    # column as numbers, reads the table through it
    usage = np.random.default_rng(2).gamma(2.0, 15.0, len(table)).round(2).astype(str)
    table["usage_gb"] = np.where(np.arange(len(table)) % 13 == 0, ".", usage)
    dupes = table.sample(frac=0.1, random_state=1)  # about 9% of the result: exact copies
    data = pd.concat([table, dupes], ignore_index=True)
    path = root / "data" / "dupes.csv"
    data.to_csv(path, index=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "PREFECT_API", "PREFECT__", "RAY_ADDRESS"))
    }
    env["PREFECT_HOME"] = str(prefect_home(root / ".prefect"))

    init = subprocess.run(
        [HONING, "init", "data/dupes.csv", "--target", "churn", "--budget", str(BUDGET)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    said = " ".join(init.stdout.split())
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    assert "validation.quality.max_duplicate_fraction" in said and "duplicates" in said
    text = (root / "configs" / "dupes.yaml").read_text()
    comment = text.index("# 9.1% of the rows are exact duplicates")
    assert text.index("max_duplicate_fraction:", comment) > comment  # the note above its key
    rules = yaml.safe_load(text)["validation"]["quality"]
    observed = data.duplicated().mean()
    assert rules["max_duplicate_fraction"] == pytest.approx(2 * observed + 0.02, abs=1e-4)
    dropped = yaml.safe_load(text)["data"]["drop_columns"]
    assert set(dropped) >= {"notes", "ratio", "churned_flag"}
    comment = text.index("# dropped by init: ")
    assert text.index("drop_columns:", comment) > comment  # the reasons above the key
    for column, why in (("notes", "empty"), ("ratio", "infinite"), ("churned_flag", "leaks")):
        assert f"dropped {column}: " in said and why in said
    # a constant column is kept (a later batch may vary), and the rule that refuses one is off
    assert "plant" not in dropped and "forbid_constant_columns" in said and "plant" in said
    assert yaml.safe_load(text)["validation"]["quality"]["forbid_constant_columns"] is False
    assert "read as missing (data.missing_values): '.'" in said and "usage_gb" in said
    assert yaml.safe_load(text)["data"]["missing_values"] == ["."]
    assert "usage_gb" not in dropped

    began = time.monotonic()
    run = subprocess.run(
        [HONING, "run", "--config", "configs/dupes.yaml", "--env", str(project["env"]),
         "--metrics-out", "summary.json"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.monotonic() - began
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # the budget covers the whole command: the run counts its seconds from the command's
    # cold start (Prefect's API, Ray, the imports: 11-40 s, more under load), not from the
    # flow's, so its total holds that start beside its stages, and only the exit (the
    # summary, the API's stop) lies outside it; whether the wall keeps to 1.1 x B + 5 s is
    # a speed goal, measured by bench/anytime.py. (A bound on the exit's seconds failed
    # beside a second test suite: 17.6 s.)
    summary = json.loads((root / "summary.json").read_text())
    timings = summary["timings"]
    counted = timings["total"]
    stages = sum(v for k, v in timings.items() if k not in ("total", "ray_start"))
    assert counted - stages >= 5 and counted <= wall, (wall, counted, timings)
    assert summary["version"] == "1" and summary["promoted"]
    assert summary["cleaning"]["duplicates_dropped"] > 0
