"""A bounded set of ids seen lately, oldest forgotten first: what this process remembers without the store."""

from __future__ import annotations

import threading
from collections import OrderedDict


class RecentIds:
    """Thread-safe. Used for Slack event ids (a redelivery is dropped before the store is asked) and for
    Workflow Builder runs already ended (a second click is answered from memory)."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._seen

    def first_time(self, key: str) -> bool:
        """Remember `key`; True when it was not remembered yet."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True
