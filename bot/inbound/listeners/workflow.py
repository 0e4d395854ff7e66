"""The Workflow Builder step: a run's prompt posted with its own token, ended once whatever happens."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.cancels.prompts import NothingLeft
from bot.cancels.workflow import CALLBACK_ID, StepResult, step_outputs
from bot.inbound.listeners.base import Listener, ListenerDeps, Next, go_on, log
from bot.outbound.outbox import Delivery
from bot.requests.commands import CancelRequest, UsageReason, UsageRequest, parse_fields
from bot.requests.ticket import StepRef
from bot.words.blocks import problem_text, ui


class WorkflowStep(Listener):
    """The step's listener, and who may run it as its middleware."""

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
            return await go_on(context, "parsed", None, next)
        if isinstance(parsed, CancelRequest) and (refusal := self.deps.access.check_request(requester, channel)):
            step = StepRef(context.function_execution_id or "", context.function_bot_access_token or "")

            async def refuse() -> None:
                self._audit_refusal(refusal, requester, channel, "", parsed.ids, execution=step.execution_id)
                self.deps.steps.end(step, error=ui(refusal.value, self.deps.lang), actor=requester, channel=channel)

            return self._refuse_once(body, request, refuse)
        return await go_on(context, "parsed", parsed, next)

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
            if unknown := self.deps.prompts.unknown_account(parsed):  # who may run it: `who_may_run`
                problem = problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=deps.lang, accounts=self._accounts)
                steps.end(step, error=problem, actor=requester, channel=channel)
                return
            prepared = await self.deps.prompts.prepare(parsed, requester, channel, workflow=True)
            if isinstance(prepared, NothingLeft):  # every mail gone out: an answer to branch on, not an error
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
            message = self.deps.prompts.prompt(ticket, preview)
            prompt = replier.posted(channel, message, kind="prompt", token=step.token, actor=requester)
            replier.send(prompt, on_done=posted)
        except Exception:  # a run left waiting would hold the workflow forever: end it, then report
            log.exception("workflow step %s failed to start", step.execution_id)
            steps.end(step, error=ui("step_failed", deps.lang), actor=requester, channel=channel)


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = WorkflowStep(deps)
    app.function(CALLBACK_ID, middleware=[listeners.who_may_run])(listeners.on_workflow_step)
