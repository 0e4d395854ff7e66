"""Slack listeners: every way in (`/cancel-mail`, `@bot cancel`, both shortcuts and their form, the
Workflow Builder step) and the confirm and keep buttons they all lead to.

    request (command · mention · form · workflow) → prompt → confirm / keep → CancelService → outcome

Every listener acks from memory (parse, check, build blocks) and hands any I/O to `CancelService`'s
pools, so a slow MailPartner or Slack Web API never delays an ack. Commands, access control and
rendering live in their own modules; this one only wires them to Slack's payloads.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest, Complete, Fail
from slack_sdk import WebClient

from bot.access import AccessPolicy, Refusal
from bot.audit import audit
from bot.commands import (
    CancelRequest,
    ParsedCommand,
    UsageReason,
    UsageRequest,
    parse_fields,
    parse_mention,
    parse_slash_command,
)
from bot.forms import (
    CONVERSATION_BLOCK,
    FORM_CALLBACK,
    GLOBAL_SHORTCUT,
    IDS_BLOCK,
    MESSAGE_SHORTCUT,
    REASON_BLOCK,
    FormOrigin,
    form_view,
    ids_in_message,
    read_submission,
)
from bot.mailpartner import CancelOutcome
from bot.messages import (
    CONFIRM_ACTION,
    KEEP_ACTION,
    Message,
    notice,
    problem_text,
    prompt_message,
    status_message,
    ui,
    usage_text,
)
from bot.replies import Conversation
from bot.service import CancelService, ShuttingDown
from bot.ticket import PromptTicket
from bot.workflow import CALLBACK_ID, StepResult, confirmed_outputs, step_outputs

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
    require_reason: bool = False
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class WorkflowStep:
    """A Workflow Builder execution waiting on its prompt; `complete` and `fail` carry its own token."""

    execution_id: str
    complete: Complete
    fail: Fail


@dataclass(frozen=True)
class Click:
    ticket: PromptTicket
    user: str
    where: Conversation
    step: WorkflowStep | None = None

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
    """Ids seen lately: a redelivered event (same `event_id`) does nothing twice, a step ends once."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            return event_id in self._seen

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
    app.shortcut(GLOBAL_SHORTCUT)(listeners.on_global_shortcut)
    app.shortcut(MESSAGE_SHORTCUT)(listeners.on_message_shortcut)
    app.view_submission(FORM_CALLBACK)(listeners.on_form_submission)
    app.function(CALLBACK_ID)(listeners.on_workflow_step)
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


# Which form field shows which problem with a submission; the rest go under the ids.
_FIELD_OF_PROBLEM = {
    UsageReason.REASON_REQUIRED: REASON_BLOCK,
    UsageReason.REASON_TOO_LONG: REASON_BLOCK,
    UsageReason.TOO_LONG: REASON_BLOCK,
}


class _Listeners:
    def __init__(self, deps: ListenerDeps) -> None:
        self.deps = deps
        self.events = RecentEvents()
        self.ended_steps = RecentEvents()

    # -- requests ----------------------------------------------------------------------------------

    @_acked_on_error
    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        parsed = parse_slash_command(body.get("text", ""), require_reason=self.deps.require_reason)
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
        if not self._first_delivery(body, request):
            return
        user, channel = event.get("user", ""), event.get("channel", "")
        thread = event.get("thread_ts") or event.get("ts", "")
        parsed: ParsedCommand = parse_mention(event.get("text", ""), require_reason=self.deps.require_reason)
        replier = self.deps.service.replier
        if not isinstance(parsed, CancelRequest):
            text = usage_text(parsed.reason, parsed.offending, lang=self.deps.lang)
            self.deps.service.background(lambda: replier.post(channel, {"text": text}, thread_ts=thread))
            return
        where = Conversation(channel=channel, thread_ts=thread)
        if refusal := self.deps.access.check_request(user, channel):
            self._audit_refusal(refusal, user, channel, thread, parsed.ids)
            self._tell(where, user, notice(refusal.value, self.deps.lang))
            return
        self._post_thread_prompt(self._ticket(parsed, user, channel, thread_ts=thread), via="mention")

    # -- the form: both shortcuts open it, a valid submission posts the usual prompt -----------------

    @_acked_on_error
    def on_global_shortcut(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        self._open_form(client, body, FormOrigin("global"), ids=[])

    @_acked_on_error
    def on_message_shortcut(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id", "")
        origin = FormOrigin("message", channel, str(message.get("thread_ts") or message.get("ts") or ""))
        self._open_form(client, body, origin, ids=ids_in_message(str(message.get("text") or "")))

    @_acked_on_error
    def on_form_submission(self, ack: Ack, body: dict[str, Any]) -> None:
        deps, user = self.deps, (body.get("user") or {}).get("id", "")
        try:
            origin = FormOrigin.decode((body.get("view") or {}).get("private_metadata", ""))
        except ValueError as error:
            log.warning("form submission by %s carried no valid origin: %s", user, error)
            ack(response_action="errors", errors={IDS_BLOCK: ui("stale", deps.lang)})
            return
        submission = read_submission(body)
        parsed = parse_fields(submission.ids_text, submission.reason_text, require_reason=deps.require_reason)
        if isinstance(parsed, UsageRequest):
            field = _FIELD_OF_PROBLEM.get(parsed.reason, IDS_BLOCK)
            ack(response_action="errors", errors={field: problem_text(parsed.reason, parsed.offending, lang=deps.lang)})
            return
        channel = origin.channel if origin.kind == "message" else submission.conversation
        if not channel:
            ack(response_action="errors", errors={CONVERSATION_BLOCK: ui("pick_conversation", deps.lang)})
            return
        if refusal := deps.access.check_request(user, channel):
            self._audit_refusal(refusal, user, channel, origin.thread_ts, parsed.ids)
            field = CONVERSATION_BLOCK if origin.kind == "global" and refusal.value.endswith("channel") else IDS_BLOCK
            ack(response_action="errors", errors={field: ui(refusal.value, deps.lang)})
            return
        ack()
        if origin.kind == "message":  # like a mention: the prompt goes into that message's thread
            self._post_thread_prompt(self._ticket(parsed, user, channel, thread_ts=origin.thread_ts), via="shortcut")
            return
        ticket = self._ticket(parsed, user, channel, thread_ts="")
        where = Conversation(channel=channel, response_url=submission.response_url)
        prompt, replier = self._prompt(ticket), deps.service.replier

        def post() -> None:
            # Like the command: privately to the submitter, publicly under the two-person rule.
            sent = replier.post_public(where, prompt) if ticket.second_person else replier.tell(where, user, prompt)
            if not sent.ok:
                replier.post(user, notice("prompt_undelivered", deps.lang, channel=channel))

        deps.service.background(post)
        self._audit_request(ticket, via="shortcut")

    # -- the Workflow Builder step -----------------------------------------------------------------

    @_acked_on_error
    def on_workflow_step(
        self,
        ack: Ack,
        body: dict[str, Any],
        request: BoltRequest,
        inputs: dict[str, Any],
        client: WebClient,
        context: BoltContext,
        complete: Complete,
        fail: Fail,
    ) -> None:
        if not self._first_delivery(body, request):
            return
        step = WorkflowStep(context.function_execution_id or "", complete, fail)
        try:
            self._start_step(step, inputs, client)
        except Exception:  # a step left running would hold the workflow forever: end it, then report
            log.exception("workflow step %s failed to start", step.execution_id)
            self._end_step(step, error=ui("step_failed", self.deps.lang))

    def _start_step(self, step: WorkflowStep, inputs: dict[str, Any], client: WebClient) -> None:
        deps = self.deps
        requester, channel = str(inputs.get("requester") or ""), str(inputs.get("channel") or "")
        parsed = parse_fields(
            str(inputs.get("mail_ids") or ""), str(inputs.get("reason") or ""), require_reason=deps.require_reason
        )
        if isinstance(parsed, UsageRequest):
            log.info("workflow step %s refused its inputs: %s", step.execution_id, parsed.reason.value)
            problem = problem_text(parsed.reason, parsed.offending, lang=deps.lang)
            self._end_step(step, error=problem, actor=requester, channel=channel)
            return
        if refusal := deps.access.check_request(requester, channel):
            self._audit_refusal(refusal, requester, channel, "", parsed.ids, execution=step.execution_id)
            self._end_step(step, error=ui(refusal.value, deps.lang), actor=requester, channel=channel)
            return
        ticket = dataclasses.replace(self._ticket(parsed, requester, channel, thread_ts=""), workflow=True)
        prompt = self._prompt(ticket)
        # Posted with the execution's own token: only then does the click bring `function_data` back.
        replier = deps.service.replier.with_client(client)

        def post() -> None:
            if not replier.post(channel, prompt).ok:
                self._end_step(
                    step, error=ui("prompt_undelivered", deps.lang, channel=channel), actor=requester, channel=channel
                )

        deps.service.background(post)
        self._audit_request(ticket, via="workflow", execution=step.execution_id)

    # -- clicks ------------------------------------------------------------------------------------

    @_acked_on_error
    def on_confirm(self, ack: Ack, body: dict[str, Any], context: BoltContext, complete: Complete, fail: Fail) -> None:
        ack()
        click = self._click(body, context, complete, fail)
        deps = self.deps
        if click is None or self._refused(
            click, deps.access.check_confirm(click.user, click.channel, click.ticket), stage="confirm"
        ):
            return
        age = deps.clock() - click.ticket.issued_at
        if age > deps.prompt_ttl:
            click.audit("expiry", requester=click.ticket.requester, age_s=round(age))
            self._close_prompt(click, "expired", StepResult.EXPIRED)
            return
        on_outcome = None
        if click.step is not None:
            step = click.step

            def on_outcome(outcomes: list[CancelOutcome], lost: list[str]) -> None:
                outputs = confirmed_outputs(click.ticket.ids, outcomes, lost, deps.lang, sandbox=deps.sandbox)
                self._end_step(step, outputs, actor=click.user, channel=click.channel)

        try:
            busy = deps.service.confirm(click.ticket, click.user, click.where, on_outcome)
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
    def on_keep(self, ack: Ack, body: dict[str, Any], context: BoltContext, complete: Complete, fail: Fail) -> None:
        ack()
        click = self._click(body, context, complete, fail)
        if click is None or self._refused(
            click, self.deps.access.check_keep(click.user, click.channel, click.ticket), stage="keep"
        ):
            return
        self._close_prompt(click, "kept", StepResult.KEPT)
        click.audit("keep", requester=click.ticket.requester)

    # -- helpers -----------------------------------------------------------------------------------

    def _first_delivery(self, body: dict[str, Any], request: BoltRequest) -> bool:
        event = body.get("event", {})
        event_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts') or event.get('event_ts')}"
        if self.events.first_time(event_id):
            return True
        retry = request.headers.get("x-slack-retry-num", ["?"])[0]
        log.info("event %s delivered again (retry %s); ignored", event_id, retry)
        return False

    def _open_form(self, client: WebClient, body: dict[str, Any], origin: FormOrigin, ids: list[str]) -> None:
        deps = self.deps
        view = form_view(origin, lang=deps.lang, ids=ids, require_reason=deps.require_reason, sandbox=deps.sandbox)
        trigger = body.get("trigger_id", "")
        deps.service.background(lambda: client.views_open(trigger_id=trigger, view=view))

    def _post_thread_prompt(self, ticket: PromptTicket, *, via: str) -> None:
        prompt, replier = self._prompt(ticket), self.deps.service.replier
        self.deps.service.background(lambda: replier.post_prompt(ticket.channel, ticket.thread_ts, prompt))
        self._audit_request(ticket, via=via)

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

    def _prompt(self, ticket: PromptTicket) -> Message:
        return prompt_message(
            ticket.ids,
            ticket.requester,
            ticket.encode(),
            lang=self.deps.lang,
            ttl=self.deps.prompt_ttl,
            second_person=ticket.second_person,
            sandbox=self.deps.sandbox,
            reason=ticket.reason,
            workflow=ticket.workflow,
        )

    def _click(self, body: dict[str, Any], context: BoltContext, complete: Complete, fail: Fail) -> Click | None:
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
        # The bot posted thread and workflow prompts itself, so it can update them with chat.update.
        posted_by_bot = not container.get("is_ephemeral") and (ticket.thread_ts or ticket.workflow)
        where = Conversation(
            channel=channel or ticket.channel,
            thread_ts=ticket.thread_ts,
            prompt_ts=container.get("message_ts", "") if posted_by_bot else "",
            response_url=body.get("response_url", ""),
        )
        step = None
        if ticket.workflow:
            if context.function_execution_id:
                step = WorkflowStep(context.function_execution_id, complete, fail)
            else:  # the step cannot be ended without its execution; the cancel itself still goes ahead
                log.error("workflow prompt clicked by %s without function_data; its step cannot end", user)
        click = Click(ticket, user, where, step)
        if step is not None and step.execution_id in self.ended_steps:
            log.info("click by %s on workflow step %s, which has already ended", user, step.execution_id)
            self._tell(where, user, notice("stale", self.deps.lang))
            return None
        return click

    def _refused(self, click: Click, refusal: Refusal | None, *, stage: str) -> bool:
        """Tell an outsider why, privately, and leave the prompt for the people who may act."""
        if refusal is None:
            return False
        click.audit("refusal", refusal=refusal.value, stage=stage, reason=click.ticket.reason or None)
        self._tell(click.where, click.user, notice(refusal.value, self.deps.lang))
        return True

    def _close_prompt(self, click: Click, status: str, result: StepResult) -> None:
        """Replace the prompt with `status` (kept, expired) and end a workflow step with `result`."""
        deps = self.deps
        message = status_message(status, click.ticket.ids, click.user, lang=deps.lang, sandbox=deps.sandbox)
        deps.service.background(lambda: deps.service.replier.replace_prompt(click.where, message))
        if click.step is not None:
            outputs = step_outputs(result, click.ticket.ids, message["text"])
            self._end_step(click.step, outputs, actor=click.user, channel=click.channel)

    def _end_step(
        self,
        step: WorkflowStep,
        outputs: dict[str, object] | None = None,
        *,
        error: str = "",
        actor: str = "",
        channel: str = "",
    ) -> None:
        """End a workflow step exactly once: `functions.completeSuccess`, or `completeError` with `error`."""
        if not self.ended_steps.first_time(step.execution_id):
            log.warning("workflow step %s has already ended; not ending it again", step.execution_id)
            return
        audit(
            "step_end",
            actor=actor,
            channel=channel,
            execution=step.execution_id,
            result=(outputs or {}).get("result", "error"),
            error=error or None,
        )

        def end() -> None:
            if error:
                step.fail(error=error)
            else:
                step.complete(outputs=outputs)

        self.deps.service.background(end)

    def _tell(self, where: Conversation, user: str, message: Message) -> None:
        replier = self.deps.service.replier
        self.deps.service.background(lambda: replier.tell(where, user, message))

    @staticmethod
    def _audit_request(ticket: PromptTicket, via: str, **extra: Any) -> None:
        audit(
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

    @staticmethod
    def _audit_refusal(
        refusal: Refusal, user: str, channel: str, thread: str, ids: tuple[str, ...], **extra: Any
    ) -> None:
        audit(
            "refusal",
            actor=user,
            channel=channel,
            thread=thread,
            mail_ids=ids,
            refusal=refusal.value,
            stage="request",
            **extra,
        )
