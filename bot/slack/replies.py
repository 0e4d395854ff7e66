"""Where a flow's messages go: the prompt, the outcome, prompt updates and notes for one person.

Each operation is queued in the outbox (it returns at once) and tells `on_done` how it went. Each has a
first way and a fallback between the click's `response_url` (works in private channels and DMs where the
bot is not a member) and the Web API (works after a `response_url` is used up or expired). A rate limit
does not fall back, since the other way may post to the wrong place: the outbox waits and tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from bot.slack.messages import Message
from bot.slack.outbox import Delivery, Outbox, Priority
from bot.slack.webapi import RateLimited, SlackCallError, SlackHttp

log = logging.getLogger(__name__)

OnDone = Callable[[Delivery], None]


@dataclass(frozen=True)
class Conversation:
    """Where one flow lives. `prompt_ts` is set when the bot itself posted the prompt (thread flow)."""

    channel: str
    thread_ts: str = ""
    prompt_ts: str = ""
    response_url: str = ""

    @property
    def key(self) -> str:
        """One flow's messages go in order, one at a time."""
        return self.response_url or f"{self.channel}/{self.thread_ts}/{self.prompt_ts}"


class Replier:
    def __init__(self, slack: SlackHttp, outbox: Outbox, on_failure: Callable[[str], None] | None = None) -> None:
        self._slack = slack
        self.outbox = outbox
        self._on_failure = on_failure  # told the method of each message that could not be delivered

    def post_prompt(self, channel: str, thread_ts: str, message: Message, on_done: OnDone | None = None) -> None:
        self.post(channel, message, thread_ts=thread_ts, on_done=on_done)

    def replace_prompt(self, where: Conversation, message: Message, on_done: OnDone | None = None) -> None:
        """Cosmetic: waits behind outcomes, and a later replacement of the same prompt drops this one."""
        by_update = partial(self._web, "chat.update", channel=where.channel, ts=where.prompt_ts, **message)
        by_url = partial(self._respond, where.response_url, replace_original=True, **message)
        ways = [by_update, by_url] if where.prompt_ts else [by_url, by_update]
        self._queue(
            where,
            "chat.update" if where.prompt_ts else "response_url",
            ways,
            on_done,
            priority=Priority.COSMETIC,
            supersede=f"prompt:{where.key}",
        )

    def post_public(self, where: Conversation, message: Message, on_done: OnDone | None = None) -> None:
        """Where the whole conversation sees it: the thread, or the channel through the response_url."""
        thread = where.thread_ts or None
        by_post = partial(self._web, "chat.postMessage", channel=where.channel, thread_ts=thread, **message)
        by_url = partial(
            self._respond, where.response_url, response_type="in_channel", replace_original=False, **message
        )
        ways = [by_post, by_url] if where.thread_ts or not where.response_url else [by_url, by_post]
        self._queue(where, "chat.postMessage" if ways[0] is by_post else "response_url", ways, on_done)

    def tell(self, where: Conversation, user: str, message: Message, on_done: OnDone | None = None) -> None:
        """A message only `user` sees."""
        thread = where.thread_ts or None
        by_url = partial(
            self._respond, where.response_url, response_type="ephemeral", replace_original=False, **message
        )
        by_api = partial(self._web, "chat.postEphemeral", channel=where.channel, user=user, thread_ts=thread, **message)
        method = "response_url" if where.response_url else "chat.postEphemeral"
        self._queue(where, method, [by_url, by_api], on_done)

    def post(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str = "",
        token: str = "",
        on_done: OnDone | None = None,
    ) -> None:
        """chat.postMessage; `token`: a workflow run's own, so that clicks bring its `function_data` back."""
        send = partial(
            self._web, "chat.postMessage", token=token, channel=channel, thread_ts=thread_ts or None, **message
        )
        self._queue(Conversation(channel, thread_ts), "chat.postMessage", [send], on_done)

    def close(self) -> None:
        self._slack.close()

    def permalink(self, channel: str, ts: str) -> str:
        """Asked at once (not queued): a link is a read, limited apart from posting."""
        try:
            return str(
                self._slack.call("chat.getPermalink", {"channel": channel, "message_ts": ts}).get("permalink", "")
            )
        except SlackCallError as error:
            log.warning("chat.getPermalink failed: %s", error.error)
        return ""

    # -- plumbing ------------------------------------------------------------------------------------

    def _queue(
        self,
        where: Conversation,
        method: str,
        ways: list[Callable[[], Delivery]],
        on_done: OnDone | None,
        *,
        priority: Priority = Priority.URGENT,
        supersede: str = "",
    ) -> None:
        def done(delivery: Delivery) -> None:
            if not delivery.ok and delivery.via != "superseded" and self._on_failure is not None:
                self._on_failure(method)
            if on_done is not None:
                on_done(delivery)

        self.outbox.submit(
            partial(self._first_of, ways),
            lane=where.channel,
            key=where.key,
            method=method,
            priority=priority,
            supersede=supersede,
            on_done=done,
        )

    @staticmethod
    def _first_of(ways: list[Callable[[], Delivery]]) -> Delivery:
        for way in ways:
            delivery = way()
            if delivery.ok:
                return delivery
        return Delivery(ok=False, via="")

    def _web(self, method: str, *, token: str = "", **payload: Any) -> Delivery:
        if not payload.get("channel") or (method == "chat.update" and not payload.get("ts")):
            return Delivery(ok=False, via="web_api")
        try:
            answer = self._slack.call(method, {k: v for k, v in payload.items() if v is not None}, token=token)
        except RateLimited:
            raise
        except SlackCallError as error:
            log.warning("%s failed: %s", method, error.error)
            return Delivery(ok=False, via="web_api")
        return Delivery(ok=True, via="web_api", ts=str(answer.get("ts", "")))

    def _respond(self, url: str, **payload: Any) -> Delivery:
        if not url:
            return Delivery(ok=False, via="response_url")
        try:
            self._slack.respond(url, payload)
        except RateLimited:
            raise
        except SlackCallError as error:
            log.warning("response_url post failed: HTTP %s %s", error.status, error.error)
            return Delivery(ok=False, via="response_url")
        return Delivery(ok=True, via="response_url")
