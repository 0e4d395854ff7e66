"""Work that nobody waits for, written in batches by one thread: the store's history rows, the ledger's
owed messages. One transaction for many items costs far less than one each."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def next_batch(source: queue.Queue[T | None], *, limit: int, linger: float = 0.0) -> list[T] | None:
    """Wait for an item, then take what else is queued, or arrives within `linger` seconds, up to `limit`.
    None once the queue is closed (a None was put) and empty: the writer stops. A close met inside a batch
    is put back, so that batch is written first."""
    first = source.get()
    if first is None:
        return None
    batch = [first]
    # Sleep through the linger rather than wait on the queue for each item: a writer woken by every put
    # cost a thread switch per item, more CPU than writing the item.
    if linger > 0 and source.qsize() < limit - 1:
        time.sleep(linger)
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            source.put(None)
            break
        batch.append(item)
    return batch
