"""`honing init` writes a config its own data passes: a quality rule the table already
breaks is moved just past what was observed, with a comment in the YAML and a warning, and
the first `honing run` on it trains and registers a model."""

import json
import os
import subprocess

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HONING = str(ROOT / ".venv" / "bin" / "honing")


def test_init_on_a_table_with_9_percent_duplicates_then_run(project, churn_df):
    root = project["root"]
    table = churn_df.sample(2500, random_state=0)
    dupes = table.sample(frac=0.1, random_state=1)  # about 9% of the result: exact copies
    data = pd.concat([table, dupes], ignore_index=True)
    path = root / "data" / "dupes.csv"
    data.to_csv(path, index=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_TRACKING", "PREFECT_API", "PREFECT__", "RAY_ADDRESS"))
    }
    env["PREFECT_HOME"] = str(root / ".prefect")

    init = subprocess.run(
        [HONING, "init", "data/dupes.csv", "--target", "churn", "--budget", "45"],
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
    assert observed < rules["max_duplicate_fraction"] <= observed + 0.011

    run = subprocess.run(
        [HONING, "run", "--config", "configs/dupes.yaml", "--env", str(project["env"]),
         "--metrics-out", "summary.json"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((root / "summary.json").read_text())
    assert summary["version"] == "1" and summary["promoted"]
    assert summary["cleaning"]["duplicates_dropped"] > 0
