"""The ledger of messages owed to people: kept in the store until Slack takes them, whatever Slack does.

    owe(records) ─▶ the store's writer: one transaction per batch (with a job's finish, a step's end)
                      └─▶ outbox: tried way by way, retried through outages ─▶ taken: settled (deleted)
                                                                             └▶ past its deadline: audited
    sweeper ─▶ take over rows whose process died or drained ─▶ resume(records) ─▶ outbox …

Callers never wait for the database: `owe()` queues to the store's one writer, which hands each record to
the outbox once it is written: from MailPartner's answer to Slack, two handovers (to the writer, to an
outbox worker). A message is rendered once; after a restart it is posted as it was written.

Each record holds its message (text and blocks) once, and lists its ways, first to last resort, each with
what it adds to the message:
    {"via": "web", "method": "chat.postMessage", "payload": {"channel": …}, "token": "…"}
    {"via": "url", "url": "https://hooks.slack.com/…", "payload": {"response_type": …}, "since": 1800000000.0}
A way Slack refuses for good (not in the channel, a used or expired `response_url`) gives way to the next;
a `response_url` known to be spent (5 posts, or 30 minutes since its first) is skipped. A web way with a
`link` gets the permalink of that message put where LINK stands in its text.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.loop import Changes
from bot.outbound.outbox import Delivery, Outbox, Priority
from bot.outbound.webapi import SlackCallError, SlackHttp, SlackRetryable, SlackUnavailable
from bot.store import OwedRecord, Store
from bot.store.store import Owe

if TYPE_CHECKING:
    from bot.audit.metrics import Metrics
    from bot.audit.trail import AuditTrail

log = logging.getLogger(__name__)

OnDone = Callable[[Delivery], None]
LINK = "\u2063link\u2063"  # where a web way's `link` goes in its text: invisible, never typed by anyone
URL_POSTS = 5  # Slack takes 5 posts on a response_url…
URL_LIFETIME = 30 * 60.0  # …within 30 minutes
URLS_KEPT = 10_000  # response_urls remembered at most
SEND_GRACE = 12.0  # seconds a drain waits for calls to Slack under way (their timeout is 10 s)


@dataclass
class _Entry:
    owe: Owe
    on_done: dict[str, OnDone]  # record id → told the final delivery
    on_owed: Callable[[bool | None], bool] | None  # told whether the store ended the step; says if this did


@dataclass
class _UrlUse:
    since: float  # when the bot first used the URL: Slack's 30 minutes run from about then
    posts: int = 0  # posts Slack took


@dataclass
class _Cursor:
    """Where a message's delivery stands in this process: the next way to try."""

    next_way: int = 0


class Ledger:
    def __init__(
        self,
        slack: SlackHttp,
        outbox: Outbox,
        store: Store,
        audit: AuditTrail,
        *,
        deadline: float,
        lease: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slack = slack
        self.outbox = outbox
        self.store = store
        self.audit = audit
        self.deadline = deadline  # seconds a message is tried before it is given up and audited
        self.lease = lease
        self.metrics = metrics
        self.clock = clock
        self._urls: OrderedDict[str, _UrlUse] = OrderedDict()  # the response_urls used lately
        self._here: dict[str, OwedRecord] = {}  # written, not yet taken by Slack nor given up
        self._sending: set[str] = set()  # of those, the ones whose call to Slack is under way now
        self._slack_down = False  # Slack's last answer to a message: unavailable (5xx, no connection, no answer)
        self._pending = 0  # queued for writing or held here
        self._closing = False
        self._cond = threading.Condition()  # for threads that wait (wait_idle)
        self._changes = Changes(outbox.loop)  # for the drain, which awaits on the loop

    # -- what the bot owes ---------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        lane: str,
        conversation: str,
        message: dict[str, Any],
        ways: list[dict[str, Any]],
        *,
        text: str = "",
        **meta: Any,
    ) -> OwedRecord:
        """A message to owe; `text`, what the audit line keeps if Slack never takes it (else the message's)."""
        now = self.clock()
        return OwedRecord(
            id=uuid.uuid4().hex,
            kind=kind,
            lane=lane,
            conversation=conversation,
            ways=ways,
            text=text or str(message.get("text", "")),
            meta={k: v for k, v in meta.items() if v not in (None, "", (), [])},
            created_at=now,
            deadline=now + self.deadline,
            message=message,
        )

    def url_way(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A `response_url` way; `since` is when the bot first used the URL, which starts Slack's 30 minutes."""
        return {"via": "url", "url": url, "payload": payload, "since": self._first_use(url)}

    def owe(
        self,
        records: list[OwedRecord],
        *,
        on_done: dict[str, OnDone] | None = None,
        finish_job: str = "",
        end_step: tuple[str, str] | None = None,
        on_owed: Callable[[bool | None], bool] | None = None,
    ) -> None:
        """Write `records` (with the job's finish and the step's end, in one transaction), then deliver
        them. Returns at once. `on_owed` is told, on the loop by the store's writer, whether the store's transaction
        ended the step (None: it could not tell), and answers whether this process ends it: if not, the
        step's end is not delivered."""
        with self._cond:
            self._pending += len(records) + 1  # the entry itself until written: wait_idle() sees it
        entry = _Entry(Owe(tuple(records), finish_job, end_step), on_done or {}, on_owed)
        self.store.owe_later(entry.owe, lease=self.lease, then=lambda kept, first: self._handed(entry, kept, first))

    def resume(self, records: list[OwedRecord]) -> None:
        """Deliver rows taken over from a process that died or drained (already in the store)."""
        with self._cond:
            self._pending += len(records)
        if records:
            oldest = self.clock() - min(record.created_at for record in records)
            log.warning(
                "delivering %d message(s) owed by a process that stopped (the oldest for %.0fs)", len(records), oldest
            )
        for record in records:
            self._submit(record, None)

    @property
    def owed_here(self) -> int:
        with self._cond:
            return len(self._here)

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    async def aclose(self, timeout: float) -> tuple[bool, int]:
        """Deliver what can be within `timeout` s, then hand what is left back to the store at once, for the
        next process to start (or another replica) to deliver. While Slack is down (its last answer said so,
        and no call is under way) there is no point waiting: what is owed is handed back at once, so that a
        restart in an outage takes seconds, not the whole drain. Returns (all delivered, how many are left).
        On the loop: it awaits, and holds no thread."""
        started = time.monotonic()
        await self._changes.until(lambda: self._pending == 0 or (self._slack_down and not self._sending), timeout)
        delivered = self._pending == 0
        # What is queued for writing is written, and handed to the outbox.
        await self.store.flush(max(1.0, timeout))
        with self._cond:
            self._closing = True
        await self.outbox.aclose(0.0 if not delivered else 1.0)
        # A call under way may still land: handing its row back would post it twice.
        await self._changes.until(lambda: not self._sending, started + timeout + SEND_GRACE - time.monotonic())
        with self._cond:
            left = [owed_id for owed_id in self._here if owed_id not in self._sending]
        if left:
            handed = await self.store.release_owed(left)
            log.error(
                "shutdown: %d message(s) still owed to people; %d handed back for the next process to deliver",
                len(left),
                handed,
            )
        return delivered and not left, len(left)

    # -- writing -------------------------------------------------------------------------------------

    def _handed(self, entry: _Entry, kept: bool, first: bool | None) -> None:
        records = list(entry.owe.records)
        ended_here = first is not False
        if entry.on_owed is not None:
            try:  # it decides, when the store could not (`first` None), whether this process ends the step
                ended_here = entry.on_owed(first)
            except Exception:
                log.exception("after writing owed messages")
        if not ended_here:  # the step had ended already: its end is not owed (nor was it kept)
            dropped = [r for r in records if r.kind == "step_end"]
            records = [r for r in records if r.kind != "step_end"]
            with self._cond:
                self._pending -= len(dropped)
        if not kept:
            log.error("%d message(s) not written to the store; delivering them from memory", len(records))
        for record in records:
            self._submit(record, entry.on_done.get(record.id))
        with self._cond:
            self._pending -= 1
            self._changed()

    # -- delivering ----------------------------------------------------------------------------------

    def _submit(self, record: OwedRecord, on_done: OnDone | None) -> None:
        with self._cond:
            self._here[record.id] = record
        cursor = _Cursor()
        first = record.ways[0] if record.ways else {}
        method = "response_url" if first.get("via") == "url" else str(first.get("method", ""))
        self.outbox.submit(
            lambda: self._send(record, cursor),
            lane=record.lane,
            key=record.conversation,
            method=method,
            priority=Priority.URGENT,
            give_up_after=max(0.0, record.deadline - self.clock()),
            on_done=lambda delivery: self._delivered(record, method, delivery, on_done),
        )

    async def _send(self, record: OwedRecord, cursor: _Cursor) -> Delivery:
        with self._cond:
            self._sending.add(record.id)
        down = False
        try:
            return await self.deliver_ways(record.ways, record.message, cursor)
        except SlackUnavailable:
            down = True
            raise
        finally:
            with self._cond:
                self._sending.discard(record.id)
                self._slack_down = down
                self._changed()

    async def deliver_ways(
        self, ways: list[dict[str, Any]], message: dict[str, Any], cursor: _Cursor | None = None
    ) -> Delivery:
        """Try the ways from where the last try stopped; raise SlackRetryable to be tried again later."""
        cursor = cursor or _Cursor()
        while cursor.next_way < len(ways):
            delivery = await self._try(ways[cursor.next_way], message)  # SlackRetryable goes up: this way, later
            if delivery.ok:
                return delivery
            cursor.next_way += 1
        return Delivery(ok=False, via="")

    def counted(self, method: str, on_done: OnDone | None) -> OnDone:
        """`on_done` for a message that is not owed: a failure is counted, a superseded update is not."""

        def done(delivery: Delivery) -> None:
            if not delivery.ok and delivery.via != "superseded" and self.metrics is not None:
                self.metrics.slack_failures.labels(method).inc()
            if on_done is not None:
                on_done(delivery)

        return done

    async def _try(self, way: dict[str, Any], message: dict[str, Any]) -> Delivery:
        payload = {**(way.get("payload") or {}), **message}
        try:
            if way.get("via") == "url":
                url = str(way.get("url", ""))
                if not url or self._spent(url, float(way.get("since") or 0.0)):
                    return Delivery(ok=False, via="response_url")
                await self.slack.respond(url, payload)
                self._used(url)
                return Delivery(ok=True, via="response_url")
            method = str(way.get("method", ""))
            if method.startswith("chat.") and (
                not payload.get("channel") or (method == "chat.update" and not payload.get("ts"))
            ):
                return Delivery(ok=False, via="web_api")
            if link := way.get("link"):
                payload["text"] = str(payload.get("text", "")).replace(LINK, await self._link(link))
            answer = await self.slack.call(method, payload, token=str(way.get("token") or ""))
        except SlackRetryable:
            raise
        except SlackCallError as error:
            log.warning("%s refused: HTTP %s %s", error.method, error.status, error.error)
            return Delivery(ok=False, via="response_url" if way.get("via") == "url" else "web_api")
        return Delivery(ok=True, via="web_api", ts=str(answer.get("ts", "")))

    def _delivered(self, record: OwedRecord, method: str, delivery: Delivery, on_done: OnDone | None) -> None:
        """Runs on the event loop: only queued writes here (settle, audit), never a blocking call."""
        with self._cond:
            abandoned = self._closing and not delivery.ok
        if abandoned:  # a call cut short by the shutdown: the row stays owed, for the next process
            self._let_go(record.id)
            return
        if delivery.ok:
            if self.metrics is not None:
                self.metrics.slack_delivery_seconds.observe(max(0.0, self.clock() - record.created_at))
        else:
            meta = dict(record.meta)
            self.audit(
                "post_failed",
                actor=str(meta.pop("actor", "")),
                channel=record.lane,
                thread=str(meta.pop("thread", "")),
                mail_ids=list(meta.pop("mail_ids", ())),
                kind=record.kind,
                text=record.text[:3000],
                **meta,
            )
            log.error("Slack never took a message (%s) in %s; its text is in the audit log", record.kind, record.lane)
            if self.metrics is not None:
                self.metrics.slack_failures.labels(method).inc()
        self.store.settle(record.id)
        try:
            if on_done is not None:
                on_done(delivery)
        finally:
            self._let_go(record.id)

    def _let_go(self, owed_id: str) -> None:
        """This process holds the message no more: delivered, given up, or left owed by a shutdown."""
        with self._cond:
            self._here.pop(owed_id, None)
            self._pending -= 1
            self._changed()

    def _changed(self) -> None:
        """Under `_cond`: whoever waits on this state, a thread (wait_idle) or the drain on the loop, looks
        again."""
        self._cond.notify_all()
        self._changes.changed()

    # -- response_url budget -------------------------------------------------------------------------

    def _first_use(self, url: str) -> float:
        with self._cond:
            return self._url_use(url).since

    def _spent(self, url: str, since: float) -> bool:
        """`since` comes with the way: after a restart, this process has not seen the URL yet."""
        with self._cond:
            use = self._urls.get(url)
            return (use.posts if use else 0) >= URL_POSTS or self.clock() - since > URL_LIFETIME

    def _used(self, url: str) -> None:
        with self._cond:
            self._url_use(url).posts += 1

    def _url_use(self, url: str) -> _UrlUse:
        """With the lock held: the URL's use, made on first sight; the least recently used are forgotten."""
        use = self._urls.get(url)
        if use is None:
            use = self._urls[url] = _UrlUse(self.clock())
            if len(self._urls) > URLS_KEPT:
                self._urls.popitem(last=False)
        self._urls.move_to_end(url)
        return use

    async def _link(self, link: dict[str, Any]) -> str:
        try:
            found = await self.slack.call("chat.getPermalink", {"channel": link["channel"], "message_ts": link["ts"]})
        except SlackCallError as error:  # a link is a nicety: the message goes without it
            log.warning("chat.getPermalink failed: %s", error.error)
            return ""
        permalink = str(found.get("permalink", ""))
        return f" (<{permalink}|view>)" if permalink else ""
