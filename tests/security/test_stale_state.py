"""What a killed process leaves behind is settled by the next run: its MLflow run is marked
FAILED, and a version whose registration it cut off is marked incomplete and never loads."""

import signal
import subprocess
import sys

import mlflow
import pytest

from honing import registry, tracking
from honing.exceptions import UnsafeModelError
from honing.tracking import stale

pytestmark = [pytest.mark.integration]

KILLED = """
import os, signal
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from honing import tracking
from honing.tracking import model_logging
from honing.config import MlflowSettings
tracking.configure(MlflowSettings(tracking_uri={uri!r}, artifact_root={root!r}))
exp = tracking.ensure_experiment("killed", {root!r})
run_id = tracking.start_run(exp, "churn train")
X = pd.DataFrame({{"x": np.arange(40.0)}}); y = (X["x"] > 20).astype(int).to_numpy()
uri = model_logging.log_native_model(run_id, LogisticRegression().fit(X, y), X.head(3))
import mlflow
mlflow.register_model(uri, "killed-model", tags={{"honing.run_id": run_id}})
print(exp, run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # right after "Created version": nothing else written
"""


def test_a_killed_run_and_its_cut_registration_are_settled(mlflow_store):
    uri, root = mlflow_store.mlflow.tracking_uri, mlflow_store.mlflow.artifact_root
    proc = subprocess.run(
        [sys.executable, "-c", KILLED.format(uri=uri, root=root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    experiment_id, run_id = proc.stdout.split()
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "RUNNING"  # what the kill left
    with pytest.raises(UnsafeModelError, match="complete registrations"):
        registry.load_model("models:/killed-model/1")  # never served, even before healing

    # a live run of this process is left alone
    alive = tracking.start_run(experiment_id, "still running")
    healed = stale.heal(experiment_id, ["killed-model"])
    assert healed.runs == [run_id] and healed.versions == ["killed-model v1"]
    assert client.get_run(run_id).info.status == "FAILED"
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_model_version("killed-model", "1").tags["honing.status"] == "incomplete"
    assert any("incomplete" in line for line in healed.log_lines())
    assert stale.heal(experiment_id, ["killed-model"]).log_lines() == []  # settled once
    tracking.end_run(alive)


def test_an_ended_run_keeps_no_owner_tags(mlflow_store):
    """The tags naming a run's process matter only while it is RUNNING (a killed one is found
    by them); a run that ended, finished or failed, drops them; its trials never had them."""
    exp = tracking.ensure_experiment("owners", None)
    owners = set(stale.owner_tags())
    client = mlflow.MlflowClient()
    done = tracking.start_run(exp, "churn train")
    assert owners <= set(client.get_run(done).data.tags)  # RUNNING: its owner is named
    trial = tracking.start_run(exp, "trial", parent_run_id=done)
    tracking.end_run(trial, "KILLED", owned=False)
    tracking.end_run(done, "FINISHED")
    failed = tracking.start_run(exp, "churn train")
    tracking.fail_run(failed, "search", "no search trial finished")
    for run_id, status in ((done, "FINISHED"), (failed, "FAILED"), (trial, "KILLED")):
        run = client.get_run(run_id)
        assert run.info.status == status and not owners & set(run.data.tags), run.data.tags
