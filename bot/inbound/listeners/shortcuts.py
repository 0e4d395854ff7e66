"""The two shortcuts and their form: the global one and the one on a message, and the form's submission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.inbound.forms import (
    CONVERSATION_BLOCK,
    FORM_CALLBACK,
    GLOBAL_SHORTCUT,
    IDS_BLOCK,
    MESSAGE_SHORTCUT,
    REASON_BLOCK,
    FormOrigin,
    FormSubmission,
    ids_in_message,
    read_submission,
)
from bot.inbound.listeners.base import Listener, ListenerDeps, Next, answered, go_on, log
from bot.outbound.outbox import Delivery
from bot.outbound.replies import Conversation
from bot.requests.commands import CancelRequest, UsageReason, UsageRequest, parse_fields
from bot.words.blocks import notice, problem_text, ui
from bot.words.home import OPEN_FORM_ACTION


@dataclass(frozen=True)
class _Form:
    """A form submission as read once: its origin (None: not one this bot wrote), fields, request, and the
    conversation the prompt is for."""

    origin: FormOrigin | None
    submission: FormSubmission
    parsed: CancelRequest | UsageRequest
    channel: str


def _read_form(body: dict[str, Any], *, require_reason: bool) -> _Form:
    try:
        origin: FormOrigin | None = FormOrigin.decode((body.get("view") or {}).get("private_metadata", ""))
    except ValueError:
        origin = None
    submission = read_submission(body)
    parsed = parse_fields(submission.ids_text, submission.reason_text, require_reason=require_reason)
    channel = "" if origin is None else origin.channel if origin.kind == "message" else submission.conversation
    return _Form(origin, submission, parsed, channel)


# Which form field shows which problem with a submission; the rest go under the ids.
_FIELD_OF_PROBLEM = {
    UsageReason.REASON_REQUIRED: REASON_BLOCK,
    UsageReason.REASON_TOO_LONG: REASON_BLOCK,
    UsageReason.TOO_LONG: REASON_BLOCK,
}


class Shortcuts(Listener):
    """Both shortcuts, the form they open, and who may submit it as its middleware."""

    async def on_open_form(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The global shortcut, and the Home tab's button: the form, for the conversation the person picks."""
        await ack()
        self._open_form(client, body, FormOrigin("global"), ids=[])

    async def on_message_shortcut(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id", "")
        origin = FormOrigin("message", channel, str(message.get("thread_ts") or message.get("ts") or ""))
        self._open_form(client, body, origin, ids=ids_in_message(str(message.get("text") or "")))

    async def who_may_submit(self, body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:
        """The form's listener middleware: what was submitted (`context["form"]`), and whether the person may
        ask it in the conversation it names; a refusal is shown under that field, and the form stays open."""
        user = (body.get("user") or {}).get("id", "")
        form = _read_form(body, require_reason=self.deps.require_reason)
        asks = isinstance(form.parsed, CancelRequest) and form.origin is not None and form.channel
        if asks and (refusal := self.deps.access.check_request(user, form.channel)):
            assert form.origin is not None and isinstance(form.parsed, CancelRequest)
            self._audit_refusal(refusal, user, form.channel, form.origin.thread_ts, form.parsed.ids)
            channel_rule = form.origin.kind == "global" and refusal.value.endswith("channel")
            errors = {CONVERSATION_BLOCK if channel_rule else IDS_BLOCK: ui(refusal.value, self._lang_of(user))}
            answer = {"response_action": "errors", "errors": errors}
            return answered(answer)
        return await go_on(context, "form", form, next)

    async def on_form_submission(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        deps, user = self.deps, (body.get("user") or {}).get("id", "")
        mine = self._lang_of(user)  # the form is this person's
        form: _Form = context["form"]
        origin, submission, parsed, channel = form.origin, form.submission, form.parsed, form.channel
        if origin is None:
            log.warning("form submission by %s carried no valid origin", user)
            await ack(response_action="errors", errors={IDS_BLOCK: ui("stale", mine)})
            return
        if isinstance(parsed, UsageRequest):
            field = _FIELD_OF_PROBLEM.get(parsed.reason, IDS_BLOCK)
            await ack(
                response_action="errors", errors={field: problem_text(parsed.reason, parsed.offending, lang=mine)}
            )
            return
        if not channel:
            await ack(response_action="errors", errors={CONVERSATION_BLOCK: ui("pick_conversation", mine)})
            return
        if unknown := self.deps.prompts.unknown_account(parsed):
            problem = problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=mine, accounts=self._accounts)
            await ack(response_action="errors", errors={IDS_BLOCK: problem})
            return
        await ack()
        if origin.kind == "message":  # like a mention: the prompt goes into that message's thread
            thread = origin.thread_ts
            prompt = self._post_thread_prompt(parsed, user, channel, thread, via="shortcut")
            deps.cancels.spawn(prompt, "the form's prompt")
            return
        where = Conversation(channel=channel, response_url=submission.response_url)
        deps.cancels.spawn(self._post_form_prompt(parsed, user, where), "the form's prompt")

    async def _post_form_prompt(self, parsed: CancelRequest, user: str, where: Conversation) -> None:
        """Like the command's: privately to the submitter, publicly under the two-person rule."""
        deps, replier, channel = self.deps, self.deps.replier, where.channel
        mine = await self._lang_for(user)
        lang = deps.lang if deps.access.second_person else mine
        prepared = await self.deps.prompts.prepare(parsed, user, channel, lang=lang)
        if not isinstance(prepared, tuple):
            replier.tell(where, user, prepared)
            return
        ticket, preview = prepared

        def undelivered(delivery: Delivery) -> None:
            if not delivery.ok:  # say so where the submitter will see it: a DM from the bot
                replier.post(user, notice("prompt_undelivered", mine, channel=channel))

        prompt = self.deps.prompts.prompt(ticket, preview, private=not ticket.second_person)
        if ticket.second_person:
            replier.send(replier.public(where, prompt, kind="prompt"), on_done=undelivered)
        else:
            replier.send(replier.private(where, user, prompt, kind="prompt"), on_done=undelivered)
        self._audit_request(ticket, via="shortcut")


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = Shortcuts(deps)
    app.shortcut(GLOBAL_SHORTCUT)(listeners.on_open_form)
    app.shortcut(MESSAGE_SHORTCUT)(listeners.on_message_shortcut)
    app.view_submission(FORM_CALLBACK, middleware=[listeners.who_may_submit])(listeners.on_form_submission)
    app.action(OPEN_FORM_ACTION)(listeners.on_open_form)  # the Home tab's button
