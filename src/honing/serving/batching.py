"""Micro-batching for the online endpoint: requests that arrive together are scored together.

A request's cost in the endpoint is mostly fixed (a frame, the suite's checks, one call of
the model), whether it carries one row or a hundred. :class:`Batcher` keeps one batch in
flight at a time, on a thread of its own: requests that arrive while it is scored wait and
become the next batch, up to ``max_rows`` rows. Under light traffic a request is scored as
soon as it arrives (no timer, no added wait); under heavy traffic the batches grow and the
fixed cost is shared. The batch function returns one result per item, in order: a value, or
an exception that is raised to that item's caller alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger("honing.serving.batching")

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchStats:
    """What the batcher did: batches scored, items in them, and the largest batch."""

    batches: int = 0
    items: int = 0
    largest: int = 0

    def describe(self) -> dict[str, float]:
        return {
            "batches": self.batches,
            "requests": self.items,
            "mean_batch": round(self.items / self.batches, 2) if self.batches else 0.0,
            "largest_batch": self.largest,
        }


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    rows: int
    future: asyncio.Future[R] = field(repr=False)


class Batcher(Generic[T, R]):
    """Scores items with ``score(items) -> results`` in batches of at most ``max_rows`` rows
    (an item larger than that is a batch alone), one batch at a time, off the event loop.

    ``after(items, results)``, when given, runs on a second thread once a batch's callers
    have their results (the shadow model's work), one batch at a time; while it lags by
    more than ``after_backlog`` batches, new batches skip it and :attr:`skipped` counts
    their items."""

    def __init__(
        self,
        score: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        max_rows: int = 512,
        after: Callable[[Sequence[T], Sequence[R | BaseException]], None] | None = None,
        after_backlog: int = 8,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.score = score
        self.max_rows = max_rows
        self.after = after
        self.after_backlog = after_backlog
        self.stats = BatchStats()
        self.skipped = 0
        self._queue: list[_Waiting[T, R]] = []
        self._running: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="honing-score")
        self._after_pool = ThreadPoolExecutor(1, thread_name_prefix="honing-after")
        self._after_pending = 0

    async def submit(self, item: T, rows: int = 1) -> R:
        """The item's result, scored with whatever else is waiting (raises its exception)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, rows, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[_Waiting[T, R]]:
        """The next batch: waiting items in arrival order, up to ``max_rows`` rows (at least
        one item)."""
        taken, rows = [], 0
        while self._queue and (not taken or rows + self._queue[0].rows <= self.max_rows):
            waiting = self._queue.pop(0)
            taken.append(waiting)
            rows += waiting.rows
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._take()
            items = [w.item for w in batch]
            try:
                results = await loop.run_in_executor(self._pool, self.score, items)
                if len(results) != len(items):
                    raise RuntimeError(f"{len(results)} results for {len(items)} requests")
            except Exception as exc:  # noqa: BLE001 - every caller of the batch hears of it
                log.exception("scoring a batch of %d failed", len(items))
                results = [exc] * len(items)
            self.stats.batches += 1
            self.stats.items += len(items)
            self.stats.largest = max(self.stats.largest, len(items))
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():  # its caller went away
                    continue
                if isinstance(result, BaseException):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)
            self._follow_up(loop, items, results)

    def _follow_up(
        self,
        loop: asyncio.AbstractEventLoop,
        items: list[T],
        results: Sequence[R | BaseException],
    ) -> None:
        if self.after is None:
            return
        if self._after_pending >= self.after_backlog:
            self.skipped += len(items)
            return
        self._after_pending += 1
        done = loop.run_in_executor(self._after_pool, self._run_after, items, results)
        done.add_done_callback(lambda _: self._after_finished())

    def _after_finished(self) -> None:
        self._after_pending -= 1

    def _run_after(self, items: list[T], results: Sequence[R | BaseException]) -> None:
        assert self.after is not None
        try:
            self.after(items, results)
        except Exception:  # noqa: BLE001 - never reaches a caller, who has its answer
            log.exception("the follow-up of a batch of %d failed", len(items))

    def close(self) -> None:
        """Stop the threads (waiting for the batch in flight)."""
        self._pool.shutdown(wait=True)
        self._after_pool.shutdown(wait=True)
