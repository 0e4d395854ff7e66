"""Events: a mention in a thread, a direct message to the bot, the App Home opened."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.inbound.listeners.base import Listener, ListenerDeps, Next, asked_ids, go_on
from bot.outbound.replies import Conversation
from bot.requests.commands import (
    CancelRequest,
    HistoryRequest,
    ParsedCommand,
    UsageReason,
    UsageRequest,
    parse_direct_message,
    parse_mention,
)
from bot.requests.kinds import Refusal, Via
from bot.words.blocks import WHOLE_USAGE, Message, notice, problem_text, ui, usage_text


class Events(Listener):
    """Mentions, direct messages and the App Home, with who may mention or write as middleware."""

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
        return await go_on(context, "parsed", parsed, next)

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
        elif unknown := self.deps.prompts.unknown_account(parsed):
            text = usage_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=self.deps.lang, accounts=self._accounts)
        else:
            text = ""
        if text:

            async def say() -> None:
                replier.post(channel, {"text": text}, thread_ts=thread)

            self._once(body, request, say)
            return
        self._once(body, request, lambda: self._post_thread_prompt(parsed, user, channel, thread, via="mention"))

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
            ids = asked_ids(parsed)

            async def refuse() -> None:
                self._audit_refusal(refusal, user, channel, "", ids)
                answer = notice(refusal.value, await self._lang_for(user), ids_plain=" ".join(ids))
                self.deps.replier.post(channel, answer)

            return self._refuse_once(body, request, refuse)
        return await go_on(context, "parsed", parsed, next)

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
        if unknown := self.deps.prompts.unknown_account(parsed):
            say({"text": problem_text(UsageReason.UNKNOWN_ACCOUNT, unknown, lang=lang, accounts=self._accounts)})
            return
        prepared = await self.deps.prompts.prepare(parsed, user, channel, lang=lang)
        if not isinstance(prepared, tuple):
            say(prepared)
            return
        ticket, preview = prepared
        deps.replier.post_prompt(channel, "", self.deps.prompts.prompt(ticket, preview, private=True))
        self._audit_request(ticket, via=Via.DIRECT_MESSAGE.value)

    async def on_home_opened(self, ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") == "home" and event.get("user"):
            self.deps.home.opened(str(event["user"]))


def register(app: AsyncApp, deps: ListenerDeps) -> None:
    listeners = Events(deps)
    app.event("app_mention", middleware=[listeners.who_may_mention])(listeners.on_mention)
    app.event({"type": "message", "channel_type": "im"}, middleware=[listeners.who_may_write])(
        listeners.on_direct_message
    )
    app.event("app_home_opened")(listeners.on_home_opened)
