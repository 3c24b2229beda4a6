"""State left behind by killed processes, found and settled when the next run starts.

A SIGKILL (or a lost machine) ends a run without ``finally`` blocks: its MLflow run stays
RUNNING forever, and a registration cut between "created the version" and its last tag
leaves a version without the file digests that loaders require. Each top-level run records
its owner (host, PID and the process's start time, so a reused PID is not mistaken for it);
:func:`heal` marks the runs whose owner is gone FAILED, and the versions whose training
run has ended without finishing their registration ``honing.status=incomplete``."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from honing.lineage import DIGEST_TAG, FLOW_RUN_TAG, PREFIX, RUN_ID_TAG

OWNER_HOST, OWNER_PID, OWNER_STARTED = (f"{PREFIX}owner_{k}" for k in ("host", "pid", "started"))
STATUS_TAG = f"{PREFIX}status"
SOURCE_TAG = f"{PREFIX}source"  # a served version: "<name>/<version>" it was built from


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` (seconds since boot, from /proc), or None when no
    such process exists."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run."""
    pid = os.getpid()
    return {
        OWNER_HOST: socket.gethostname(),
        OWNER_PID: str(pid),
        OWNER_STARTED: _started(pid) or "",
    }


def owner_gone(tags: dict[str, str]) -> bool:
    """Whether the run's owner process, on this host, no longer exists (False for runs of
    other hosts or without owner tags: nothing here can tell)."""
    if tags.get(OWNER_HOST) != socket.gethostname() or not tags.get(OWNER_PID, "").isdigit():
        return False
    started = _started(int(tags[OWNER_PID]))
    return started is None or started != tags.get(OWNER_STARTED)


@dataclass
class Healed:
    runs: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    flow_runs: list[str] = field(default_factory=list)  # the orchestrator's runs of ``runs``

    def log_lines(self) -> list[str]:
        return [f"marked FAILED: run {r} (its process is gone)" for r in self.runs] + [
            f"marked incomplete: {v} (its registration did not finish)" for v in self.versions
        ]


def heal(experiment_id: str, model_names: list[str]) -> Healed:
    """Settle what killed processes left in the experiment and in ``model_names``."""
    from mlflow import MlflowClient

    client = MlflowClient()
    healed = Healed()
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
        if owner_gone(run.data.tags):
            client.set_terminated(run.info.run_id, "FAILED", end_time=int(time.time() * 1000))
            client.set_tag(run.info.run_id, STATUS_TAG, "killed: owner process gone")
            healed.runs.append(run.info.run_id)
            if run.data.tags.get(FLOW_RUN_TAG):
                healed.flow_runs.append(run.data.tags[FLOW_RUN_TAG])
    for name in model_names:
        for mv in client.search_model_versions(f"name='{name}'"):
            if DIGEST_TAG in mv.tags or mv.tags.get(STATUS_TAG) == "incomplete":
                continue
            run_id = mv.tags.get(RUN_ID_TAG) or mv.run_id
            source = mv.tags.get(SOURCE_TAG, "")  # a served version: its source's run
            if source.count("/") == 1 and not run_id:
                src_name, src_version = source.split("/")
                run_id = client.get_model_version(src_name, src_version).tags.get(RUN_ID_TAG)
            try:
                running = run_id and client.get_run(run_id).info.status == "RUNNING"
            except Exception:  # noqa: BLE001 - a vanished run cannot be finishing it
                running = False
            if not running:
                client.set_model_version_tag(name, mv.version, STATUS_TAG, "incomplete")
                healed.versions.append(f"{name} v{mv.version}")
    return healed
