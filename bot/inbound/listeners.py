"""Slack listeners: every way in (`/cancel-mail`, `@bot cancel`, both shortcuts and their form, the
Workflow Builder step) and the confirm and keep buttons they all lead to.

    request (command · mention · form · workflow) → prompt → confirm / keep → CancelService → outcome

Every listener is a coroutine on the event loop (Bolt's AsyncApp): it acks from memory (parse, check,
build blocks) and hands the rest to `CancelService.spawn()`, a coroutine the service keeps for the drain,
so a slow MailPartner, Slack Web API or store never delays an ack.
Commands, access control and rendering live in their own modules; this one only wires them to Slack's
payloads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit.trail import AuditTrail
from bot.cancels.engine import Busy, CancelService, ShuttingDown
from bot.cancels.recent import RecentIds
from bot.cancels.workflow import CALLBACK_ID, StepResult, WorkflowSteps, step_outputs
from bot.inbound.access import AccessPolicy
from bot.inbound.forms import (
    CONVERSATION_BLOCK,
    FORM_CALLBACK,
    GLOBAL_SHORTCUT,
    IDS_BLOCK,
    MESSAGE_SHORTCUT,
    REASON_BLOCK,
    FormOrigin,
    FormSubmission,
    form_view,
    ids_in_message,
    read_submission,
)
from bot.inbound.home import Home
from bot.inbound.people import Languages
from bot.inbound.shape import RefuseMalformed
from bot.mailpartner.accounts import Accounts, Preview, split_ref
from bot.outbound.outbox import Delivery
from bot.outbound.replies import Conversation, Replier
from bot.requests.commands import (
    CancelRequest,
    HistoryRequest,
    ParsedCommand,
    UsageReason,
    UsageRequest,
    parse_direct_message,
    parse_fields,
    parse_mention,
    parse_slash_command,
)
from bot.requests.kinds import Refusal, Via
from bot.requests.ticket import PromptTicket, StepRef, is_direct_message, ticket_fits
from bot.store import Store
from bot.words.blocks import (
    CONFIRM_ACTION,
    KEEP_ACTION,
    WHOLE_USAGE,
    Message,
    history_message,
    ids_text,
    notice,
    problem_text,
    prompt_message,
    sandbox_note,
    status_message,
    ui,
    under_way_notice,
    usage_text,
)
from bot.words.home import OPEN_FORM_ACTION

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20  # events shown by `/cancel-mail history`
Next = Callable[[], Awaitable[None]]  # what a listener middleware calls to let the listener run

# `/cancel-mail`, and renamed copies such as `/cancel-mail-staging` for a second install.
COMMAND = re.compile(r"^/cancel-mail[a-z0-9_-]*$")


@dataclass(frozen=True)
class ListenerDeps:
    """What the listeners use, each handed in: they never reach through one part to another."""

    cancels: CancelService  # confirm() starts a cancel; spawn() runs work after the ack
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


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = _Listeners(deps)
    app.use(RefuseMalformed())  # before any listener's matcher reads the body (Socket Mode's only check)
    app.use(listeners.access_ready)  # the checks below read the user groups from memory, on the loop
    # Bolt tries each listener's matchers in this order, on every request: the common requests first (a
    # confirm click used to meet six others' matchers, each a call with its kwargs built).
    app.command(COMMAND, middleware=[listeners.who_may_ask])(listeners.on_command)
    # Who may press a button is the buttons' listener middleware: anyone who sees a thread prompt can click.
    app.action(CONFIRM_ACTION, middleware=[listeners.who_may_confirm])(listeners.on_confirm)
    app.action(KEEP_ACTION, middleware=[listeners.who_may_keep])(listeners.on_keep)
    app.event("app_mention", middleware=[listeners.who_may_mention])(listeners.on_mention)
    app.function(CALLBACK_ID, middleware=[listeners.who_may_run])(listeners.on_workflow_step)
    app.shortcut(GLOBAL_SHORTCUT)(listeners.on_open_form)
    app.shortcut(MESSAGE_SHORTCUT)(listeners.on_message_shortcut)
    app.view_submission(FORM_CALLBACK, middleware=[listeners.who_may_submit])(listeners.on_form_submission)
    app.event({"type": "message", "channel_type": "im"}, middleware=[listeners.who_may_write])(
        listeners.on_direct_message
    )
    app.event("app_home_opened")(listeners.on_home_opened)
    app.action(OPEN_FORM_ACTION)(listeners.on_open_form)  # the Home tab's button
    app.error(listeners.on_error)


def _answered(answer: dict[str, Any]) -> BoltResponse:
    """An answer given in place of the listener's ack (a refusal, an error), as Bolt's ack would write it."""
    return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})


def _asked_ids(parsed: ParsedCommand) -> tuple[str, ...]:
    """The mails a request names: a cancel's, or the one a history asks about."""
    if isinstance(parsed, CancelRequest):
        return parsed.ids
    return (parsed.mail_id,) if isinstance(parsed, HistoryRequest) and parsed.mail_id else ()


async def _go_on(context: AsyncBoltContext, key: str, value: object, next_: Next) -> None:
    """A listener middleware lets the listener run with what it read (`context[key]`). It returns nothing:
    a response of its own would stand in place of the listener's ack."""
    context[key] = value
    await next_()


@dataclass(frozen=True)
class _NothingLeft:
    """A workflow run's mails have all gone out: what the channel reads, and what MailPartner said of each."""

    note: Message
    preview: Preview


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


class _Listeners:
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
        return _answered(answer)

    # -- requests ----------------------------------------------------------------------------------

    async def who_may_ask(self, body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:
        """The command's listener middleware: what was asked (`context["parsed"]`), and whether the person may
        ask it here. A refusal is told to them alone, and audited; usage needs no permission."""
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        parsed = parse_slash_command(body.get("text", ""), require_reason=self.deps.require_reason)
        asks = isinstance(parsed, (CancelRequest, HistoryRequest))
        if asks and (refusal := self.deps.access.check_request(user, channel)):
            self._audit_refusal(refusal, user, channel, "", _asked_ids(parsed))
            answer = notice(refusal.value, self._lang_of(user))
            return _answered(answer)
        return await _go_on(context, "parsed", parsed, next)

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        parsed = context["parsed"]
        if isinstance(parsed, HistoryRequest):
            await ack()
            self._answer_history(parsed, user, channel, body.get("response_url", ""))
            return
        mine = self._lang_of(user)  # the ack is for this person alone
        if not isinstance(parsed, CancelRequest):
            await ack(text=usage_text(parsed.reason, parsed.offending, lang=mine))
            return
        if unknown := self._unknown_account(parsed):
            await ack(text=usage_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=mine, accounts=self._accounts))
            return
        # Under the two-person rule the prompt must be public, so a second person can see and confirm it.
        public = self.deps.access.second_person
        await ack(
            response_type="in_channel" if public else "ephemeral",
            text=ui("looking_up", self.deps.lang if public else mine, ids=ids_text(parsed.ids)),
        )
        where = Conversation(channel=channel, response_url=body.get("response_url", ""))
        replier = self.deps.replier

        async def prompt() -> None:  # in place of "looking up…", once MailPartner said what the mails are
            lang = self.deps.lang if public else await self._lang_for(user)
            prepared = await self._prepared(parsed, user, channel, lang=lang)
            if not isinstance(prepared, tuple):
                replier.answer(where, user, prepared, public=public, kind="note")
                return
            ticket, preview = prepared
            replier.answer(where, user, self._prompt(ticket, preview, private=not public), public=public)
            self._audit_request(ticket, via="command")

        self.deps.cancels.spawn(prompt(), "the command's prompt")

    async def who_may_mention(
        self, body: dict[str, Any], request: AsyncBoltRequest, context: AsyncBoltContext, next: Next
    ) -> BoltResponse | None:
        """The mention's listener middleware: what was asked (`context["parsed"]`), and whether the person may
        ask it in this channel. A refusal is told to them alone, once per event whichever replica gets it."""
        event = body.get("event", {})
        user, channel = event.get("user", ""), event.get("channel", "")
        thread = event.get("thread_ts") or event.get("ts", "")
        parsed = parse_mention(event.get("text", ""), require_reason=self.deps.require_reason)
        if isinstance(parsed, CancelRequest) and (refusal := self.deps.access.check_request(user, channel)):

            async def refuse() -> None:
                self._audit_refusal(refusal, user, channel, thread, parsed.ids)
                where = Conversation(channel=channel, thread_ts=thread)
                self.deps.replier.tell(where, user, notice(refusal.value, await self._lang_for(user)))

            return self._refuse_once(body, request, refuse)
        return await _go_on(context, "parsed", parsed, next)

    async def on_mention(
        self, ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest, context: AsyncBoltContext
    ) -> None:
        await ack()
        event = body.get("event", {})
        user, channel = event.get("user", ""), event.get("channel", "")
        thread = event.get("thread_ts") or event.get("ts", "")
        parsed = context["parsed"]
        replier = self.deps.replier
        if not isinstance(parsed, CancelRequest):
            text = usage_text(parsed.reason, parsed.offending, lang=self.deps.lang)
        elif unknown := self._unknown_account(parsed):
            text = usage_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=self.deps.lang, accounts=self._accounts)
        else:
            text = ""
        if text:

            async def say() -> None:
                replier.post(channel, {"text": text}, thread_ts=thread)

            self._once(body, request, say)
            return
        self._once(body, request, lambda: self._post_thread_prompt(parsed, user, channel, thread, via="mention"))

    # -- direct messages and the App Home ----------------------------------------------------------

    async def who_may_write(
        self, body: dict[str, Any], request: AsyncBoltRequest, context: AsyncBoltContext, next: Next
    ) -> BoltResponse | None:
        """The direct message's listener middleware: what was asked (`context["parsed"]`), and whether the
        person may ask it. Under the two-person rule nobody else could see a prompt here to confirm it."""
        event = body.get("event", {})
        # The bot's own posts, edits and joins are not requests; nor is a channel's message (Bolt matches the
        # event's type and subtype only, and the app subscribes to message.im alone).
        if event.get("bot_id") or event.get("subtype") or event.get("channel_type") != "im":
            return BoltResponse(status=200, body="")
        user, channel = event.get("user", ""), event.get("channel", "")
        parsed = parse_direct_message(str(event.get("text") or ""), require_reason=self.deps.require_reason)
        refusal = None
        if isinstance(parsed, (CancelRequest, HistoryRequest)):
            refusal = self.deps.access.check_request(user, channel)
            if refusal is None and isinstance(parsed, CancelRequest) and self.deps.access.second_person:
                refusal = Refusal.PRIVATE_CONVERSATION
        if refusal is not None:
            ids = _asked_ids(parsed)

            async def refuse() -> None:
                self._audit_refusal(refusal, user, channel, "", ids)
                answer = notice(refusal.value, await self._lang_for(user), ids_plain=" ".join(ids))
                self.deps.replier.post(channel, answer)

            return self._refuse_once(body, request, refuse)
        return await _go_on(context, "parsed", parsed, next)

    async def on_direct_message(
        self, ack: AsyncAck, body: dict[str, Any], request: AsyncBoltRequest, context: AsyncBoltContext
    ) -> None:
        await ack()
        event = body.get("event", {})
        user, channel, parsed = event.get("user", ""), event.get("channel", ""), context["parsed"]
        if user and channel:
            self._once(body, request, lambda: self._answer_direct_message(user, channel, parsed))

    async def _answer_direct_message(self, user: str, channel: str, parsed: ParsedCommand) -> None:
        """As a mention in a thread, in the person's own conversation with the bot, in their language."""
        deps = self.deps
        lang = await self._lang_for(user)

        def say(message: Message) -> None:
            deps.replier.post(channel, message)

        if isinstance(parsed, UsageRequest):
            problem = problem_text(parsed.reason, parsed.offending, lang=lang)
            rest = ui("dm_usage" if parsed.reason in WHOLE_USAGE else "dm_more_help", lang)
            say({"text": f"{problem} {rest}".strip()})
            return
        if isinstance(parsed, HistoryRequest):  # without an id, the person's own, from every conversation
            say(await self._history(parsed, lang=lang, actor=user))
            return
        if unknown := self._unknown_account(parsed):
            say({"text": problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=lang, accounts=self._accounts)})
            return
        prepared = await self._prepared(parsed, user, channel, lang=lang)
        if not isinstance(prepared, tuple):
            say(prepared)
            return
        ticket, preview = prepared
        deps.replier.post_prompt(channel, "", self._prompt(ticket, preview, private=True))
        self._audit_request(ticket, via=Via.DIRECT_MESSAGE.value)

    async def on_home_opened(self, ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") == "home" and event.get("user"):
            self.deps.home.opened(str(event["user"]))

    # -- the form: both shortcuts open it, a valid submission posts the usual prompt -----------------

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
            return _answered(answer)
        return await _go_on(context, "form", form, next)

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
        if unknown := self._unknown_account(parsed):
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
        prepared = await self._prepared(parsed, user, channel, lang=lang)
        if not isinstance(prepared, tuple):
            replier.tell(where, user, prepared)
            return
        ticket, preview = prepared

        def undelivered(delivery: Delivery) -> None:
            if not delivery.ok:  # say so where the submitter will see it: a DM from the bot
                replier.post(user, notice("prompt_undelivered", mine, channel=channel))

        prompt = self._prompt(ticket, preview, private=not ticket.second_person)
        if ticket.second_person:
            replier.send(replier.public(where, prompt, kind="prompt"), on_done=undelivered)
        else:
            replier.send(replier.private(where, user, prompt, kind="prompt"), on_done=undelivered)
        self._audit_request(ticket, via="shortcut")

    # -- the Workflow Builder step -----------------------------------------------------------------

    async def who_may_run(
        self,
        body: dict[str, Any],
        request: AsyncBoltRequest,
        inputs: dict[str, Any],
        context: AsyncBoltContext,
        next: Next,
    ) -> BoltResponse | None:
        """The step's listener middleware: whether its requester may ask in its channel; a refusal ends the run
        with the reason (once, whichever replica gets the event)."""
        requester, channel = str(inputs.get("requester") or ""), str(inputs.get("channel") or "")
        try:
            parsed = parse_fields(
                str(inputs.get("mail_ids") or ""),
                str(inputs.get("reason") or ""),
                require_reason=self.deps.require_reason,
            )
        except Exception:  # the listener meets it too, and ends the run with an error: a run must never hang
            return await _go_on(context, "parsed", None, next)
        if isinstance(parsed, CancelRequest) and (refusal := self.deps.access.check_request(requester, channel)):
            step = StepRef(context.function_execution_id or "", context.function_bot_access_token or "")

            async def refuse() -> None:
                self._audit_refusal(refusal, requester, channel, "", parsed.ids, execution=step.execution_id)
                self.deps.steps.end(step, error=ui(refusal.value, self.deps.lang), actor=requester, channel=channel)

            return self._refuse_once(body, request, refuse)
        return await _go_on(context, "parsed", parsed, next)

    async def on_workflow_step(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        request: AsyncBoltRequest,
        inputs: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        step = StepRef(context.function_execution_id or "", context.function_bot_access_token or "")
        parsed = context["parsed"]
        self._once(body, request, lambda: self._start_step(step, inputs, parsed))

    async def _start_step(
        self, step: StepRef, inputs: dict[str, Any], parsed: CancelRequest | UsageRequest | None
    ) -> None:
        """`parsed`: the inputs as the middleware read them; None when reading them failed, met again here."""
        deps = self.deps
        steps = deps.steps
        requester, channel = str(inputs.get("requester") or ""), str(inputs.get("channel") or "")
        try:
            if parsed is None:
                parsed = parse_fields(
                    str(inputs.get("mail_ids") or ""),
                    str(inputs.get("reason") or ""),
                    require_reason=deps.require_reason,
                )
            if isinstance(parsed, UsageRequest):
                log.info("workflow step %s refused its inputs: %s", step.execution_id, parsed.reason.value)
                problem = problem_text(parsed.reason, parsed.offending, lang=deps.lang)
                steps.end(step, error=problem, actor=requester, channel=channel)
                return
            if unknown := self._unknown_account(parsed):  # who may run it: `who_may_run`
                problem = problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=deps.lang, accounts=self._accounts)
                steps.end(step, error=problem, actor=requester, channel=channel)
                return
            prepared = await self._prepared(parsed, requester, channel, workflow=True)
            if isinstance(prepared, _NothingLeft):  # every mail gone out: an answer to branch on, not an error
                refs = prepared.preview.refs
                outputs = step_outputs(StepResult.NOT_CANCELLED, refs, prepared.note["text"])
                steps.end(step, outputs, actor=requester, channel=channel)
                note = self.deps.replier.posted(channel, prepared.note, kind="note", token=step.token, actor=requester)
                self.deps.replier.send(note)
                return
            if not isinstance(prepared, tuple):
                steps.end(step, error=prepared["text"], actor=requester, channel=channel)
                return
            ticket, preview = prepared
            expires_at = ticket.issued_at + deps.prompt_ttl
            await steps.started(step, channel=channel, ticket=ticket.encode(), expires_at=expires_at)
            self._audit_request(ticket, via="workflow", execution=step.execution_id)

            def posted(delivery: Delivery) -> None:  # on the event loop
                if delivery.ok:
                    deps.cancels.spawn(steps.prompt_posted(step, delivery.ts), "the step's prompt")
                    return
                undelivered = ui("prompt_undelivered", deps.lang, channel=channel)
                steps.end(step, error=undelivered, actor=requester, channel=channel)

            # Posted with the run's own token: only then does the click bring `function_data` back.
            replier = deps.replier
            message = self._prompt(ticket, preview)
            prompt = replier.posted(channel, message, kind="prompt", token=step.token, actor=requester)
            replier.send(prompt, on_done=posted)
        except Exception:  # a run left waiting would hold the workflow forever: end it, then report
            log.exception("workflow step %s failed to start", step.execution_id)
            steps.end(step, error=ui("step_failed", deps.lang), actor=requester, channel=channel)

    # -- clicks ------------------------------------------------------------------------------------

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
        return await _go_on(context, "click", click, next_)

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

    # -- history -----------------------------------------------------------------------------------

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
        if unknown := self._unknown_account(CancelRequest(_asked_ids(request))):  # as a cancel of it would say
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

    # -- helpers -----------------------------------------------------------------------------------

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
        prepared = await self._prepared(parsed, user, channel, thread_ts=thread)
        if not isinstance(prepared, tuple):
            replier.post(channel, prepared, thread_ts=thread)
            return
        ticket, preview = prepared
        replier.post_prompt(ticket.channel, ticket.thread_ts, self._prompt(ticket, preview))
        self._audit_request(ticket, via=via)

    @property
    def _accounts(self) -> tuple[str, ...]:
        return self.deps.accounts.names

    def _unknown_account(self, request: CancelRequest) -> str:
        """The first mail whose account the bot does not have (`brand-x:301`), or ``: before any call."""
        unknown = set(self.deps.accounts.unknown(request.ids))
        return next((ref for ref in request.ids if split_ref(ref)[0] in unknown), "")

    async def _prepared(
        self,
        request: CancelRequest,
        requester: str,
        channel: str,
        *,
        thread_ts: str = "",
        workflow: bool = False,
        lang: str = "",
    ) -> tuple[PromptTicket, Preview] | _NothingLeft | Message:
        """Place each id in its account and ask MailPartner what each mail is (PREVIEW_WAIT s at most): the
        ticket for the mails left to cancel and what MailPartner said, or the note to send the person instead
        (for a workflow whose every mail has gone out, that note with the preview: the run ends with it).
        Runs off the ack path: it waits for MailPartner (a coroutine: nothing is held meanwhile). `lang`: the
        reader's, when not the channel's."""
        deps = self.deps
        lang = lang or deps.lang
        preview = await deps.accounts.preview(request.ids, channel)
        if preview.unplaced:
            problem = problem_text(UsageReason.ACCOUNT_NEEDED, preview.unplaced[0], lang=lang, accounts=self._accounts)
            return sandbox_note(":grey_question: " + problem, lang=lang, sandbox=deps.sandbox)
        # A workflow's outputs name every mail it was given: one cancelled already, or gone out, stays in its
        # ticket, and the click tells it as MailPartner answers (code 5: cancelled; code 7: sent); a run whose
        # every mail has gone out ends at once, not cancelled. A person is told at once, with no button for it.
        all_gone = set(preview.refs) <= set(preview.gone_out)
        left = (() if all_gone else preview.refs) if workflow else preview.left
        if not left:  # each mail gone out or cancelled already: say which, and offer no button
            settled = {"nothing_to_cancel": preview.gone_out, "nothing_to_cancel_cancelled": preview.already_cancelled}
            text = "\n".join(ui(key, lang, ids=ids_text(refs)) for key, refs in settled.items() if refs)
            note = sandbox_note(text, lang=lang, sandbox=deps.sandbox)
            return _NothingLeft(note, preview) if workflow else note
        if not ticket_fits(left, request.reason):
            return sandbox_note(problem_text(UsageReason.TOO_LONG, "", lang=lang), lang=lang, sandbox=False)
        ticket = self._ticket(CancelRequest(left, request.reason), requester, channel, thread_ts=thread_ts)
        # The prompt's language travels in its ticket, so its updates (confirmed, kept) keep it.
        return dataclasses.replace(ticket, workflow=workflow, lang="" if lang == deps.lang else lang), preview

    def _ticket(self, request: CancelRequest, user: str, channel: str, thread_ts: str) -> PromptTicket:
        return PromptTicket(
            ids=request.ids,
            requester=user,
            channel=channel,
            issued_at=self.deps.clock(),
            thread_ts=thread_ts,
            second_person=self.deps.access.second_person,
            reason=request.reason,
        )

    def _prompt(self, ticket: PromptTicket, preview: Preview | None = None, *, private: bool = False) -> Message:
        return prompt_message(
            ticket.ids,
            ticket.requester,
            ticket.encode(),
            lang=ticket.lang or self.deps.lang,
            ttl=self.deps.prompt_ttl,
            second_person=ticket.second_person,
            sandbox=self.deps.sandbox,
            reason=ticket.reason,
            workflow=ticket.workflow,
            preview=preview,
            private=private,
        )

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
