"""The endpoint's micro-batcher: what arrives while a batch is scored is scored together, each
caller gets its own result or its own error, and the follow-up never reaches a caller."""

from __future__ import annotations

import asyncio
import threading
import time

from honing.serving.batching import Batcher


def test_requests_that_arrive_during_a_batch_are_scored_together_in_order():
    seen: list[list[int]] = []
    release = threading.Event()

    def score(items):
        if not seen:  # the first batch holds until the others have queued
            release.wait(5)
        seen.append(list(items))
        return [i * 10 for i in items]

    async def main():
        batcher = Batcher(score)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 9)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return results, batcher.stats.describe()

    results, stats = asyncio.run(main())
    assert results == [i * 10 for i in range(9)]
    assert seen == [[0], list(range(1, 9))]
    assert stats == {"batches": 2, "requests": 9, "mean_batch": 4.5, "largest_batch": 8}


def test_batches_keep_to_their_rows_and_a_large_request_goes_alone():
    seen: list[list[str]] = []
    release = threading.Event()

    def score(items):
        if not seen:
            release.wait(5)
        seen.append([name for name, _ in items])
        return [rows for _, rows in items]

    async def main():
        batcher = Batcher(score, max_rows=10)
        first = asyncio.create_task(batcher.submit(("first", 1), 1))
        await asyncio.sleep(0.05)
        sizes = {"a": 4, "b": 4, "c": 4, "big": 25, "d": 1}
        tasks = [asyncio.create_task(batcher.submit((k, n), n)) for k, n in sizes.items()]
        await asyncio.sleep(0.05)
        release.set()
        out = await asyncio.gather(first, *tasks)
        batcher.close()
        return out

    assert asyncio.run(main()) == [1, 4, 4, 4, 25, 1]
    assert seen == [["first"], ["a", "b"], ["c"], ["big"], ["d"]]


def test_each_caller_gets_its_own_error_and_a_broken_batch_reaches_all():
    def score(items):
        if "all" in items:
            raise RuntimeError("the model broke")
        return [ValueError(f"bad {i}") if i == "bad" else i.upper() for i in items]

    async def main():
        batcher = Batcher(score)
        out = await asyncio.gather(
            *(batcher.submit(x) for x in ("a", "bad", "c")), return_exceptions=True
        )
        broken = await asyncio.gather(
            *(batcher.submit(x) for x in ("all", "d")), return_exceptions=True
        )
        batcher.close()
        return out, broken

    out, broken = asyncio.run(main())
    assert out[0] == "A" and out[2] == "C"
    assert isinstance(out[1], ValueError) and str(out[1]) == "bad bad"
    assert all(isinstance(e, RuntimeError) and "broke" in str(e) for e in broken)


def test_the_follow_up_runs_after_the_answers_and_is_skipped_while_it_lags():
    followed: list[list[int]] = []
    slow = threading.Event()

    def after(items, results):
        slow.wait(5)
        followed.append(list(items))

    async def main():
        batcher = Batcher(lambda items: list(items), after=after, after_backlog=1)
        answered = await batcher.submit(1)  # answered while its follow-up still waits
        assert followed == []
        await batcher.submit(2)  # the follow-up lags by one batch: this one is skipped
        slow.set()
        deadline = time.monotonic() + 5
        while not followed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        batcher.close()
        return answered, batcher.skipped

    answered, skipped = asyncio.run(main())
    assert answered == 1 and followed == [[1]] and skipped == 1
