"""Prefect flow runs left RUNNING by killed processes, settled when the next run starts.

A SIGKILL ends a flow run without reporting its end: Prefect shows it RUNNING forever.
:func:`honing.tracking.stale.heal` finds the MLflow runs whose owner process is gone; their
``honing.flow_run_id`` tags name the flow runs, which :func:`settle` marks CRASHED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True)
class Settled:
    flow_runs: list[str] = field(default_factory=list)

    def log_lines(self) -> list[str]:
        return [f"marked CRASHED: flow run {r} (its process is gone)" for r in self.flow_runs]


def settle(flow_run_ids: list[str]) -> Settled:
    """Mark CRASHED those of ``flow_run_ids`` that Prefect still shows unfinished."""
    from prefect import get_client
    from prefect.states import Crashed

    settled = []
    with get_client(sync_client=True) as client:
        for run_id in flow_run_ids:
            try:
                run = client.read_flow_run(UUID(run_id))
            except Exception:  # noqa: BLE001 - not a flow run of this API: nothing to settle
                continue
            if run.state is not None and not run.state.is_final():
                client.set_flow_run_state(
                    run.id, Crashed(message="its process was killed; settled by a later run"),
                    force=True,
                )  # fmt: skip
                settled.append(run_id)
    return Settled(settled)
