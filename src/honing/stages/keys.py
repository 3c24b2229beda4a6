"""What each expensive stage's result depends on: one table, read by whoever reuses results.

A stage's key hashes the data (MD5), the code (commit), the config sections its result reads,
and its own run-time inputs (``extra``: what the budget trimmed). Code with uncommitted changes
has no key: its commit does not say what ran, so nothing is reused for it.
"""

from __future__ import annotations

import hashlib
import json

from honing.config import PipelineConfig
from honing.lineage import Lineage

#: The sections every fitted result reads: the task, the data and how it is cleaned and split.
_DATA = ("task", "data", "cleaning", "split", "features")
#: The search and the time it was given (the budget shares the time between the stages).
_SEARCH = (*_DATA, "search", "time_budget_s")

#: Stage -> the config fields (top-level keys) its result depends on. The stages downstream of
#: another include its fields: the refit reads the choice, which reads the search.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "search": _SEARCH,
    "choose": _SEARCH,
    "refit": (*_SEARCH, "decision"),
    "explain": (*_SEARCH, "decision"),
    "compress": (*_SEARCH, "decision", "compression"),
}


def reusable(lineage: Lineage) -> bool:
    """Whether results of this data and code may be kept for reuse: only when the commit
    says what code ran (no uncommitted changes, inside git)."""
    return not lineage.git_dirty and lineage.git_commit != "unknown"


def stage_key(stage: str, cfg: PipelineConfig, lineage: Lineage, extra: str = "") -> str | None:
    """The cache key of ``stage`` for this config, data and code, or None (not reusable: the
    code has uncommitted changes or is outside git)."""
    if not reusable(lineage):
        return None
    fields = cfg.model_dump(mode="json", include=set(STAGE_INPUTS[stage]))
    text = json.dumps(
        {"stage": stage, "data": lineage.data_md5, "commit": lineage.git_commit, "config": fields},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256((text + extra).encode()).hexdigest()[:32]
    return f"honing-{cfg.name}-{stage}-{digest}"
