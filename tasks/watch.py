"""The data watcher's task: which watched files changed since the last check. Its own module,
light on purpose: each check of ``honing serve``'s watcher is a flow run in a process of its
own, and this module imports Prefect and :mod:`honing.data.watch`, not the model libraries
the other tasks need (about a second of CPU per check)."""

from __future__ import annotations

from pathlib import Path

from honing.data import watch
from honing_flows.tasks import io_task


@io_task
def detect_changes(paths: list[str], state_path: str) -> list[watch.DataChange]:
    return watch.detect_changes([Path(p) for p in paths], Path(state_path))
