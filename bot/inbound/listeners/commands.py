"""`/cancel-mail`: a cancel's prompt, a history, or the usage; who may ask checked before."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.inbound.listeners.base import COMMAND, Listener, ListenerDeps, Next, answered, asked_ids, go_on
from bot.outbound.replies import Conversation
from bot.requests.commands import CancelRequest, HistoryRequest, UsageReason, parse_slash_command
from bot.words.blocks import ids_text, notice, ui, usage_text


class Commands(Listener):
    """`/cancel-mail`'s listener, and who may ask as its middleware."""

    async def who_may_ask(self, body: dict[str, Any], context: AsyncBoltContext, next: Next) -> BoltResponse | None:
        """The command's listener middleware: what was asked (`context["parsed"]`), and whether the person may
        ask it here. A refusal is told to them alone, and audited; usage needs no permission."""
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        parsed = parse_slash_command(body.get("text", ""), require_reason=self.deps.require_reason)
        asks = isinstance(parsed, (CancelRequest, HistoryRequest))
        if asks and (refusal := self.deps.access.check_request(user, channel)):
            self._audit_refusal(refusal, user, channel, "", asked_ids(parsed))
            answer = notice(refusal.value, self._lang_of(user))
            return answered(answer)
        return await go_on(context, "parsed", parsed, next)

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
        if unknown := self.deps.prompts.unknown_account(parsed):
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
            prepared = await self.deps.prompts.prepare(parsed, user, channel, lang=lang)
            if not isinstance(prepared, tuple):
                replier.answer(where, user, prepared, public=public, kind="note")
                return
            ticket, preview = prepared
            replier.answer(where, user, self.deps.prompts.prompt(ticket, preview, private=not public), public=public)
            self._audit_request(ticket, via="command")

        self.deps.cancels.spawn(prompt(), "the command's prompt")


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = Commands(deps)
    app.command(COMMAND, middleware=[listeners.who_may_ask])(listeners.on_command)
