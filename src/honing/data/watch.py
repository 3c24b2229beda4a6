"""What the data watcher of ``honing serve`` checks on each run: whether a watched file's
content changed since the last check. Light on purpose: each check is a flow run in a process
of its own, which imports this module and Prefect, and none of the model libraries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from honing.data import file_md5

__all__ = ["DataChange", "detect_changes"]


@dataclass(frozen=True)
class DataChange:
    path: str
    old_md5: str | None
    new_md5: str


def detect_changes(paths: list[Path], state_path: Path) -> list[DataChange]:
    """Content changes of ``paths`` since the last call, remembered in ``state_path`` (JSON).
    The first call for a path records it and reports no change; a missing file is skipped."""
    state_path = Path(state_path)
    seen = json.loads(state_path.read_text()) if state_path.exists() else {}
    changes = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        md5 = file_md5(path)
        key = str(path.resolve())
        if key in seen and seen[key] != md5:
            changes.append(DataChange(str(path), seen[key], md5))
        seen[key] = md5
    state_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(seen, indent=2, sort_keys=True))
    tmp.replace(state_path)
    return changes
