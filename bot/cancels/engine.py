"""The cancellation engine: everything a confirm click sets off, run off the ack path.

    click ─▶ confirm(): job recorded with a lease, its mails claimed (store), committed ─ack─▶ start
                                 ├─▶ outbox: prompt → "confirmed; the outcome follows" (cosmetic, once)
                                 └─▶ event loop: cancel(id), one coroutine per id, all at once
                                         └──▶ ledger: the outcome, its audit-channel copy and the workflow
                                              step's end owed, in one transaction with the job's finish
                                              └──▶ outbox: delivered through outages and restarts

Slack messages wait in the outbox (rate limits, outages, per-channel order), never on a MailPartner call.
A job is finished once its outcome is owed: from then on the outcome is posted as it was rendered, by this
process or, if it stops, by the next (bot/outbound/ledger.py). A job that dies before is finished by whoever
takes it over. A mail whose cancel is under way is not sent to MailPartner again: this process checks its own
memory first, then the store's claims (shared by every replica). An ack is a promise: while the store answers,
the job and its claims are committed before the click is acked (`confirm()` returns then), so a process killed
at any instant after its ack leaves a job another replica takes over (`recover()`, cancels/recovery.py).
`drain()` lets in-flight work finish on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

from bot.audit.metrics import Metrics
from bot.audit.trail import AuditTrail
from bot.cancels.workflow import WorkflowSteps, confirmed_outputs, outcome_result
from bot.loop import Changes, EventLoop
from bot.mailpartner.accounts import Accounts
from bot.mailpartner.client import CancelOutcome
from bot.outbound.ledger import LINK
from bot.outbound.outbox import Delivery
from bot.outbound.replies import Conversation, Replier
from bot.requests.ticket import PromptTicket, StepRef, is_direct_message
from bot.store import ClaimAnswer, Claimed, JobRecord, OwedRecord, Store
from bot.words.blocks import (
    Message,
    audit_copy_text,
    ids_text,
    notice,
    outcome_message,
    status_message,
    under_way_notice,
)

log = logging.getLogger(__name__)

LEASE_MARGIN = 5.0  # seconds beyond MailPartner's deadline before another process may take a job over
# Seconds a click waits for its claim to be committed before it is acked all the same: Slack wants the ack
# within 3 s. Past it the cancel still waits for the claim's answer, off the ack path.
CLAIM_BUDGET = 2.0


class ShuttingDown(Exception):
    """The service takes no new work: the process is draining."""


class Busy(Exception):
    """As many mails are under way in this process as it takes at once (CANCEL_MAIL_MAX_IN_FLIGHT)."""

    def __init__(self, under_way: int) -> None:
        super().__init__(f"{under_way} mails under way")
        self.under_way = under_way


@dataclass
class _Job:
    id: str
    ticket: PromptTicket
    confirmer: str
    where: Conversation
    step: StepRef | None = None
    recovered: bool = False
    outcomes: dict[str, CancelOutcome] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)
    sent: bool = False  # its mails went to MailPartner: their answers finish it
    released: bool = False  # this process is done with it
    started: float = field(default_factory=time.monotonic)

    def record(self) -> JobRecord:
        return JobRecord(
            id=self.id,
            ticket=self.ticket.encode(),
            confirmer=self.confirmer,
            channel=self.where.channel,
            thread_ts=self.where.thread_ts,
            prompt_ts=self.where.prompt_ts,
            response_url=self.where.response_url,
            execution_id=self.step.execution_id if self.step else None,
            step_token=self.step.token if self.step else None,
        )


class CancelService:
    def __init__(
        self,
        accounts: Accounts,
        replier: Replier,
        store: Store,
        steps: WorkflowSteps,
        *,
        lang: str,
        sandbox: bool,
        loop: EventLoop,
        audit: AuditTrail,
        deadline: float,
        audit_channel: str = "",
        metrics: Metrics | None = None,
        lang_of: Callable[[str], str] | None = None,
        on_finished: Callable[[str], None] | None = None,
        max_in_flight: int = 2000,
    ) -> None:
        """`loop`: where MailPartner's calls run, each a coroutine, and the work `spawn()` is given.
        `lang_of`: a person's language, for what they read alone; `on_finished`: told who confirmed a cancel
        once its outcome is owed (their App Home shows it)."""
        self.accounts = accounts
        self.replier = replier
        self.store = store
        self.steps = steps
        self.audit = audit
        self.metrics = metrics
        self.lease = deadline + LEASE_MARGIN
        self._lang = lang
        self._lang_of = lang_of or (lambda _user: lang)
        self._on_finished = on_finished
        self._sandbox = sandbox
        self._audit_channel = audit_channel
        self.loop = loop
        self._in_flight: dict[str, str] = {}  # mail id → who confirmed it
        self.max_in_flight = max_in_flight
        self._jobs = 0
        self._idle = threading.Condition()  # for threads that wait (wait_idle: the console, tests)
        self._changes = Changes(loop)  # for the drain, which awaits on the loop
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    def under_way(self, confirmer: str) -> tuple[str, ...]:
        """The mails `confirmer` confirmed whose cancel this process is working on now."""
        with self._idle:
            return tuple(mail for mail, who in self._in_flight.items() if who == confirmer)

    def spawn(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run a coroutine of work after an ack on the event loop; counted, so drain() waits for it. A
        failure is logged, never raised."""
        with self._idle:
            self._jobs += 1

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", what)
            finally:
                self._done()

        try:
            self.loop.submit(run())
        except RuntimeError:  # the loop is closed: the process is exiting
            work.close()
            log.warning("%s dropped: the bot is shutting down", what)
            self._done()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no cancel, work after an ack or Slack message is under way (the console's pace)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._idle:
                if not self._idle.wait_for(lambda: self._jobs == 0, max(0.0, deadline - time.monotonic())):
                    return False
            if not self.replier.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            with self._idle:  # a message's callback may have started more work meanwhile
                if self._jobs == 0:
                    return True

    async def confirm(
        self,
        ticket: PromptTicket,
        confirmer: str,
        where: Conversation,
        step: StepRef | None = None,
        *,
        budget: float = CLAIM_BUDGET,
    ) -> str | None:
        """Record the job and claim its mails, then start cancelling; returns once the claim is committed (or
        `budget` s passed): the click may be acked then. Returns None, or the user whose cancel of one of
        these mails is under way in this process.

        Another replica's cancel of the same mail is told to the confirmer once the store answers. A
        workflow `step` ends once the outcome is posted, whatever happened. Raises ShuttingDown when the
        process no longer takes new work, Busy when it has as many mails under way as it takes: nothing of
        the confirm is done then.
        """
        job = _Job(uuid.uuid4().hex, ticket, confirmer, where, step)
        busy = self._accept(job, capped=True)
        if busy is not None:
            return busy
        if step is not None and self.steps.has_ended(step.execution_id):
            self.spawn(self._stale(job), "stale confirm")
            return None
        try:
            claim = self.store.claim(job.record(), job.ticket.ids, lease=self.lease)
        except BaseException:
            self._release(job)
            raise
        try:
            async with asyncio.timeout(budget):
                await asyncio.shield(claim)
        except TimeoutError:
            log.warning("claim of %s not written within %.1f s: acked; the cancel waits for it", ticket.ids, budget)
        self.spawn(self._start(job, claim), "cancel start")
        return None

    async def recover(self, record: JobRecord) -> None:
        """Finish a job a dead process left under way: ask MailPartner again (a cancel that went through
        answers “already cancelled”), post where the original would have, and end its workflow step."""
        try:
            ticket = PromptTicket.decode(record.ticket)
        except ValueError as error:
            log.error("job %s cannot be recovered: %s", record.id, error)
            await self.store.finish(record.id)
            return
        where = Conversation(record.channel, record.thread_ts, record.prompt_ts, record.response_url)
        step = StepRef(record.execution_id, record.step_token or "") if record.execution_id else None
        job = _Job(record.id, ticket, record.confirmer, where, step, recovered=True)
        try:
            if self._accept(job) is not None:
                return  # this process is already cancelling one of these mails; the lease stays ours
        except ShuttingDown:
            return
        self.audit(
            "recovery",
            actor=record.confirmer,
            channel=record.channel,
            thread=ticket.thread_ts,
            mail_ids=ticket.ids,
            requester=ticket.requester,
            reason=ticket.reason or None,
            takeovers=record.takeovers,
        )
        self._send(job)  # the prompt already says "confirmed": straight to the outcome

    async def drain(self, timeout: float) -> bool:
        """Stop taking work; wait up to `timeout` s for in-flight cancels to finish and their messages to be
        delivered. What is still owed then is handed back to the store for the next process. True when
        nothing was left. On the loop: it awaits, and holds no thread."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._accepting = False
        await self._changes.until(lambda: self._jobs == 0, timeout)
        left = self._jobs
        delivered, owed = await self.replier.ledger.aclose(max(1.0, deadline - time.monotonic()))
        if left:
            log.error(
                "shutdown: %d cancel(s) unfinished after %.0fs; their jobs stay open for a takeover", left, timeout
            )
        if not left and delivered:
            log.info("shutdown: every in-flight cancel finished; no message is owed")
        elif not left:
            log.warning("shutdown: every in-flight cancel finished; %d message(s) still owed, kept in the store", owed)
        return left == 0 and delivered

    # -- a job's life --------------------------------------------------------------------------------

    def _accept(self, job: _Job, *, capped: bool = False) -> str | None:
        """Take the job's mails in memory; `capped`: a new confirm, refused past the bound (a recovered job
        was promised already: it is always taken)."""
        with self._idle:
            if not self._accepting:
                raise ShuttingDown()
            busy = next((self._in_flight[i] for i in job.ticket.ids if i in self._in_flight), None)
            if busy:
                return busy
            if capped and len(self._in_flight) + len(job.ticket.ids) > self.max_in_flight:
                raise Busy(len(self._in_flight))
            self._in_flight.update(dict.fromkeys(job.ticket.ids, job.confirmer))
            self._jobs += 1
        if self.metrics is not None:
            self.metrics.in_flight.inc(len(job.ticket.ids))
        return None

    async def _start(self, job: _Job, claim: asyncio.Future[ClaimAnswer]) -> None:
        """`_go` for an acked confirm: whatever raises before its mails reach MailPartner, the person reads
        what is known and what to do, and the job is finished, never left running in silence."""
        try:
            await self._go(job, claim)
        except Exception:
            log.exception("cancel of %s failed before MailPartner was asked", ",".join(job.ticket.ids))
            if not job.sent and not job.released:
                job.crashed[:] = list(job.ticket.ids)
                self._guard(lambda: self._finish(job), "finish")

    async def _go(self, job: _Job, claim: asyncio.Future[ClaimAnswer]) -> None:
        """Once the store answered the claim (every replica sees it), cancel the mails, or say who holds them."""
        ticket = job.ticket
        answer = await claim
        if answer.state is Claimed.HELD:
            self._release(job)
            self._audit_job("duplicate", job, under_way_by=answer.holder)
            note = under_way_notice(ticket.ids, answer.holder, self._lang_of(job.confirmer))
            self.replier.tell(job.where, job.confirmer, note)
            return
        if answer.state is Claimed.UNRECORDED:
            log.warning(
                "the store did not record the claim of %s: going ahead on this process's own guard; another "
                "replica cannot see this cancel",
                ",".join(ticket.ids),
            )
        unrecorded = {} if answer.state is Claimed.MINE else {"claim": answer.state.value}
        self._audit_job("confirm", job, requester=ticket.requester, reason=ticket.reason or None, **unrecorded)
        # The prompt's one update: worded to hold before and after the outcome, so nothing later replaces
        # it (a second update would cost a Slack call per cancel and, under Tier 3 limits, minutes).
        self.replier.replace_prompt(job.where, self._status("confirmed", job))
        self._send(job)

    async def _stale(self, job: _Job) -> None:
        """A click on a workflow run that has ended already: nothing to cancel."""
        self._release(job)
        self.replier.tell(job.where, job.confirmer, notice("stale", self._lang_of(job.confirmer)))

    def _send(self, job: _Job) -> None:
        """One coroutine per mail on the event loop, all at once; the last answer finishes the job there."""
        job.sent = True
        for message_id in job.ticket.ids:
            future = self.loop.submit(self.accounts.cancel(message_id))
            future.add_done_callback(lambda f, mid=message_id: self._collect(job, mid, f))

    def _collect(
        self, job: _Job, message_id: str, future: Future[CancelOutcome] | asyncio.Future[CancelOutcome]
    ) -> None:
        error = CancelledError() if future.cancelled() else future.exception()
        self._record(job, message_id, None if error is not None else future.result(), error)

    def _record(self, job: _Job, message_id: str, outcome: CancelOutcome | None, error: BaseException | None) -> None:
        """One mail's outcome (or the error its cancel raised); the last of a job's mails finishes it."""
        if error is not None:  # cancel() turns every MailPartner failure into an outcome: this is a bug
            log.error("cancel of %s raised", message_id, exc_info=error)
        # On the loop, as every answer's callback is: no lock.
        if outcome is not None:
            job.outcomes[message_id] = outcome
        else:
            job.crashed.append(message_id)
        if len(job.outcomes) + len(job.crashed) == len(job.ticket.ids):
            self._guard(lambda: self._finish(job), "finish")

    def _finish(self, job: _Job) -> None:
        """Owe the outcome (and the notes, copies and step end that go with it), finishing the job."""
        outcomes = [job.outcomes[i] for i in job.ticket.ids if i in job.outcomes]
        where, ticket = job.where, job.ticket
        about = {"mail_ids": list(ticket.ids), "thread": ticket.thread_ts}
        # A channel reads the outcome in the bot's language; a direct message, in the prompt's own.
        lang = (ticket.lang or self._lang) if is_direct_message(where.channel) else self._lang
        records = []
        if outcomes:
            self._audit_outcomes(job, outcomes)
            message = outcome_message(
                outcomes,
                confirmer=job.confirmer,
                requester=ticket.requester,
                lang=lang,
                sandbox=self._sandbox,
                reason=ticket.reason,
                recovered=job.recovered,
            )
            results = [o.label for o in outcomes]
            records.append(
                self.replier.public(where, message, kind="outcome", person=job.confirmer, results=results, **about)
            )
            if self._audit_channel:
                records.append(self._audit_copy(job, outcomes))
        if job.crashed:  # the bot failed, not MailPartner: what is known, and what to do
            crashed = notice("crashed", lang, ids=ids_text(tuple(job.crashed)), ids_plain=" ".join(job.crashed))
            records.append(self.replier.public(where, crashed, kind="note", person=job.confirmer))
        step, result = job.step, outcome_result(outcomes, job.crashed).value
        if step is not None:
            outputs = confirmed_outputs(ticket.ids, outcomes, job.crashed, self._lang, sandbox=self._sandbox)
            records.append(self.replier.step_end(step, where.channel, outputs, "", actor=job.confirmer))

        def owed(first: bool | None) -> bool:
            ended = step is None or self.steps.ended(step, result, first, actor=job.confirmer, channel=where.channel)
            self._release(job)  # the store finished it with the owe (or retries it: Store.retry_unfinished)
            if self._on_finished is not None:
                self._guard(lambda: self._on_finished(job.confirmer), "after a cancel")  # type: ignore[misc]
            return ended

        self.replier.send(
            *records,
            on_done=self._posted(job) if outcomes else None,
            finish_job=job.id,
            end_step=(step.execution_id, result) if step is not None else None,
            on_owed=owed,
        )

    def _posted(self, job: _Job) -> Callable[[Delivery], None]:
        def posted(delivery: Delivery) -> None:
            if delivery.ok and self.metrics is not None:
                self.metrics.outcome_seconds.observe(time.monotonic() - job.started)

        return posted

    def _audit_outcomes(self, job: _Job, outcomes: list[CancelOutcome]) -> None:
        # The audit line is written before Slack is tried: whatever Slack does, the outcome is on record.
        for outcome in outcomes:
            self._audit_job(
                "outcome",
                job,
                mail_ids=[outcome.message_id],
                account=self.accounts.account_of(outcome.message_id),
                requester=job.ticket.requester,
                reason=job.ticket.reason or None,
                result=outcome.label,
                code=outcome.code,
                failure=outcome.failure.value if outcome.failure else None,
                cancelled=outcome.cancelled,
                confirmed_on_retry=outcome.confirmed_on_retry,
                attempts=outcome.attempts,
                latency_ms=round(outcome.latency * 1000),
                sandbox=self._sandbox,
                recovered=job.recovered or None,
            )

    def _audit_job(self, action: str, job: _Job, *, mail_ids: list[str] | None = None, **extra: Any) -> None:
        """An audit line about the job: who confirmed it, where; its mails unless `mail_ids` names some."""
        self.audit(
            action,
            actor=job.confirmer,
            channel=job.where.channel,
            thread=job.ticket.thread_ts,
            mail_ids=mail_ids or job.ticket.ids,
            **extra,
        )

    def _audit_copy(self, job: _Job, outcomes: list[CancelOutcome]) -> OwedRecord:
        """The outcome for the audit channel, linking to the prompt or thread it answers."""
        anchor = job.where.prompt_ts or job.ticket.thread_ts
        where = {"confirmer": job.confirmer, "channel": job.where.channel, "link": LINK if anchor else ""}
        text = audit_copy_text(outcomes, lang=self._lang, sandbox=self._sandbox, **where)
        record = self.replier.posted(
            self._audit_channel, {"text": text}, kind="audit_copy", actor=job.confirmer, mail_ids=list(job.ticket.ids)
        )
        if anchor:
            record.ways[0]["link"] = {"channel": job.where.channel, "ts": anchor}
        return record

    def _release(self, job: _Job) -> None:
        """This process is done with the job (the store's side is the owe's, or never was); once."""
        if job.released:
            return
        job.released = True
        with self._idle:
            for message_id in job.ticket.ids:
                self._in_flight.pop(message_id, None)
        if self.metrics is not None:
            self.metrics.in_flight.dec(len(job.ticket.ids))
        self._done()

    def _done(self) -> None:
        with self._idle:
            self._jobs -= 1
            self._idle.notify_all()
        self._changes.changed()

    def _status(self, key: str, job: _Job) -> Message:
        lang = job.ticket.lang or self._lang  # the prompt's own language
        return status_message(key, job.ticket.ids, job.confirmer, lang=lang, sandbox=self._sandbox)

    @staticmethod
    def _guard(task: Callable[[], object], what: str) -> None:
        try:
            task()
        except Exception:
            log.exception("%s failed", what)
