"""The bot's memory behind one object. Every call survives the database going away: an urgent cancel beats
bookkeeping, so a failed call logs what was lost, marks the store degraded (`/healthz`, `check`) and
returns the answer that keeps cancels going; the next call that works marks it healthy again.

The store lives on the bot's event loop: its calls are coroutines on SQLAlchemy's asyncio engine, and its
one writer is a task there (`start()`). `record`, `settle`, `owe_later` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bot.batches import Batches
from bot.loop import EventLoop
from bot.store import deliveries, history, jobs, liveness, owed, steps
from bot.store.engine import (
    StoreError,
    check_reachable,
    create_engine,
    database_url,
    masked,
    migrate,
    sqlite_path,
)
from bot.store.history import HistoryEvent
from bot.store.jobs import UNRECORDED, ClaimAnswer, JobRecord
from bot.store.owed import OwedRecord
from bot.store.steps import WaitingStep

log = logging.getLogger(__name__)

T = TypeVar("T")
WRITE_QUEUE = 10_000
WRITE_BATCH = 200
# Seconds the writer waits for more rows before a transaction: at a steady rate, rows then share one
# instead of taking one each. `flush()` waits for them, so nothing reads the history before they land.
AUDIT_LINGER = 0.05
# A claim or an owed message has someone waiting on it (a confirm, an outcome): it lingers this long at most.
URGENT_LINGER = 0.02
# Two transactions that wait on each other (a deadlock) or a serialization failure: PostgreSQL undoes one,
# and that one is tried again, after a short random wait, rather than read as an answer.
CONFLICT_ATTEMPTS = 5
_CONFLICTS = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class Store:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time, owner: str = "") -> None:
        self.engine = engine
        self.url = masked(engine.url)
        self.clock = clock
        # Names this process in job leases: a restarted process is another owner, and takes its own jobs over.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._problem = ""
        # SQLite has one writer: the store's calls queue here, in order, instead of in SQLite's busy handler,
        # whose growing sleeps cost seconds when hundreds of confirms arrive at once.
        self._one_writer: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        # The one writer: claims, owed messages (with their job's finish and step's end), history rows and
        # settles, in batches, one transaction for each kind in a batch. Claims and owed messages first:
        # someone waits for them.
        self._writes: Batches[_Queued] = Batches(
            limit=WRITE_BATCH, capacity=WRITE_QUEUE, linger=AUDIT_LINGER, urgent=_urgent, urgent_linger=URGENT_LINGER
        )
        self._unfinished: list[str] = []  # jobs whose finish failed while the store was away: tried again
        self._unsettled: list[str] = []  # owed messages Slack took, not yet deleted for the same reason
        self._pending = 0
        self._written = asyncio.Event()  # set whenever nothing queued is left to write
        self._written.set()
        self._loop: EventLoop | None = None
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> Store:
        """Start the writer on the running loop: the store lives there from now on."""
        self._loop = EventLoop(asyncio.get_running_loop())
        self._writer = self._loop.loop.create_task(self._write_batches(), name="store-writer")
        return self

    # -- health --------------------------------------------------------------------------------------

    @property
    def problem(self) -> str:
        """Empty while the store works; else what failed last, for /healthz and `check`."""
        return self._problem

    async def ping(self) -> bool:
        return await self._run("ping", lambda c: True, False)

    # -- audit rows ----------------------------------------------------------------------------------

    def record(self, line: dict[str, Any]) -> None:
        """Queue one audit line for the history; written in batches, the caller never waits."""
        self._queue(_Write(self.clock(), line=line))

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write is done (or lost); True when none is left."""
        try:
            async with asyncio.timeout(timeout):
                await self._written.wait()
        except TimeoutError:
            return False
        return True

    def _queue(self, write: _Queued) -> None:
        """Hand `write` to the writer; from another thread, through the loop."""
        if self._loop is None:  # not started: nothing runs the writer yet, the batch waits for it
            self._queue_here(write)
            return
        try:
            self._loop.call(self._queue_here, write)
        except RuntimeError:  # the loop is closed: the process is exiting
            self._refused(write, "store closed")

    def _queue_here(self, write: _Queued) -> None:
        if not self._writes.put(write):
            self._refused(write, "store closed" if self._writes.closed else "write queue full")
            return
        self._pending += 1
        self._written.clear()

    def _refused(self, write: _Queued, why: str) -> None:
        """Not queued: lost, as when the store is away (whoever waits is told at once)."""
        if isinstance(write, _Write):
            self._lost(why, [write])
        elif isinstance(write, _Claim):
            write.then(UNRECORDED)  # this process's guard still holds
        else:
            write.then(False, None)  # the messages go from memory

    async def _write_batches(self) -> None:
        while (batch := await self._writes.next()) is not None:
            try:
                await self._write_batch(batch)
            except Exception:  # a bug here must not stop the writer; whoever waits was answered in the batch
                log.exception("store writer failed on a batch")
            self._pending -= len(batch)
            if not self._pending:
                self._written.set()

    async def _write_batch(self, batch: list[_Queued]) -> None:
        claims = [w for w in batch if isinstance(w, _Claim)]
        if claims:
            items = [(w.job, w.mail_ids, w.lease) for w in claims]
            answers: list[ClaimAnswer] = [UNRECORDED] * len(claims)
            try:
                found = await self._run("job claim", lambda c: self._claim_all(c, items), None)
                if found is not None and len(found) == len(claims):
                    answers = found
                elif found is not None:
                    log.error("store: %d claim answers for %d claims; read as unrecorded", len(found), len(claims))
            finally:  # a confirm waits on each: unanswered, it is unrecorded (the process's guard holds)
                for claim, answer in zip(claims, answers, strict=True):
                    claim.then(answer)
        owes = [w for w in batch if isinstance(w, _OweLater)]
        if owes:
            try:
                answers = await self.owe([w.owe for w in owes], lease=owes[0].lease)
            except Exception:  # never lose a message to a bug here: they go from memory, as when the store is away
                log.exception("writing owed messages failed")
                answers = [(False, None)] * len(owes)
            for item, answer in zip(owes, answers, strict=True):
                try:
                    item.then(*answer)
                except Exception:
                    log.exception("after writing owed messages")
        writes = [w for w in batch if isinstance(w, _Write)]
        lines = [(w.at, w.line) for w in writes if w.line]
        settled = [w.settled for w in writes if w.settled]
        if writes and await self._run("history write", lambda c: self._write(c, lines, settled), None) is None:
            self._lost("store unavailable", writes)

    @staticmethod
    def _write(connection: Connection, lines: list[tuple[float, dict[str, Any]]], settled: list[str]) -> bool:
        history.insert_events(connection, lines)
        owed.settle(connection, settled)
        return True

    def _lost(self, why: str, writes: Sequence[_Write]) -> None:
        for line in (w.line for w in writes if w.line):  # one line per lost row: the log keeps the audit line
            log.error(
                "history row lost (%s): %s of %s by %s",
                why,
                line.get("action"),
                line.get("mail_ids"),
                line.get("actor"),
            )
        # Else the rows stay owed, and the next process would post them a second time.
        self._unsettled.extend(w.settled for w in writes if w.settled)

    # -- Slack events --------------------------------------------------------------------------------

    async def first_delivery(self, event_id: str) -> bool | None:
        """True the first time any replica sees `event_id`; None when the store cannot tell."""
        return await self._run(
            "event de-duplication", lambda c: deliveries.first_delivery(c, event_id, now=self.clock()), None
        )

    # -- cancel jobs ---------------------------------------------------------------------------------

    def claim(self, job: JobRecord, mail_ids: Sequence[str], *, lease: float) -> asyncio.Future[ClaimAnswer]:
        """Record the job and claim its mails, in the writer's next batch; the future is its answer: mine (the
        job and its claims are committed), held by someone (who, since when), or unrecorded (the store is
        away or swamped: only this process's own guard holds)."""
        answer: asyncio.Future[ClaimAnswer] = asyncio.get_running_loop().create_future()
        self._queue(_Claim(job, tuple(mail_ids), lease, lambda found: _answer(answer, found)))
        return answer

    async def finish(self, job_id: str) -> None:
        """Release a job's claims with no outcome to owe (a job whose ticket cannot be read). While the store
        is away the job is kept, and `retry_unfinished()` (the sweeper) writes it later."""
        if not await self._run("job finish", lambda c: self._finish_all(c, [job_id]), False):
            self._unfinished.append(job_id)

    async def retry_unfinished(self) -> None:
        waiting, self._unfinished = self._unfinished, []
        settled, self._unsettled = self._unsettled, []
        if settled and await self._run("owed settle", lambda c: owed.settle(c, settled), False) is False:
            self._unsettled[:0] = settled
        if waiting and not await self._run("job finish", lambda c: self._finish_all(c, waiting), False):
            self._unfinished[:0] = waiting  # still ours while this process beats (heartbeat)

    def _claim_all(self, connection: Connection, batch: list[tuple[JobRecord, tuple[str, ...], float]]) -> list:
        claimed = [(job, ids) for job, ids, _ in batch]
        return jobs.claim_jobs(connection, claimed, owner=self.owner, now=self.clock(), lease=batch[0][2])

    def _finish_all(self, connection: Connection, job_ids: list[str]) -> bool:
        jobs.finish_jobs(connection, job_ids, now=self.clock())
        return True

    async def heartbeat(self, *, lease: float) -> bool:
        """This process is alive for `lease` more seconds: the jobs and owed messages it holds stay its own.
        One row, however many it holds. False when the store did not take it."""
        return await self._run("heartbeat", lambda c: liveness.beat(c, owner=self.owner, lease=lease) or True, False)

    async def take_over(self, *, lease: float, limit: int = 200) -> list[JobRecord]:
        return await self._run(
            "job takeover", lambda c: jobs.take_over_expired(c, owner=self.owner, lease=lease, limit=limit), []
        )

    # -- messages owed to people -------------------------------------------------------------------

    async def owe(self, batch: Sequence[Owe], *, lease: float) -> list[tuple[bool, bool | None]]:
        """Keep each `Owe`'s records until Slack takes them, in one transaction with its job's finish and its
        workflow step's end: an outcome is never asked of MailPartner again once it is owed. Answers, per
        item, whether its records are kept and, for `end_step`, whether this call ended the step (None: the
        store cannot tell). A `step_end` record is kept only when this call ended the step."""
        answers = await self._run("owed messages", lambda c: self._owe_all(c, batch, lease), None)
        if answers is None:
            self._unfinished.extend(item.finish_job for item in batch if item.finish_job)
            return [(False, None)] * len(batch)
        return answers

    def owe_later(self, item: Owe, *, lease: float, then: Callable[[bool, bool | None], None]) -> None:
        """`owe()` in the writer's next batch; `then(kept, first)` is told the answer on the loop, so it must
        not block."""
        self._queue(_OweLater(item, lease, then))

    def settle(self, owed_id: str) -> None:
        """Slack took it: queued, written with the next history rows (never blocks the caller)."""
        self._queue(_Write(self.clock(), line={}, settled=owed_id))

    async def release_owed(self, owed_ids: Sequence[str]) -> int:
        return await self._run("owed hand-back", lambda c: owed.release(c, owed_ids, owner=self.owner), 0)

    async def take_over_owed(self, *, lease: float, limit: int = 200) -> list[OwedRecord]:
        return await self._run(
            "owed takeover", lambda c: owed.take_over(c, owner=self.owner, lease=lease, limit=limit), []
        )

    async def owed_summary(self) -> tuple[int, float | None] | None:
        """(messages owed, when the oldest was written); None when the store cannot answer."""
        return await self._run("owed count", owed.summary, None)

    def _owe_all(self, connection: Connection, batch: Sequence[Owe], lease: float) -> list[tuple[bool, bool | None]]:
        now: float = self.clock()
        answers: list[tuple[bool, bool | None]] = []
        keep: list[OwedRecord] = []
        for item in batch:
            first = None
            records = list(item.records)
            if item.end_step is not None:
                first = steps.end_step(connection, item.end_step[0], result=item.end_step[1], now=now)
                if not first:
                    records = [r for r in records if r.kind != "step_end"]
            keep.extend(records)
            answers.append((True, first))
        owed.owe(connection, keep, owner=self.owner, lease=lease)
        finished = [item.finish_job for item in batch if item.finish_job]
        if finished:
            jobs.finish_jobs(connection, finished, now=now)
        return answers

    # -- workflow steps ------------------------------------------------------------------------------

    async def register_step(
        self, execution_id: str, *, channel: str, ticket: str, token: str, expires_at: float
    ) -> None:
        await self._run(
            "step start",
            lambda c: steps.register_step(
                c, execution_id, channel=channel, ticket=ticket, token=token, expires_at=expires_at
            ),
            None,
        )

    async def set_step_prompt(self, execution_id: str, prompt_ts: str) -> None:
        await self._run("step prompt", lambda c: steps.set_prompt(c, execution_id, prompt_ts), None)

    async def expired_steps(self) -> list[WaitingStep]:
        return await self._run("expired steps", lambda c: steps.expired_steps(c, now=self.clock()), [])

    # -- history -------------------------------------------------------------------------------------

    async def history(
        self,
        *,
        channel: str | None = None,
        mail_id: str | None = None,
        since: float | None = None,
        actor: str | None = None,
        actions: Sequence[str] = (),
        limit: int = 20,
    ) -> list[HistoryEvent] | None:
        """Newest first; None when the store cannot answer."""
        return await self._run(
            "history",
            lambda c: history.recent_events(
                c, channel=channel, mail_id=mail_id, since=since, actor=actor, actions=actions, limit=limit
            ),
            None,
        )

    async def prune(self, *, history_days: int) -> None:
        now = self.clock()

        def prune(connection: Connection) -> None:
            removed = history.prune_events(connection, now - history_days * 86400)
            removed += jobs.prune_jobs(connection, now - history_days * 86400)
            removed += deliveries.prune_deliveries(connection, now - 86400)
            removed += steps.prune_steps(connection, now - 86400)
            removed += liveness.prune_processes(connection)
            if removed:
                log.info("store: pruned %d rows older than their keep time", removed)

        await self._run("prune", prune, None)

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for `timeout` s at most), stop the writer, stop beating (what this process
        still holds is taken over at once), close the connections."""
        await self.flush(timeout)
        self._writes.close()
        if self._writer is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await self._writer
            await self._run("retire", lambda c: liveness.retire(c, owner=self.owner), None)
        await self.engine.dispose()

    # -- plumbing ------------------------------------------------------------------------------------

    async def _run(self, what: str, work: Callable[[Connection], T], fallback: T) -> T:
        """`work` in one transaction: the queries are plain functions of a Connection (run_sync). A deadlock
        or serialization failure is tried again (bounded, jittered); any other failure degrades the store."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(CONFLICT_ATTEMPTS),
                wait=wait_random_exponential(multiplier=0.02, max=0.5),
                retry=retry_if_exception(_is_conflict),
                before_sleep=lambda state: log.info("store: %s met a conflict; trying again", what),
                reraise=True,
            ):
                with attempt:
                    async with self._one_writer, self.engine.begin() as connection:
                        result = await connection.run_sync(work)
        except Exception as error:
            self._degrade(what, error)
            return fallback
        if self._problem:
            log.warning("store: %s works again; the store is healthy", self.url)
            self._problem = ""
        return result

    def _degrade(self, what: str, error: Exception) -> None:
        cause = getattr(error, "orig", None) or error
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        fresh = not self._problem
        self._problem = f"{what} failed: {type(cause).__name__}"
        # The first failure is an error; repeats while degraded are warnings, not a flood of errors.
        (log.error if fresh else log.warning)(
            "store %s: %s failed (%s: %s)", self.url, what, type(cause).__name__, first
        )


def _is_conflict(error: BaseException) -> bool:
    """PostgreSQL undid this transaction for another's sake (deadlock, serialization): worth trying again."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _CONFLICTS


def _answer(future: asyncio.Future[ClaimAnswer], found: ClaimAnswer) -> None:
    if not future.done():
        future.set_result(found)


@dataclass(frozen=True)
class _Write:
    at: float
    line: dict[str, Any]  # an audit line to keep as a history row
    settled: str = ""  # or an owed message Slack took


@dataclass(frozen=True)
class _Claim:
    """A confirm waiting for its mails' claims: `then` is told the answer."""

    job: JobRecord
    mail_ids: tuple[str, ...]
    lease: float
    then: Callable[[ClaimAnswer], None]


@dataclass(frozen=True)
class _OweLater:
    owe: Owe
    lease: float
    then: Callable[[bool, bool | None], None]


_Queued = _Write | _Claim | _OweLater


def _urgent(write: _Queued) -> bool:
    return not isinstance(write, _Write)


@dataclass(frozen=True)
class Owe:
    """Messages to keep until Slack takes them, with what must be true once they are kept."""

    records: tuple[OwedRecord, ...]
    finish_job: str = ""  # the cancel job whose outcome these are: finished in the same transaction
    end_step: tuple[str, str] | None = None  # (execution id, result): the workflow run these end


async def open_store(
    raw_url: str,
    *,
    clock: Callable[[], float] = time.time,
    pool_size: int = 10,
    migrated: bool = False,
    create_folder: bool = False,
) -> Store:
    """Connect and migrate to the newest revision (`migrated`: someone already did, as `run_slack` does before
    the server starts), and start the store's writer on the running loop; raise StoreError with one
    readable line.

    A SQLite file's folder is created only with `create_folder` (the default store's state folder): an
    explicit URL whose folder is missing is a typo, and serving from a new, empty store would hide it."""
    try:
        url = database_url(raw_url)
    except ValueError as error:
        raise StoreError(str(error)) from error
    if (path := sqlite_path(url)) is not None:
        if create_folder:
            try:  # the state directory may not exist yet on a first start
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot create the store's folder {path.parent}: {error.strerror}") from error
        elif not path.parent.is_dir():
            raise StoreError(f"the folder {path.parent} does not exist; is the path in the URL right?")
    engine = create_engine(url, pool_size=pool_size)
    try:
        await check_reachable(engine)
        if not migrated:
            await migrate(engine)
    except StoreError:
        await engine.dispose()
        raise
    return Store(engine, clock=clock).start()
