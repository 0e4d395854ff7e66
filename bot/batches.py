"""Writes batched by one task on the event loop (the store's writer): one transaction for many items costs
far less than one each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batches(Generic[T]):
    """Items put on the loop, taken by one task in batches of up to `limit`.

    A batch starts with the first item queued, then takes what else is queued or arrives within `linger`
    seconds; once an `urgent` item is queued (someone waits for it), within `urgent_linger` of it at most.
    `put` refuses an item past `capacity` (the caller decides what is lost). After `close()`, what was
    queued still comes out, then `next()` answers None: the writer stops.

    Not thread-safe: call it on the loop (`loop.call_soon_threadsafe` from elsewhere).
    """

    def __init__(
        self,
        *,
        limit: int,
        capacity: int,
        linger: float = 0.0,
        urgent: Callable[[T], bool] = lambda _: False,
        urgent_linger: float = 0.0,
    ) -> None:
        self._limit, self._capacity = limit, capacity
        self._linger, self._urgent, self._urgent_linger = linger, urgent, urgent_linger
        self._items: deque[T] = deque()
        self._urgent_queued = 0
        self._urgent_since = 0.0  # when the oldest urgent item still queued came
        self._arrived = asyncio.Event()  # an item came (or the close)
        self._hurry = asyncio.Event()  # an urgent item came (or the close)
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> bool:
        if self._closed or len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        if self._urgent(item):
            if not self._urgent_queued:
                self._urgent_since = time.monotonic()
            self._urgent_queued += 1
            self._hurry.set()
        self._arrived.set()
        return True

    def close(self) -> None:
        self._closed = True
        self._arrived.set()
        self._hurry.set()

    async def next(self) -> list[T] | None:
        while not self._items:
            if self._closed:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        # Linger on a timer, not item by item: a writer woken by every put would cost a turn of the loop per
        # item, more than writing it. An urgent item cuts the linger short.
        if not self._urgent_queued and not self._full():
            self._hurry.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._linger):
                    await self._hurry.wait()
        if self._urgent_queued and not self._full():
            await asyncio.sleep(max(0.0, self._urgent_since + self._urgent_linger - time.monotonic()))
        batch = [self._items.popleft() for _ in range(min(self._limit, len(self._items)))]
        self._urgent_queued -= sum(1 for item in batch if self._urgent(item))
        self._urgent_since = 0.0  # urgent ones left came while this batch waited: they go next, at once
        return batch

    def _full(self) -> bool:
        return self._closed or len(self._items) >= self._limit
