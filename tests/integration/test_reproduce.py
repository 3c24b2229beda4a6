"""`honing reproduce`: the exact data version comes back through DVC, the model is rebuilt
from the registered lineage, and the metrics match."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from honing.data import file_md5

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DVC = str(Path(sys.executable).parent / "dvc")


def _sh(cmd: list[str], cwd: Path) -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{cmd}: {out.stdout}\n{out.stderr}"


def _commit(root: Path, message: str) -> None:
    _sh([DVC, "add", "data/churn.csv"], root)
    _sh(["git", "add", "-A"], root)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], root)


def test_reproduce_a_version_after_the_data_moved_on(project, prefect_harness, monkeypatch):
    from honing_flows.flows.reproduce import reproduce_pipeline
    from honing_flows.flows.training import training_pipeline

    root = project["root"]
    (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\nray_results/\n.honing/\n")
    _sh(["git", "init", "-q"], root)
    _sh([DVC, "init", "-q"], root)
    _sh([DVC, "config", "core.analytics", "false"], root)
    _commit(root, "data v1")

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    try:
        trained = training_pipeline(
            config_path=str(project["config"]), env_path=str(project["env"]), repo=str(root)
        )
        v1_md5 = file_md5(project["data"])
        assert trained.lineage["honing.git_dirty"] == "False"

        # The data moves on: a new DVC version in a new commit.
        df = pd.read_csv(project["data"])
        df.iloc[: len(df) - 700].to_csv(project["data"], index=False)
        _commit(root, "data v2")
        assert file_md5(project["data"]) != v1_md5

        result = reproduce_pipeline(
            model_name="honing-churn",
            version=trained.version,
            env_path=str(project["env"]),
            repo=str(root),
        )
    finally:
        mlflow.set_tracking_uri(before)
    fetched = Path(result["data_path"])
    assert fetched != project["data"] and file_md5(fetched) == v1_md5  # through DVC
    assert result["matches"]
    # the model the version recorded (spec and rule), refit: no search, no choice made anew
    assert result["from_recorded_choice"]
    assert set(result["expected"]) >= {"roc_auc", "accuracy", "f1"}
    for name, value in result["expected"].items():  # the same model: the same metrics
        assert result["actual"][name] == pytest.approx(value, abs=1e-6)
