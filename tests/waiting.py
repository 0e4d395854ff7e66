"""Waiting in tests: for a condition, never for a fixed time, so a loaded machine only makes a test slower.

    eventually(check)      polls `check` until it returns something truthy, and returns that; fails the test
                           after `timeout` seconds, saying what never happened
    holds_for(check, s)    the one wait with a length of its own: proving that something does NOT happen
                           (no second post, no second call) needs a window; `check` is asked throughout it,
                           so a breach fails at once, not only at the end

The timeouts are ceilings for a hang, far above what a test needs: they make a broken bot fail, not a slow
machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.01  # seconds between two looks: short beside every wait the tests make


def eventually(check: Callable[[], T], *, timeout: float = 15.0, what: str = "") -> T:
    """`check()`'s first truthy answer; fail the test if none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"never happened within {timeout:g}s: {what or check}"
        time.sleep(POLL)


def holds_for(check: Callable[[], object], seconds: float, *, what: str = "") -> None:
    """`check()` stays truthy for `seconds`: something that must not happen does not, for that long."""
    deadline = time.monotonic() + seconds
    while True:
        assert check(), f"stopped holding: {what or check}"
        if time.monotonic() >= deadline:
            return
        time.sleep(POLL)
