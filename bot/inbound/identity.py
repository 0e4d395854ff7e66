"""Who the bot is in Slack, for Bolt's `authorize`: the configured token at once, the bot's ids once known.

Bolt given a token calls `auth.test` on the first request that needs the bot's identity, on that request's
path: with Slack's Web API out of reach (a partial outage, a firewall) while Slack still delivers commands,
every command failed after the calls timed out, though its prompt could go through its response_url. Here
the identity is learned off every request's path, by one coroutine that asks until Slack answers; requests
meanwhile carry the token alone, which is all the listeners use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import AsyncRetrying, retry_if_exception

from bot.http import RetryPolicy
from bot.loop import EventLoop

log = logging.getLogger(__name__)

LEARN_CAP = 30.0  # the longest wait between two auth.test calls while Slack does not answer


class BotIdentity:
    def __init__(self, client: AsyncWebClient, token: str, *, loop: EventLoop) -> None:
        self._client = client
        self._token = token
        self._loop = loop
        self._known: dict[str, Any] = {}  # auth.test's answer, once Slack gave it
        self._learning: Future[None] | None = None

    @property
    def authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """Bolt's authorize, which calls Slack never. A function: Bolt passes its arguments by their names."""

        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            known = self._known
            return AuthorizeResult(
                enterprise_id=enterprise_id or known.get("enterprise_id"),
                team_id=team_id or known.get("team_id"),
                bot_token=self._token,
                bot_id=known.get("bot_id"),
                bot_user_id=known.get("user_id"),
                user_id=user_id,
            )

        return authorize

    def learn_in_background(self) -> BotIdentity:
        """Ask auth.test, a coroutine on the event loop, until Slack answers (backing off, within LEARN_CAP s)."""
        if self._learning is None:
            self._learning = self._loop.submit(self._learn())
        return self

    def close(self) -> None:
        """Stop learning; from any thread (a task is cancelled on its loop only)."""
        if self._learning is not None:
            self._loop.call(self._learning.cancel)

    async def _learn(self) -> None:
        retrying = AsyncRetrying(retry=retry_if_exception(_unanswered), wait=RetryPolicy(cap=LEARN_CAP), reraise=True)
        try:
            answer = await retrying(self._client.auth_test)
        except SlackApiError as error:  # refused for good: sign-in at start says so in one line
            log.warning("Slack refused auth.test (%s): the bot's own ids stay unknown", error.response.get("error"))
            return
        self._known = dict(answer.data) if isinstance(answer.data, dict) else {}
        log.info("Slack answered auth.test: the bot is @%s (%s)", self._known.get("user"), self._known.get("team"))


def _unanswered(error: BaseException) -> bool:
    """Slack did not answer (no connection, a timeout, 5xx, 429): ask again. A refusal is final."""
    if isinstance(error, SlackApiError):
        status = error.response.status_code
        return status == 429 or status >= 500
    return isinstance(error, Exception)
