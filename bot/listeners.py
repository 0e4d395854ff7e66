"""Slack listeners: `/cancel-mail`, `@bot cancel`, and the confirm and keep buttons.

Every listener acks from memory (parse, check, build blocks) and hands any I/O to `CancelService`'s
pools, so a slow MailPartner or Slack Web API never delays an ack. Commands, access control and
rendering live in their own modules; this one only wires them to Slack's payloads.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltRequest

from bot.access import AccessPolicy, Refusal
from bot.audit import audit
from bot.commands import CancelRequest, ParsedCommand, parse_mention, parse_slash_command
from bot.messages import (
    CONFIRM_ACTION,
    KEEP_ACTION,
    Message,
    notice,
    prompt_message,
    status_message,
    usage_text,
)
from bot.replies import Conversation
from bot.service import CancelService, ShuttingDown
from bot.ticket import PromptTicket

log = logging.getLogger(__name__)

# `/cancel-mail`, and renamed copies such as `/cancel-mail-staging` for a second install.
COMMAND = re.compile(r"^/cancel-mail[a-z0-9_-]*$")


@dataclass(frozen=True)
class ListenerDeps:
    service: CancelService
    access: AccessPolicy
    lang: str
    sandbox: bool
    prompt_ttl: float
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Click:
    ticket: PromptTicket
    user: str
    where: Conversation

    @property
    def channel(self) -> str:
        return self.where.channel

    def audit(self, action: str, **extra: Any) -> None:
        audit(
            action,
            actor=self.user,
            channel=self.channel,
            thread=self.ticket.thread_ts,
            mail_ids=self.ticket.ids,
            **extra,
        )


class RecentEvents:
    """Event ids seen lately, so a redelivered event (same `event_id`) does nothing twice."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._seen:
                return False
            self._seen[event_id] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True


def register(app: App, deps: ListenerDeps) -> None:
    listeners = _Listeners(deps)
    app.command(COMMAND)(listeners.on_command)
    app.event("app_mention")(listeners.on_mention)
    app.action(CONFIRM_ACTION)(listeners.on_confirm)
    app.action(KEEP_ACTION)(listeners.on_keep)


def _acked_on_error(handler: Callable[..., None]) -> Callable[..., None]:
    """A bug in a listener still answers the person and logs, never a Slack 'dispatch_failed'."""

    @functools.wraps(handler)
    def wrapper(self: _Listeners, ack: Ack, body: dict[str, Any], **kwargs: Any) -> None:
        try:
            handler(self, ack, body, **kwargs)
        except Exception:
            log.exception("listener %s failed", handler.__name__)
            if not ack.response:  # type: ignore[attr-defined]
                ack(**notice("error", self.deps.lang))

    return wrapper


class _Listeners:
    def __init__(self, deps: ListenerDeps) -> None:
        self.deps = deps
        self.events = RecentEvents()

    # -- requests ----------------------------------------------------------------------------------

    @_acked_on_error
    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        parsed = parse_slash_command(body.get("text", ""))
        if not isinstance(parsed, CancelRequest):
            ack(text=usage_text(parsed.reason, parsed.offending, lang=self.deps.lang))
            return
        if refusal := self.deps.access.check_request(user, channel):
            self._audit_refusal(refusal, user, channel, "", parsed.ids)
            ack(**notice(refusal.value, self.deps.lang))
            return
        ticket = self._ticket(parsed, user, channel, thread_ts="")
        # Under the two-person rule the prompt must be public, so a second person can see and confirm it.
        response_type = "in_channel" if ticket.second_person else "ephemeral"
        ack(response_type=response_type, **self._prompt(ticket))
        self._audit_request(ticket, via="command")

    @_acked_on_error
    def on_mention(self, ack: Ack, body: dict[str, Any], request: BoltRequest) -> None:
        ack()
        event = body.get("event", {})
        event_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"
        if not self.events.first_time(event_id):
            retry = request.headers.get("x-slack-retry-num", ["?"])[0]
            log.info("event %s delivered again (retry %s); ignored", event_id, retry)
            return
        user, channel = event.get("user", ""), event.get("channel", "")
        thread = event.get("thread_ts") or event.get("ts", "")
        parsed: ParsedCommand = parse_mention(event.get("text", ""))
        replier = self.deps.service.replier
        if not isinstance(parsed, CancelRequest):
            text = usage_text(parsed.reason, parsed.offending, lang=self.deps.lang)
            self.deps.service.background(lambda: replier.post(channel, {"text": text}, thread_ts=thread))
            return
        where = Conversation(channel=channel, thread_ts=thread)
        if refusal := self.deps.access.check_request(user, channel):
            self._audit_refusal(refusal, user, channel, thread, parsed.ids)
            message = notice(refusal.value, self.deps.lang)
            self.deps.service.background(lambda: replier.tell(where, user, message))
            return
        ticket = self._ticket(parsed, user, channel, thread_ts=thread)
        prompt = self._prompt(ticket)
        self.deps.service.background(lambda: replier.post_prompt(channel, thread, prompt))
        self._audit_request(ticket, via="mention")

    # -- clicks ------------------------------------------------------------------------------------

    @_acked_on_error
    def on_confirm(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        click = self._click(body)
        deps = self.deps
        if click is None or self._refused(
            click, deps.access.check_confirm(click.user, click.channel, click.ticket), stage="confirm"
        ):
            return
        age = deps.clock() - click.ticket.issued_at
        if age > deps.prompt_ttl:
            click.audit("expiry", requester=click.ticket.requester, age_s=round(age))
            self._replace_prompt(click, "expired")
            return
        try:
            busy = deps.service.confirm(click.ticket, click.user, click.where)
        except ShuttingDown:
            self._tell(click.where, click.user, notice("shutting_down", deps.lang))
            return
        if busy:
            click.audit("duplicate", under_way_by=busy)
            ids = ", ".join(f"`{i}`" for i in click.ticket.ids)
            self._tell(click.where, click.user, notice("in_flight", deps.lang, ids=ids, user=busy))
            return
        click.audit("confirm", requester=click.ticket.requester)

    @_acked_on_error
    def on_keep(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        click = self._click(body)
        if click is None or self._refused(
            click, self.deps.access.check_keep(click.user, click.channel, click.ticket), stage="keep"
        ):
            return
        self._replace_prompt(click, "kept")
        click.audit("keep", requester=click.ticket.requester)

    # -- helpers -----------------------------------------------------------------------------------

    def _ticket(self, request: CancelRequest, user: str, channel: str, thread_ts: str) -> PromptTicket:
        return PromptTicket(
            ids=request.ids,
            requester=user,
            channel=channel,
            issued_at=self.deps.clock(),
            thread_ts=thread_ts,
            second_person=self.deps.access.second_person,
        )

    def _prompt(self, ticket: PromptTicket) -> Message:
        return prompt_message(
            ticket.ids,
            ticket.requester,
            ticket.encode(),
            lang=self.deps.lang,
            ttl=self.deps.prompt_ttl,
            second_person=ticket.second_person,
            sandbox=self.deps.sandbox,
        )

    def _click(self, body: dict[str, Any]) -> Click | None:
        user = body.get("user", {}).get("id", "")
        container = body.get("container", {})
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        try:
            ticket = PromptTicket.decode(body["actions"][0]["value"])
        except (ValueError, KeyError, IndexError) as error:
            log.warning("click by %s in %s carried no valid ticket: %s", user, channel, error)
            where = Conversation(channel=channel, response_url=body.get("response_url", ""))
            self._tell(where, user, notice("stale", self.deps.lang))
            return None
        # The bot posted thread prompts itself, so it can update them with chat.update.
        prompt_ts = "" if container.get("is_ephemeral") or not ticket.thread_ts else container.get("message_ts", "")
        where = Conversation(
            channel=channel or ticket.channel,
            thread_ts=ticket.thread_ts,
            prompt_ts=prompt_ts,
            response_url=body.get("response_url", ""),
        )
        return Click(ticket, user, where)

    def _refused(self, click: Click, refusal: Refusal | None, *, stage: str) -> bool:
        """Tell an outsider why, privately, and leave the prompt for the people who may act."""
        if refusal is None:
            return False
        click.audit("refusal", reason=refusal.value, stage=stage)
        self._tell(click.where, click.user, notice(refusal.value, self.deps.lang))
        return True

    def _replace_prompt(self, click: Click, status: str) -> None:
        deps = self.deps
        message = status_message(status, click.ticket.ids, click.user, lang=deps.lang, sandbox=deps.sandbox)
        deps.service.background(lambda: deps.service.replier.replace_prompt(click.where, message))

    def _tell(self, where: Conversation, user: str, message: Message) -> None:
        replier = self.deps.service.replier
        self.deps.service.background(lambda: replier.tell(where, user, message))

    @staticmethod
    def _audit_request(ticket: PromptTicket, via: str) -> None:
        audit(
            "request",
            actor=ticket.requester,
            channel=ticket.channel,
            thread=ticket.thread_ts,
            mail_ids=ticket.ids,
            via=via,
            second_person=ticket.second_person,
        )

    @staticmethod
    def _audit_refusal(
        refusal: Refusal, user: str, channel: str, thread: str, ids: tuple[str, ...], stage: str = "request"
    ) -> None:
        audit(
            "refusal",
            actor=user,
            channel=channel,
            thread=thread,
            mail_ids=ids,
            reason=refusal.value,
            stage=stage,
        )
