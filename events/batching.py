"""Concurrent callers' small database operations run as one, without changing what each sees.

A hot path that reads one row and commits one outbox event per request spends
most of its database time on round trips (checkout, BEGIN, the statement,
COMMIT), not on the statements. `Batcher` gathers the requests that arrive
while a run is in flight and does them together in the next run: one query
for many keys, one transaction for many events.

What each caller is promised is what it would get alone:
- its work is done by a run that starts after it asked (a read sees every
  change committed before the call; nothing is served from an older read);
- it returns only after that run finished (an event is committed, not queued);
- a run that fails fails every caller in it, with the run's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Runs `work` over every item asked for while the previous run was in flight.

    `work(items)` returns one result per item, in order. One run at a time: the
    first caller starts a background run; callers arriving meanwhile wait for the
    next one (at most `max_batch` items a run)."""

    def __init__(
        self,
        work: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 500,
    ) -> None:
        self._work = work
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        # A caller that gives up cancels only its wait: its item stays in the run, so
        # the run's effect (a committed event) does not depend on anyone still waiting.
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await self._work([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                except asyncio.CancelledError:  # shutting down: nobody is served
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending.clear()
                    raise
                except Exception as error:  # handed to every caller of the run
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._runner = None
