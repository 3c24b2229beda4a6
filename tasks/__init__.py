"""Prefect task wrappers: each task is one call into the ``honing`` library.

Retries are set only where a task does I/O (files, MLflow, the registry); pure computations fail
fast. Results are neither cached nor persisted: tasks pass DataFrames and models in memory.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from honing.exceptions import is_transient

IO_RETRIES = 3
IO_RETRY_DELAYS = [1, 2, 4]


def compute_task(fn: Callable[..., Any]) -> Any:
    """A task around a pure computation: no retries."""
    return task(fn, cache_policy=NO_CACHE, persist_result=False)


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O failures; a bad config or bad data fails the same way every time."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we only classify it
        return is_transient(exc)
    return True


def io_task(fn: Callable[..., Any] | None = None, *, run_name: str | None = None) -> Any:
    """A task that reads or writes files or services: retried with backoff when the failure
    may be transient. ``run_name``: a task-run name template over the parameters (e.g.
    ``log_json({artifact_file})``), so that a flow run's task list says what each run wrote
    (parentheses, not brackets: Prefect's console reads brackets as Rich markup).
    Use bare (``@io_task``) or with the template (``@io_task(run_name=...)``)."""

    def wrap(f: Callable[..., Any]) -> Any:
        return task(
            f,
            cache_policy=NO_CACHE,
            persist_result=False,
            retries=IO_RETRIES,
            retry_delay_seconds=IO_RETRY_DELAYS,
            retry_condition_fn=_retry_if_transient,
            **({"task_run_name": run_name} if run_name else {}),
        )

    return wrap(fn) if fn is not None else wrap


class Reported(Protocol):
    def log_lines(self) -> list[str]: ...


R = TypeVar("R", bound=Reported | None)


def run_log() -> Callable[[str], None]:
    """Where a task writes its decision lines: its run's Prefect log (the ``honing`` logger
    when called as a plain function, ``task.fn``, outside a run)."""
    try:
        return get_run_logger().info  # type: ignore[no-any-return]
    except MissingContextError:
        return logging.getLogger("honing").info


T = TypeVar("T")


def told(step: Callable[..., T]) -> Callable[..., T]:
    """``step``, a plain step of :mod:`honing.stages.steps`, writing its decision lines to
    the task run's log: a task's parameters are the step's, less ``log``."""
    signature = inspect.signature(step)

    @functools.wraps(step)
    def run(**kwargs: Any) -> T:
        return step(**kwargs, log=run_log())

    params = [p for p in signature.parameters.values() if p.name != "log"]
    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return run


def logged(value: R) -> R:
    """``value``, after writing its decision lines (scores, choices, what was trimmed) to the
    task run's log, so that a Prefect run reads as a story (None: nothing to say)."""
    if value is None:
        return value
    log = run_log()
    for line in value.log_lines():
        log(line)
    return value
