"""The prompt's buttons: confirm (the job recorded before the ack) and keep; who may press them checked before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.cancels.engine import Busy, ShuttingDown
from bot.cancels.workflow import StepResult
from bot.inbound.listeners.base import Click, Listener, ListenerDeps, Next, go_on, log
from bot.requests.kinds import Refusal
from bot.requests.ticket import PromptTicket
from bot.words.blocks import CONFIRM_ACTION, KEEP_ACTION, notice, under_way_notice


class Buttons(Listener):
    """The confirm and keep buttons' listeners, and who may press them as their middleware."""

    async def who_may_confirm(self, body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:
        return await self._who_may_click(body, context, next, self.deps.access.check_confirm, stage="confirm")

    async def who_may_keep(self, body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:
        return await self._who_may_click(body, context, next, self.deps.access.check_keep, stage="keep")

    async def _who_may_click(
        self,
        body: dict[str, Any],
        context: AsyncBoltContext,
        next_: Next,
        check: Callable[[str, str, PromptTicket], Refusal | None],
        *,
        stage: str,
    ) -> BoltResponse | None:
        """Listener middleware: the click's ticket read, the clicker checked. A stale button or an outsider is
        told why, privately, and the prompt stays for the people who may act; else the listener runs with
        `context["click"]`."""
        click = self._click(body, context)
        if click is None or self._refused(click, check(click.user, click.channel, click.ticket), stage=stage):
            return BoltResponse(status=200, body="")
        return await go_on(context, "click", click, next_)

    async def on_confirm(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        """An ack is a promise: the job and its claims are recorded before the click is acked (engine.py)."""
        click: Click = context["click"]
        deps = self.deps
        age = deps.clock() - click.ticket.issued_at
        if age > deps.prompt_ttl:
            await ack()
            self._audit_click(click, "expiry", requester=click.ticket.requester, age_s=round(age))
            self._close_prompt(click, "expired", StepResult.EXPIRED)
            return
        try:
            busy = await deps.cancels.confirm(click.ticket, click.user, click.where, click.step)
        except ShuttingDown:
            await ack()
            self._tell(click.where, click.user, notice("shutting_down", self._lang_of(click.user)))
            return
        except Busy as busy:
            await ack()
            log.warning("busy: %d mails under way here; a confirm of %s is refused", busy.under_way, click.ticket.ids)
            self._audit_click(click, "busy", under_way=busy.under_way)
            self._tell(click.where, click.user, notice("busy", self._lang_of(click.user), count=busy.under_way))
            return
        await ack()
        if busy:
            self._audit_click(click, "duplicate", under_way_by=busy)
            self._tell(click.where, click.user, under_way_notice(click.ticket.ids, busy, self._lang_of(click.user)))

    async def on_keep(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        await ack()
        click: Click = context["click"]
        self._close_prompt(click, "kept", StepResult.KEPT)
        self._audit_click(click, "keep", requester=click.ticket.requester)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = Buttons(deps)
    # Who may press a button is the buttons' listener middleware: anyone who sees a thread prompt can click.
    app.action(CONFIRM_ACTION, middleware=[listeners.who_may_confirm])(listeners.on_confirm)
    app.action(KEEP_ACTION, middleware=[listeners.who_may_keep])(listeners.on_keep)
