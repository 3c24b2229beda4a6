"""``watch_data``: emit ``honing.data.changed`` when a watched data file's content changes.
A deployment trigger on that event starts the retraining deployment (see flows/deployments.py
and prefect.yaml)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.events import emit_event

from honing_flows.tasks import watch as watch_tasks

DATA_CHANGED = "honing.data.changed"


@flow(name="watch_data", log_prints=True)
def watch_data(paths: list[str], state_path: str = ".honing/watch_state.json") -> list[Any]:
    """Compare the content hashes of ``paths`` with the last run's and emit one event per
    changed file."""
    changes = watch_tasks.detect_changes(paths, state_path)
    for change in changes:
        emit_event(
            event=DATA_CHANGED,
            resource={"prefect.resource.id": f"honing.data.{change.path}"},
            payload={"path": change.path, "old_md5": change.old_md5, "md5": change.new_md5},
        )
        print(f"{change.path} changed: {change.old_md5} -> {change.new_md5}")
    return [c.path for c in changes]
