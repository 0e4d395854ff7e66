"""The sweeper: one task per process, on the event loop, that keeps the store's promises when nobody clicks.

Every few seconds it
- writes the finishes of cancels posted while the store was away, and beats this process's heartbeat (one
  row), so no other replica takes over the cancels and owed messages it holds (bot/store/leases.py);
- takes over cancels whose process died (their lease ran out) and finishes them (`CancelService.recover`);
- takes over messages owed by a process that died or drained, and delivers them (bot/outbound/ledger.py);
- ends Workflow Builder runs whose prompt expired unanswered with `result=expired`, and says so on the prompt;
- prunes history older than `CANCEL_MAIL_HISTORY_DAYS`, at start and every six hours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.audit.metrics import Metrics
from bot.cancels.engine import CancelService
from bot.cancels.workflow import StepResult, step_outputs
from bot.outbound.replies import Conversation
from bot.requests.ticket import PromptTicket, StepRef
from bot.store import Store, WaitingStep
from bot.words.blocks import status_message

log = logging.getLogger(__name__)

PRUNE_EVERY = 6 * 3600.0
TAKE_OVER_BATCH = 200  # rows a take-over claims in one statement


class Sweeper:
    def __init__(
        self,
        store: Store,
        service: CancelService,
        *,
        lang: str,
        sandbox: bool,
        history_days: int,
        metrics: Metrics | None = None,
        interval: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.service = service
        self._lang = lang
        self._sandbox = sandbox
        self._history_days = history_days
        self.metrics = metrics
        self._interval = interval
        self._monotonic = monotonic
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()  # no pass under way (none yet, or `run()` ended)
        self._stopped.set()
        self._pruned_at: float | None = None

    async def run(self) -> None:
        """Sweep every `interval` s until `stop()`."""
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                try:
                    await self.sweep()
                except Exception:  # the sweeper must outlive any one bad row
                    log.exception("sweep failed")
                try:
                    async with asyncio.timeout(self._interval):
                        await self._stop.wait()
                except TimeoutError:
                    pass
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        """Let the pass under way end, and sweep no more."""
        self._stop.set()
        await self._stopped.wait()

    async def sweep(self) -> None:
        """One pass; public so that tests and the console can run it on their own clock."""
        lease = self.service.lease
        await self.store.heartbeat(lease=lease)
        await self.store.retry_unfinished()
        if self.service.accepting:
            await self._take_over(lease)
        if self.metrics is not None and (summary := await self.store.owed_summary()) is not None:
            self.metrics.slack_owed.set(summary[0])
        for step in await self.store.expired_steps():
            self._expire(step)
        if self._pruned_at is None or self._monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = self._monotonic()
            await self.store.prune(history_days=self._history_days)

    async def _take_over(self, lease: float) -> None:
        """Everything a gone process left, in batches until none is left: a replica killed mid-burst leaves
        hundreds of cancels, all due at once."""
        while jobs := await self.store.take_over(lease=lease, limit=TAKE_OVER_BATCH):
            for job in jobs:
                log.warning("taking over cancel job %s of %s: its process stopped mid-cancel", job.id, job.confirmer)
                await self.service.recover(job)
            if len(jobs) < TAKE_OVER_BATCH:
                break
        while owed := await self.store.take_over_owed(lease=lease, limit=TAKE_OVER_BATCH):
            self.service.replier.ledger.resume(owed)
            if len(owed) < TAKE_OVER_BATCH:
                break

    def _expire(self, waiting: WaitingStep) -> None:
        try:
            ticket = PromptTicket.decode(waiting.ticket)
        except ValueError:
            ticket = None
        ids = ticket.ids if ticket else ()
        message = status_message("expired", ids, "", lang=self._lang, sandbox=self._sandbox)
        replier = self.service.replier
        where = Conversation(waiting.channel, prompt_ts=waiting.prompt_ts)
        self.service.steps.end(
            StepRef(waiting.execution_id, waiting.token),
            step_outputs(StepResult.EXPIRED, ids, message["text"]),
            channel=waiting.channel,
            then=(lambda: replier.replace_prompt(where, message)) if waiting.prompt_ts else None,
        )
