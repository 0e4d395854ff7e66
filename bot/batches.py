"""Writes batched by one thread (the store's writer): one transaction for many items costs far less than
one each."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def next_batch(
    source: queue.Queue[T | None],
    *,
    limit: int,
    linger: float = 0.0,
    urgent: Callable[[T], bool] | None = None,
    urgent_linger: float = 0.0,
) -> list[T] | None:
    """Wait for an item, then take what else is queued, or arrives within `linger` seconds, up to `limit`;
    once an `urgent` item is in the batch, within `urgent_linger` of it at most (someone waits for it).
    None once the queue is closed (a None was put) and empty: the writer stops. A close met inside a batch
    is put back, so that batch is written first."""
    first = source.get()
    if first is None:
        return None
    batch = [first]
    hurry = urgent is not None and urgent(first)
    deadline = time.monotonic() + (urgent_linger if hurry else linger)
    # Sleep through the linger rather than wait on the queue for each item: a writer woken by every put
    # cost a thread switch per item, more CPU than writing the item. Lingering for rows nobody waits for,
    # it looks in at `urgent_linger` steps, so that an urgent item arriving meanwhile is not held long.
    step = urgent_linger if urgent is not None and urgent_linger > 0 else linger
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, step))
            continue
        if item is None:
            source.put(None)
            break
        batch.append(item)
        if urgent is not None and not hurry and urgent(item):
            hurry, deadline = True, min(deadline, time.monotonic() + urgent_linger)
    return batch
