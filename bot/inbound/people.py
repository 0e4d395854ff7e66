"""Each person's language: what one person reads alone (private prompts, refusals, notes, their home view,
direct messages) is in their Slack language; what a channel reads stays in the bot's (BOT_LANGUAGE).

Slack's requests do not carry the person's locale: `users.info` with `include_locale` gives it (`fr-FR`).
It is cached with an expiry, looked up off the ack path, and falls back to the bot's language when Slack
does not say, fails, is slow, or names a language the bot has no words for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.loop import EventLoop
from bot.words import LANGUAGES

log = logging.getLogger(__name__)

TTL = 3600.0  # seconds a person's language is trusted before it is asked again
KEPT = 10_000  # people remembered at most
RETRY_AFTER_FAILURE = 60.0  # seconds before a failed lookup is tried again
LOOKUP_TIMEOUT = 2.0  # seconds a lookup may hold the work waiting for it; then the bot's language


class Languages:
    """On the event loop: `of()` answers from memory at once (from any thread), and has an unknown or stale
    person asked in the background; `lookup()` waits a little for Slack. One `users.info` per person at a
    time, however many ask."""

    def __init__(
        self, client: AsyncWebClient, default: str, *, loop: EventLoop, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default = default
        self._client = client
        self._loop = loop
        self._clock = clock
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()  # user → (language, asked at); the loop's
        self._asking: dict[str, asyncio.Task[None]] = {}

    def of(self, user: str) -> str:
        """The person's language if known, else the bot's; an unknown or stale one is asked in the
        background, for the next message."""
        known = self._fresh(user)
        if known is None and user:
            self._loop.loop.call_soon_threadsafe(self._ask, user)
        return known or self.default

    async def lookup(self, user: str, timeout: float = LOOKUP_TIMEOUT) -> str:
        """The person's language, asking Slack when it is not known or stale, waiting `timeout` s at most."""
        known = self._fresh(user)
        if known is None and user:
            await asyncio.wait({self._ask(user)}, timeout=timeout)
            known = self._fresh(user)
        return known or self.default

    def _fresh(self, user: str) -> str | None:
        if not user:
            return self.default
        found = self._known.get(user)
        return found[0] if found is not None and self._clock() - found[1] <= TTL else None

    def _ask(self, user: str) -> asyncio.Task[None]:
        """The lookup under way for `user`, started here when none is (on the loop)."""
        asking = self._asking.get(user)
        if asking is None:
            asking = self._asking[user] = asyncio.get_running_loop().create_task(self._fetch(user))
        return asking

    async def _fetch(self, user: str) -> None:
        try:
            language, answered = await self._answer_of(user)
            # A failed lookup is tried again a minute later, not an hour.
            self._known[user] = (language, self._clock() - (0.0 if answered else TTL - RETRY_AFTER_FAILURE))
            self._known.move_to_end(user)
            while len(self._known) > KEPT:
                self._known.popitem(last=False)
        finally:
            self._asking.pop(user, None)

    async def _answer_of(self, user: str) -> tuple[str, bool]:
        """The language Slack gives for `user`, and whether Slack answered."""
        try:
            answer = await self._client.users_info(user=user, include_locale=True)
        except Exception as error:  # slack_sdk raises whatever its HTTP call met
            log.info("users.info for %s failed (%s): %s is used", user, type(error).__name__, self.default)
            return self.default, False
        locale = str((answer.get("user") or {}).get("locale") or "")
        return language_of(locale, self.default), True


def language_of(locale: str, default: str) -> str:
    """`fr-FR` → `fr` when the bot has words for it; anything else → `default`."""
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return language if language in LANGUAGES else default
