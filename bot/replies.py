"""Where a flow's messages go: the prompt, the outcome, and notes for one person.

Each operation has a first way and a fallback between the click's `response_url` (works in private
channels and DMs where the bot is not a member) and the Web API (works after a `response_url` is used
up or expired). Both ways retry Slack's 429s, 5xx and connection errors through slack_sdk's handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from bot.messages import Message

log = logging.getLogger(__name__)


def retry_handlers() -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


@dataclass(frozen=True)
class Conversation:
    """Where one flow lives. `prompt_ts` is set when the bot itself posted the prompt (thread flow)."""

    channel: str
    thread_ts: str = ""
    prompt_ts: str = ""
    response_url: str = ""


@dataclass(frozen=True)
class Delivery:
    ok: bool
    via: str  # "response_url", "web_api" or "" when nothing worked
    ts: str = ""


class Replier:
    def __init__(self, client: WebClient, webhook_factory: Callable[[str], WebhookClient] | None = None) -> None:
        self._client = client
        self._webhook = webhook_factory or (lambda url: WebhookClient(url, timeout=10, retry_handlers=retry_handlers()))

    def post_prompt(self, channel: str, thread_ts: str, message: Message) -> Delivery:
        return self._web("chat.postMessage", channel=channel, thread_ts=thread_ts or None, **message)

    def replace_prompt(self, where: Conversation, message: Message) -> Delivery:
        by_update = partial(self._web, "chat.update", channel=where.channel, ts=where.prompt_ts, **message)
        by_url = partial(self._respond, where.response_url, replace_original=True, **message)
        return self._first_of([by_update, by_url] if where.prompt_ts else [by_url, by_update])

    def with_client(self, client: WebClient) -> Replier:
        """The same replier speaking with another token: a workflow execution's own."""
        return Replier(client, self._webhook)

    def post_public(self, where: Conversation, message: Message) -> Delivery:
        """Where the whole conversation sees it: the thread, or the channel through the response_url."""
        thread = where.thread_ts or None
        by_post = partial(self._web, "chat.postMessage", channel=where.channel, thread_ts=thread, **message)
        by_url = partial(
            self._respond, where.response_url, response_type="in_channel", replace_original=False, **message
        )
        return self._first_of([by_post, by_url] if where.thread_ts else [by_url, by_post])

    def tell(self, where: Conversation, user: str, message: Message) -> Delivery:
        """A message only `user` sees."""
        thread = where.thread_ts or None
        by_url = partial(
            self._respond, where.response_url, response_type="ephemeral", replace_original=False, **message
        )
        by_api = partial(self._web, "chat.postEphemeral", channel=where.channel, user=user, thread_ts=thread, **message)
        return self._first_of([by_url, by_api])

    def post(self, channel: str, message: Message, thread_ts: str = "") -> Delivery:
        return self._web("chat.postMessage", channel=channel, thread_ts=thread_ts or None, **message)

    def permalink(self, channel: str, ts: str) -> str:
        try:
            return str(self._client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink", ""))
        except SlackApiError as error:
            log.warning("chat.getPermalink failed: %s", error.response.get("error"))
        except Exception as error:
            log.warning("chat.getPermalink failed: %s", type(error).__name__)
        return ""

    def _first_of(self, ways: list[Callable[[], Delivery]]) -> Delivery:
        for way in ways:
            delivery = way()
            if delivery.ok:
                return delivery
        return Delivery(ok=False, via="")

    def _web(self, method: str, **kwargs: Any) -> Delivery:
        if not kwargs.get("channel") or (method == "chat.update" and not kwargs.get("ts")):
            return Delivery(ok=False, via="web_api")
        try:
            response = self._client.api_call(method, json={k: v for k, v in kwargs.items() if v is not None})
            return Delivery(ok=True, via="web_api", ts=str(response.get("ts", "")))
        except SlackApiError as error:
            log.warning("%s failed: %s", method, error.response.get("error"))
        except Exception as error:
            log.warning("%s failed: %s: %s", method, type(error).__name__, error)
        return Delivery(ok=False, via="web_api")

    def _respond(self, url: str, **kwargs: Any) -> Delivery:
        if not url:
            return Delivery(ok=False, via="response_url")
        try:
            response = self._webhook(url).send(**kwargs)
        except Exception as error:
            log.warning("response_url post failed: %s: %s", type(error).__name__, error)
            return Delivery(ok=False, via="response_url")
        if response.status_code == 200:
            return Delivery(ok=True, via="response_url")
        log.warning("response_url post failed: HTTP %s %s", response.status_code, response.body[:100])
        return Delivery(ok=False, via="response_url")
