"""The outbox: every message the bot sends to Slack waits here for its turn, so Slack's rate limits never
lose a message a person waits for, and never let one busy channel hold up another.

    submit(lane=channel, key=conversation, method, send, priority, supersede)
        ├─ URGENT (prompts, outcomes, notes) go before COSMETIC ones (prompt updates), and COSMETIC ones go
        │  at most `cosmetic_workers` at a time: in a burst of clicks they wait, and the one process's CPU
        │  goes to the acks and the cancels, whose outcomes people wait for
        ├─ a COSMETIC update is dropped when a later one for the same prompt supersedes it
        ├─ messages of one conversation (`key`) go one at a time, in order
        ├─ a 429 pauses what it applies to, for Retry-After seconds: the channel (chat.postMessage,
        │  response_url) or the method across the workspace (chat.update, chat.postEphemeral); after the
        │  pause it sends one message at a time until nothing of it waits
        └─ Slack unavailable (5xx, no connection, no answer): the message waits the shared backoff
           (bot/http.py's RetryPolicy; capped, jittered), its conversation holding behind it, and is tried again

This is the only place a message to Slack is retried. What else retries, and with what: MailPartner's
cancel within MAILPARTNER_DEADLINE (tenacity, mailpartner/client.py), the Socket Mode dial and the bot's own
auth.test (tenacity, ops/server.py, inbound/identity.py), and slack_sdk's reads (views.open, users.info, user
groups) with slack_sdk's own retry handlers (app.py); all but slack_sdk's wait as bot/http.py's RetryPolicy
says. A message not delivered by its own deadline (`give_up_after`
seconds from submit: 5 minutes by default, CANCEL_MAIL_DELIVERY_DEADLINE for owed messages) is reported
as not delivered.

It lives on the event loop (`bind()`): its workers are a few tasks, each message's send a coroutine, and its
state is the loop's alone. `submit()` may be called from any thread; `wait_idle()` and `close()` from any
thread but the loop's. A waiting message holds nothing but its place in the queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from bot.http import RetryPolicy
from bot.loop import Changes, EventLoop
from bot.outbound.webapi import RateLimited, SlackRetryable

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 300.0  # seconds before a message is reported as not delivered, unless the sender says
RETRY_CAP = 30.0  # the longest wait between two tries while Slack is unavailable: back within 30 s of Slack
# Prompt updates sent at once, at most. In a burst of 500 clicks they ran beside the acks, before any outcome
# was due; two at a time acked the last click 0.4 to 0.8 s sooner, and posted the last outcome 0.5 to 0.8 s
# sooner, in three pairs of runs.
COSMETIC_WORKERS = 2


class Priority(IntEnum):
    URGENT = 0
    COSMETIC = 1


@dataclass(frozen=True)
class Delivery:
    ok: bool
    via: str  # "response_url", "web_api", or why nothing went: "", "undelivered", "superseded"
    ts: str = ""


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    lane: str = field(compare=False)
    key: str = field(compare=False)
    method: str = field(compare=False)
    send: Callable[[], Awaitable[Delivery]] = field(compare=False)
    on_done: Callable[[Delivery], None] | None = field(compare=False)
    supersede: str = field(compare=False)
    give_up_at: float = field(compare=False)
    dropped: bool = field(default=False, compare=False)
    in_flight: bool = field(default=False, compare=False)
    not_before: float = field(default=0.0, compare=False)  # waiting out a failure until then
    failures: int = field(default=0, compare=False)


class Outbox:
    def __init__(
        self,
        *,
        workers: int = 32,
        cosmetic_workers: int = COSMETIC_WORKERS,
        give_up_after: float = GIVE_UP_AFTER,
        clock: Callable[[], float] = time.monotonic,
        backoff: RetryPolicy | None = None,
    ) -> None:
        self._workers = workers
        self._cosmetic_workers = cosmetic_workers
        self._cosmetic_sending = 0
        self._give_up_after = give_up_after
        self._clock = clock
        self._backoff = backoff or RetryPolicy(cap=RETRY_CAP)
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._loop: EventLoop | None = None
        # Idle workers each wait on a future of their own and are woken one at a time: a message done frees at
        # most its conversation's next message, so waking every idle worker for it cost more than the sends.
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        # Messages submitted and not yet done (their callback run): counted across threads, for drains.
        self._idle = threading.Condition()
        # conversation → the message that holds it: the one sending, or the one waiting out a failure
        self._busy_keys: dict[str, int] = {}
        self._superseding: dict[str, _Item] = {}
        # A scope Slack rate-limited ("lane:C1": a channel; "method:chat.update": the workspace) → the end of
        # its pause. It stays here, sending one message at a time, until Slack takes one and nothing of it
        # waits: when its pause ended, all its waiting messages went at once, and all but one met another 429.
        self._paused: dict[str, float] = {}
        self._probes: dict[str, int] = {}  # paused scope → the one message in flight in it
        self._pending = 0
        self._workers_started: list[asyncio.Task[None]] = []
        self._closed = False

    def bind(self, loop: EventLoop) -> Outbox:
        """The event loop the outbox works on: the bot's."""
        self._loop = loop
        self._changes = Changes(loop)
        return self

    @property
    def loop(self) -> EventLoop:
        assert self._loop is not None, "Outbox.bind() first"
        return self._loop

    def submit(
        self,
        send: Callable[[], Awaitable[Delivery]],
        *,
        lane: str,
        key: str,
        method: str,
        priority: Priority = Priority.URGENT,
        supersede: str = "",
        on_done: Callable[[Delivery], None] | None = None,
        give_up_after: float | None = None,
    ) -> None:
        """Queue `send` (a coroutine function, which may raise SlackRetryable); `on_done` is told the final
        Delivery, once, on the loop. From any thread: the message joins the queue on the loop, in order."""
        patience = self._give_up_after if give_up_after is None else give_up_after
        item = _Item(priority, next(self._seq), lane, key, method, send, on_done, supersede, self._clock() + patience)
        with self._idle:
            self._pending += 1
        self.loop.call(self._enqueue, item)

    def _enqueue(self, item: _Item) -> None:
        if self._closed:
            log.warning("%s to %s dropped: the bot is shutting down", item.method, item.lane)
            self._count_done()
            return
        dropped = None
        if item.supersede:
            dropped = self._superseding.get(item.supersede)
            if dropped is not None and not dropped.in_flight:
                dropped.dropped = True
            else:
                dropped = None
            self._superseding[item.supersede] = item
        heapq.heappush(self._heap, item)
        self._wake_one()
        if dropped is not None:
            self._finish_callback(dropped, Delivery(ok=False, via="superseded"))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message is delivered or given up; True when none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    async def aclose(self, timeout: float) -> bool:
        """Deliver what is queued within `timeout` s, then stop: no message is sent after this returns but
        those under way. Messages left are not reported as failed: the owed ones stay in the store, and the
        ledger hands them to the next process (ledger.py). On the loop."""
        idle = await self._changes.until(lambda: self._pending == 0, timeout)
        left = self._pending
        self._closed = True
        while self._idle_workers:
            self._wake_idle()
        if not idle:
            log.error("shutdown: %d Slack message(s) still queued after %.0fs", left, timeout)
        return idle

    # -- workers -------------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item, wake, expired = self._next()
            for late in expired:  # it could not go before its deadline
                self._finish_callback(late, Delivery(ok=False, via="undelivered"))
            if item is None:
                if self._closed:  # what is left stays unsent: owed messages are handed to the next process
                    return
                if not expired:
                    await self._wait(wake)
                continue
            try:
                delivery = await item.send()
            except SlackRetryable as failure:
                if self._retry_later(item, failure):
                    continue
                delivery = Delivery(ok=False, via="undelivered")
            except Exception as error:
                # Neither a delivery nor Slack's refusal: a bug, or a failure no table maps (a proxy that
                # cannot be used). Never a reason to write a message off: logged, and tried again later, as
                # in an outage, until its deadline.
                log.exception("%s to %s failed; trying again later", item.method, item.lane)
                if self._retry_later(item, SlackRetryable(item.method, type(error).__name__)):
                    continue
                delivery = Delivery(ok=False, via="undelivered")
            self._done(item, delivery)

    def _next(self) -> tuple[_Item | None, float | None, list[_Item]]:
        """The next message to send, or when to look again; and those given up meanwhile (callbacks due)."""
        if self._closed:
            return None, None, []
        item, wake, expired = self._pick(self._clock())
        for late in expired:
            self._settle(late)
        if item is not None:
            item.in_flight = True
            self._busy_keys[item.key] = item.seq
            if self._heap:  # another may go now, or once its pause ends: a worker must be watching
                self._wake_one()
        return item, wake, expired

    async def _wait(self, wake: float | None) -> None:
        """Idle until woken, or until `wake` (the clock's time when a pause ends)."""
        waiter = asyncio.get_running_loop().create_future()
        self._idle_workers.append(waiter)
        try:
            await asyncio.wait_for(waiter, None if wake is None else max(0.0, wake - self._clock()))
        except TimeoutError:
            pass
        finally:
            if waiter in self._idle_workers:
                self._idle_workers.remove(waiter)

    def _wake_idle(self) -> None:
        waiter = self._idle_workers.popleft()
        if not waiter.done():
            waiter.set_result(None)

    def _wake_one(self) -> None:
        """Have one worker look at the queue: an idle one, else a new one while there are fewer than
        `workers`."""
        if self._idle_workers:
            self._wake_idle()
        elif len(self._workers_started) < self._workers:
            self._workers_started.append(asyncio.get_running_loop().create_task(self._work()))

    def _pick(self, now: float) -> tuple[_Item | None, float | None, list[_Item]]:
        """The most urgent message that may go now; else when to look again."""
        waiting: list[_Item] = []
        expired: list[_Item] = []
        wake: float | None = None
        chosen = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if item.dropped:
                if self._busy_keys.get(item.key) == item.seq:  # it was waiting out a failure
                    del self._busy_keys[item.key]
                continue
            limits = self._limits_on(item)
            paused_until = max([item.not_before, *(self._paused[scope] for scope in limits)])
            if paused_until > now:
                if paused_until > item.give_up_at:
                    expired.append(item)
                    continue
                wake = paused_until if wake is None else min(wake, paused_until)
                waiting.append(item)
            elif self._busy_keys.get(item.key, item.seq) != item.seq:  # an earlier message of its conversation
                waiting.append(item)
            elif self._probing(limits):
                waiting.append(item)  # its rate-limited scope has a message in flight
            elif item.priority is Priority.COSMETIC and self._cosmetic_sending >= self._cosmetic_workers:
                waiting.append(item)
                break  # what is left is cosmetic too: the heap holds every urgent message before them
            else:
                if item.priority is Priority.COSMETIC:
                    self._cosmetic_sending += 1
                for scope in limits:
                    self._probes[scope] = item.seq
                chosen = item
                break
        for item in waiting:
            heapq.heappush(self._heap, item)
        return chosen, wake, expired

    def _retry_later(self, item: _Item, failure: SlackRetryable) -> bool:
        """Queue `item` again: after the 429's pause of what it applies to, or after the backoff while Slack
        is unavailable. False: give it up (its deadline comes first). True: it is queued again, or dropped
        for a later update of the same prompt that came meanwhile."""
        now = self._clock()
        item.failures += 1
        if isinstance(failure, RateLimited):
            scope = item.lane if failure.per_channel else item.method
            until = now + (failure.retry_after or 0.0)
            limit = f"lane:{scope}" if failure.per_channel else f"method:{scope}"
            self._paused[limit] = max(self._paused.get(limit, 0.0), until)
        else:
            scope = item.lane
            wait = self._backoff.delay(item.failures, failure.retry_after)
            until = item.not_before = now + min(wait, RETRY_CAP * 10)
        superseded = bool(item.supersede) and self._superseding.get(item.supersede) is not item
        if superseded:
            self._settle(item)
        elif until > item.give_up_at:
            return False
        else:
            self._unsend(item)
            self._end_probe(item)
            if item.priority is not Priority.URGENT and self._busy_keys.get(item.key) == item.seq:
                del self._busy_keys[item.key]  # a cosmetic update lets the outcome go past it
            # else it keeps its conversation while it waits: nothing after it may overtake it
            heapq.heappush(self._heap, item)
            self._wake_one()
        if superseded:
            self._finish_callback(item, Delivery(ok=False, via="superseded"))
        else:
            log.info("%s to %s: %s; trying again in %.1fs", item.method, scope, failure.error, until - now)
        return True

    def _done(self, item: _Item, delivery: Delivery) -> None:
        self._settle(item)
        if delivery.ok:
            now = self._clock()
            for scope in self._limits_on(item):
                waits = any(scope in self._limits_on(other) for other in self._heap if not other.dropped)
                if not waits and self._paused[scope] <= now:
                    del self._paused[scope]  # Slack took it and nothing of it waits: full speed again
        self._finish_callback(item, delivery)

    def _limits_on(self, item: _Item) -> list[str]:
        """The rate-limited scopes `item` is in."""
        if not self._paused:
            return []
        return [scope for scope in (f"lane:{item.lane}", f"method:{item.method}") if scope in self._paused]

    def _probing(self, scopes: list[str]) -> bool:
        return any(scope in self._probes for scope in scopes)

    def _end_probe(self, item: _Item) -> None:
        for scope in [scope for scope, seq in self._probes.items() if seq == item.seq]:
            del self._probes[scope]

    def _unsend(self, item: _Item) -> None:
        """`item` is no longer being sent: a cosmetic one frees its place."""
        if item.in_flight and item.priority is Priority.COSMETIC:
            self._cosmetic_sending -= 1
        item.in_flight = False

    def _settle(self, item: _Item) -> None:
        """Off the queue: its conversation's next message may go. Still pending until its callback ran."""
        self._unsend(item)
        if self._busy_keys.get(item.key) == item.seq:
            del self._busy_keys[item.key]
        if item.supersede and self._superseding.get(item.supersede) is item:
            del self._superseding[item.supersede]
        self._end_probe(item)
        if self._heap:  # its conversation's next message may go now
            self._wake_one()

    def _finish_callback(self, item: _Item, delivery: Delivery) -> None:
        """Tell `on_done`, then count the message done: wait_idle() and close() return only once every
        callback has run, so a drain does not exit before a posted job is marked finished."""
        if not delivery.ok and delivery.via == "undelivered":
            log.error("%s to %s not delivered: Slack did not take it before its deadline", item.method, item.lane)
        try:
            if item.on_done is not None:
                item.on_done(delivery)
        except Exception:
            log.exception("after %s to %s", item.method, item.lane)
        finally:
            self._count_done()

    def _count_done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()
                self._changes.changed()
