"""Micro-batching: requests that arrive within a few milliseconds are computed as one batch.

Every request's item goes into one queue; one worker takes the first waiting
item, waits up to ``max_wait_ms`` for more (up to ``max_batch``), and runs the
batch function on a single background thread (so the model is never used by
two threads at once and the event loop keeps accepting requests). When a
batch fails, its items are retried one by one, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

BatchFn = Callable[[Sequence[Any]], list[Any]]


@dataclass
class BatchStats:
    """How batching went: requests, batches, and the largest batch."""

    items: int = 0
    batches: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def add(self, size: int) -> None:
        self.items += size
        self.batches += 1
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


class MicroBatcher:
    """``await batcher.submit(item)`` -> ``fn([item, ...])``'s result for that item.

    Args:
        fn: computes a list of results from a list of items (same order, same length).
        max_batch: the most items per call of ``fn`` (1: every item alone).
        max_wait_ms: how long the first item of a batch waits for company.
        executor: the single thread ``fn`` runs on (shared between the batchers of one model).
    """

    def __init__(self, fn: BatchFn, *, max_batch: int, max_wait_ms: float,
                 executor: concurrent.futures.Executor) -> None:  # fmt: skip
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000
        self.executor = executor
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future]] | None = None
        self.worker: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stats = BatchStats()

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # created in the loop that serves (a test client may start a loop per request)
            self.loop, self.queue = loop, asyncio.Queue()
            self.worker = loop.create_task(self._work())
        future = loop.create_future()
        await self.queue.put((item, future))
        return await future

    async def _collect(self) -> list[tuple[Any, asyncio.Future]]:
        assert self.queue is not None
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and self.queue.empty():
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), max(remaining, 0)) if remaining > 0
                             else self.queue.get_nowait())  # fmt: skip
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            items = [item for item, _ in batch]
            self.stats.add(len(items))
            try:
                results = await loop.run_in_executor(self.executor, self.fn, items)
            except Exception:  # noqa: BLE001 - find which item failed: retry each alone
                results = [await self._alone(loop, item) for item in items]
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue  # the client went away
                if isinstance(result, _Failed):
                    future.set_exception(result.error)
                else:
                    future.set_result(result)

    async def _alone(self, loop: asyncio.AbstractEventLoop, item: Any) -> Any:
        try:
            return (await loop.run_in_executor(self.executor, self.fn, [item]))[0]
        except Exception as err:  # noqa: BLE001 - handed to that request alone
            return _Failed(err)


@dataclass
class _Failed:
    error: BaseException
