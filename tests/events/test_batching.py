"""Batcher: concurrent callers share runs, each served by a run that started after it asked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from events.batching import Batcher


async def test_callers_arriving_during_a_run_share_the_next_one_and_see_what_changed() -> None:
    value = {"plan": "free"}
    runs: list[list[str]] = []
    first_run_started, release_first_run = asyncio.Event(), asyncio.Event()

    async def read(keys: Sequence[str]) -> list[str]:
        runs.append(list(keys))
        seen = [f"{key}:{value['plan']}" for key in keys]  # read when the run starts
        if len(runs) == 1:
            first_run_started.set()
            await release_first_run.wait()
        return seen

    batcher: Batcher[str, str] = Batcher(read)
    first = asyncio.create_task(batcher("a"))
    await first_run_started.wait()
    value["plan"] = "pro"  # committed before the next callers ask
    later = [asyncio.create_task(batcher(key)) for key in ("b", "c", "b")]
    release_first_run.set()
    assert await first == "a:free"
    assert await asyncio.gather(*later) == ["b:pro", "c:pro", "b:pro"]
    # They waited for the run in flight to end, then shared one.
    assert runs == [["a"], ["b", "c", "b"]]


async def test_a_failed_run_fails_each_of_its_callers_and_the_next_run_still_serves() -> None:
    calls = 0

    async def work(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(work)
    results = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError, ConnectionError]
    assert await batcher(3) == 6


async def test_a_caller_that_gives_up_leaves_its_item_in_the_run() -> None:
    done: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def commit(items: Sequence[str]) -> list[None]:
        started.set()
        await release.wait()
        done.extend(items)
        return [None] * len(items)

    batcher: Batcher[str, None] = Batcher(commit)
    leaving = asyncio.create_task(batcher("event-1"))
    staying = asyncio.create_task(batcher("event-2"))
    await started.wait()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    release.set()
    await staying
    assert done == ["event-1", "event-2"]


async def test_runs_take_at_most_max_batch_items() -> None:
    sizes: list[int] = []

    async def work(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return list(items)

    batcher: Batcher[int, int] = Batcher(work, max_batch=3)
    assert await asyncio.gather(*(batcher(i) for i in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


async def test_a_work_answering_the_wrong_number_of_results_fails_its_callers() -> None:
    async def work(items: Sequence[int]) -> list[int]:
        return []

    batcher: Batcher[int, int] = Batcher(work)
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await batcher(1)
