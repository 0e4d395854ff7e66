"""The process's one event loop, where the bot's calls (MailPartner, Slack, the store) run as coroutines.

HTTP mode and Socket Mode run on the loop `asyncio.run` starts (bot/ops/server.py), as do the CLI's modes.
Where the caller is a thread that must go on doing its own work (the console reading its input, tests),
`LoopThread` keeps a loop on a thread of its own. Code on
other threads hands it work with `submit()` (a `concurrent.futures.Future`, whose callbacks run on the
loop) or waits for an answer with `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoop:
    """A running loop, and how any thread, its own included, hands it work."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()  # the loop holds its tasks weakly: they are held here

    def submit(self, work: Coroutine[Any, Any, T]) -> Future[T] | asyncio.Future[T]:
        """Start `work` on the loop. On the loop's own thread it is a task at once: no wake-up of the loop
        through its self-pipe, no `concurrent.futures.Future` and its lock, which cost every cancel's
        MailPartner call. Either answer takes `add_done_callback`, run on the loop."""
        if self._on_loop():
            task = self.loop.create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return task
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def call(self, work: Callable[..., None], *args: object) -> None:
        """Run `work(*args)` on the loop: now when called there, else as soon as the loop gets to it, in
        order. Raises RuntimeError once the loop is closed."""
        if self._on_loop():
            work(*args)
        else:
            self.loop.call_soon_threadsafe(work, *args)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Wait for `work` from a thread that is not the loop's (on the loop's own thread it would hang)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        """The loop belongs to whoever runs it: nothing to stop here."""


class LoopThread(EventLoop):
    """An event loop on a daemon thread of its own, stopped by `close()`."""

    def __init__(self, name: str = "event-loop") -> None:
        super().__init__(asyncio.new_event_loop())
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Cancel what still runs on the loop (idle workers, calls cut short), then stop it."""
        if self.loop.is_closed():
            return
        try:
            self.run(_cancel_the_rest(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Changes:
    """Coroutines on the loop wait here for state that any thread may change: the drain awaits it, where a
    thread would wait on a `threading.Condition`. `changed()` after each change; `until()` on the loop."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()  # set, on the loop, when something changed since the last look

    def changed(self) -> None:
        """From any thread: whoever awaits `until()` looks again."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits anything any more
            self._loop.call(self._event.set)

    async def until(self, check: Callable[[], bool], timeout: float) -> bool:
        """Wait, on the loop, until `check()` holds (True) or `timeout` s passed (False)."""
        deadline = self._loop.loop.time() + max(0.0, timeout)
        while True:
            self._event.clear()  # cleared before looking: a change after the look wakes the wait below
            if check():
                return True
            remaining = deadline - self._loop.loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self._event.wait()
            except TimeoutError:
                return check()
