"""What every way in shares: the listeners' dependencies, a click as read, and the helpers each way in uses
(the preview and the prompt, the person's language, telling and auditing, an event handled once).

Each way in is a module of its own (commands, actions, events, shortcuts, workflow), a `Listener` with a
`register(app, deps)`, as Bolt's starter template lays them out.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit.trail import AuditTrail
from bot.cancels.engine import CancelService
from bot.cancels.prompts import Prompts
from bot.cancels.recent import RecentIds
from bot.cancels.workflow import StepResult, WorkflowSteps, step_outputs
from bot.inbound.access import AccessPolicy
from bot.inbound.forms import IDS_BLOCK, FormOrigin, form_view
from bot.inbound.home import Home
from bot.inbound.people import Languages
from bot.mailpartner.accounts import Accounts
from bot.outbound.replies import Conversation, Replier
from bot.requests.commands import CancelRequest, HistoryRequest, ParsedCommand, UsageReason
from bot.requests.kinds import Refusal
from bot.requests.ticket import PromptTicket, StepRef, is_direct_message
from bot.store import Store
from bot.words.blocks import (
    Message,
    history_message,
    notice,
    problem_text,
    status_message,
    ui,
)

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20  # events shown by `/cancel-mail history`
Next = Callable[[], Awaitable[None]]  # what a listener middleware calls to let the listener run

# `/cancel-mail`, and renamed copies such as `/cancel-mail-staging` for a second install.
COMMAND = re.compile(r"^/cancel-mail[a-z0-9_-]*$")


@dataclass(frozen=True)
class ListenerDeps:
    """What the listeners use, each handed in: they never reach through one part to another."""

    cancels: CancelService  # confirm() starts a cancel; spawn() runs work after the ack
    prompts: Prompts  # what a request becomes before its buttons: the preview, the ticket, the prompt
    replier: Replier  # every message to Slack
    store: Store  # history, and which replica saw an event first
    steps: WorkflowSteps  # Workflow Builder runs
    accounts: Accounts  # MailPartner's accounts: where each id goes, and what it is before the click
    access: AccessPolicy
    languages: Languages  # each person's, for what they read alone
    home: Home  # each person's App Home
    lang: str  # the bot's, for what a channel reads
    sandbox: bool
    prompt_ttl: float
    audit: AuditTrail
    require_reason: bool = False
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Click:
    ticket: PromptTicket
    user: str
    where: Conversation
    step: StepRef | None = None

    @property
    def channel(self) -> str:
        return self.where.channel


def answered(answer: dict[str, Any]) -> BoltResponse:
    """An answer given in place of the listener's ack (a refusal, an error), as Bolt's ack would write it."""
    return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})


def asked_ids(parsed: ParsedCommand) -> tuple[str, ...]:
    """The mails a request names: a cancel's, or the one a history asks about."""
    if isinstance(parsed, CancelRequest):
        return parsed.ids
    return (parsed.mail_id,) if isinstance(parsed, HistoryRequest) and parsed.mail_id else ()


async def go_on(context: AsyncBoltContext, key: str, value: object, next_: Next) -> None:
    """A listener middleware lets the listener run with what it read (`context[key]`). It returns nothing:
    a response of its own would stand in place of the listener's ack."""
    context[key] = value
    await next_()


class Listener:
    """A way in's listeners, on the deps they are handed; the helpers every way in shares."""

    def __init__(self, deps: ListenerDeps) -> None:
        self.deps = deps
        self.events = RecentIds()

    async def access_ready(self, next: Next) -> None:
        """Global middleware: who may act is known before any listener middleware checks it (access.py)."""
        await self.deps.access.ready()
        await next()

    async def on_error(self, error: Exception, body: dict[str, Any], request: AsyncBoltRequest) -> BoltResponse:
        """Bolt's one error handler: a bug in a listener still answers the person and logs, never a Slack
        'dispatch_failed'; a listener that had acked keeps its ack."""
        what = body.get("command") or body.get("type") or "request"
        log.error("listener failed on a %s: %s", what, error, exc_info=error)
        acked = request.context.ack.response if request.context.ack is not None else None
        if acked is not None:
            return acked
        if body.get("type") == "view_submission":  # a form answers in its fields, and stays open
            answer: dict[str, Any] = {"response_action": "errors", "errors": {IDS_BLOCK: ui("error", self.deps.lang)}}
        else:
            answer = notice("error", self.deps.lang)
        return answered(answer)

    def _answer_history(self, request: HistoryRequest, user: str, channel: str, response_url: str) -> None:
        """The command's history (who may ask it: `who_may_ask`)."""
        deps = self.deps
        where = Conversation(channel=channel, response_url=response_url)

        async def answer() -> None:
            lang = await self._lang_for(user)
            message = await self._history(request, lang=lang, channel=channel)
            deps.replier.tell(where, user, message)

        deps.cancels.spawn(answer(), "history")

    async def _history(
        self, request: HistoryRequest, *, lang: str, channel: str | None = None, actor: str | None = None
    ) -> Message:
        """One mail's history, or else the newest events of `channel` (or by `actor`, from everywhere)."""
        if unknown := self.deps.prompts.unknown_account(
            CancelRequest(asked_ids(request))
        ):  # as a cancel of it would say
            return {"text": problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=lang, accounts=self._accounts)}
        store = self.deps.store
        await store.flush(2.0)  # the asker's own latest actions belong in the answer
        # One more than is shown tells whether there are more, without counting them all.
        if request.mail_id:
            found = await store.history(mail_id=request.mail_id, limit=HISTORY_LIMIT + 1)
        else:
            found = await store.history(channel=channel, actor=actor, limit=HISTORY_LIMIT + 1)
        mine = actor is not None and channel is None
        return history_message(found, lang=lang, mail_id=request.mail_id, limit=HISTORY_LIMIT, mine=mine)

    def _refuse_once(
        self, body: dict[str, Any], request: AsyncBoltRequest, refuse: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        """A listener middleware's refusal of an event: told once (whichever replica), and the event acked."""
        self._once(body, request, refuse)
        return BoltResponse(status=200, body="")

    def _lang_of(self, user: str) -> str:
        """On the ack path: the person's language if already known (asked in the background if not)."""
        return self.deps.languages.of(user)

    async def _lang_for(self, user: str) -> str:
        """Off the ack path: the person's language, asking Slack if needed (a short wait at most)."""
        return await self.deps.languages.lookup(user)

    def _once(self, body: dict[str, Any], request: AsyncBoltRequest, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` off the ack path unless any replica already handled this event (same `event_id`)."""
        event = body.get("event", {})
        event_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts') or event.get('event_ts')}"
        retry = request.headers.get("x-slack-retry-num", ["-"])[0]
        if not self.events.first_time(event_id):
            log.info("event %s delivered again (retry %s); ignored", event_id, retry)
            return
        store = self.deps.store

        async def once() -> None:
            # None: the store cannot tell, this process decides.
            if await store.first_delivery(event_id) is False:
                log.info("event %s (retry %s) was handled by another replica; ignored", event_id, retry)
                return
            await action()

        self.deps.cancels.spawn(once(), "an event")

    def _open_form(self, client: AsyncWebClient, body: dict[str, Any], origin: FormOrigin, ids: list[str]) -> None:
        deps, user = self.deps, (body.get("user") or {}).get("id", "")
        view = form_view(
            origin, lang=self._lang_of(user), ids=ids, require_reason=deps.require_reason, sandbox=deps.sandbox
        )
        deps.cancels.spawn(client.views_open(trigger_id=body.get("trigger_id", ""), view=view), "views.open")

    async def _post_thread_prompt(
        self, parsed: CancelRequest, user: str, channel: str, thread: str, *, via: str
    ) -> None:
        """Ask MailPartner what the mails are, then post the prompt into the thread and record the request."""
        replier = self.deps.replier
        prepared = await self.deps.prompts.prepare(parsed, user, channel, thread_ts=thread)
        if not isinstance(prepared, tuple):
            replier.post(channel, prepared, thread_ts=thread)
            return
        ticket, preview = prepared
        replier.post_prompt(ticket.channel, ticket.thread_ts, self.deps.prompts.prompt(ticket, preview))
        self._audit_request(ticket, via=via)

    @property
    def _accounts(self) -> tuple[str, ...]:
        return self.deps.accounts.names

    def _click(self, body: dict[str, Any], context: AsyncBoltContext) -> Click | None:
        user = body.get("user", {}).get("id", "")
        container = body.get("container", {})
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        try:
            ticket = PromptTicket.decode(body["actions"][0]["value"])
        except (ValueError, KeyError, IndexError) as error:
            log.warning("click by %s in %s carried no valid ticket: %s", user, channel, error)
            where = Conversation(channel=channel, response_url=body.get("response_url", ""))
            self._tell(where, user, notice("stale", self._lang_of(user)))
            return None
        # The bot posted thread and workflow prompts itself, so it can update them with chat.update.
        posted_by_bot = not container.get("is_ephemeral") and (
            ticket.thread_ts or ticket.workflow or is_direct_message(ticket.channel)
        )
        where = Conversation(
            channel=channel or ticket.channel,
            thread_ts=ticket.thread_ts,
            prompt_ts=container.get("message_ts", "") if posted_by_bot else "",
            response_url=body.get("response_url", ""),
        )
        step = None
        if ticket.workflow:
            if context.function_execution_id:
                step = StepRef(context.function_execution_id, context.function_bot_access_token or "")
            else:  # the run cannot be ended without its execution; the cancel itself still goes ahead
                log.error("workflow prompt clicked by %s without function_data; its step cannot end", user)
        if step is not None and self.deps.steps.has_ended(step.execution_id):
            log.info("click by %s on workflow step %s, which has already ended", user, step.execution_id)
            self._tell(where, user, notice("stale", self._lang_of(user)))
            return None
        return Click(ticket, user, where, step)

    def _refused(self, click: Click, refusal: Refusal | None, *, stage: str) -> bool:
        """Tell an outsider why, privately, and leave the prompt for the people who may act."""
        if refusal is None:
            return False
        self._audit_click(click, "refusal", refusal=refusal.value, stage=stage, reason=click.ticket.reason or None)
        self._tell(click.where, click.user, notice(refusal.value, self._lang_of(click.user)))
        return True

    def _close_prompt(self, click: Click, status: str, result: StepResult) -> None:
        """Replace the prompt with `status` (kept, expired) and end a workflow step with `result`."""
        deps = self.deps
        lang = click.ticket.lang or deps.lang  # the prompt's own language
        message = status_message(status, click.ticket.ids, click.user, lang=lang, sandbox=deps.sandbox)
        deps.replier.replace_prompt(click.where, message)
        if click.step is not None:
            step, outputs = click.step, step_outputs(result, click.ticket.ids, message["text"])
            deps.steps.end(step, outputs, actor=click.user, channel=click.channel)

    def _tell(self, where: Conversation, user: str, message: Message) -> None:
        self.deps.replier.tell(where, user, message)

    def _audit_click(self, click: Click, action: str, **extra: Any) -> None:
        self.deps.audit(
            action,
            actor=click.user,
            channel=click.channel,
            thread=click.ticket.thread_ts,
            mail_ids=click.ticket.ids,
            execution=click.step.execution_id if click.step else None,
            **extra,
        )

    def _audit_request(self, ticket: PromptTicket, via: str, **extra: Any) -> None:
        self.deps.audit(
            "request",
            actor=ticket.requester,
            channel=ticket.channel,
            thread=ticket.thread_ts,
            mail_ids=ticket.ids,
            via=via,
            second_person=ticket.second_person,
            reason=ticket.reason or None,
            **extra,
        )

    def _audit_refusal(
        self, refusal: Refusal, user: str, channel: str, thread: str, ids: tuple[str, ...], **extra: Any
    ) -> None:
        self.deps.audit(
            "refusal",
            actor=user,
            channel=channel,
            thread=thread,
            mail_ids=ids,
            refusal=refusal.value,
            stage="request",
            **extra,
        )
