"""Each person's language: what one person reads alone (private prompts, refusals, notes, their home view,
direct messages) is in their Slack language; what a channel reads stays in the bot's (BOT_LANGUAGE).

Slack's requests do not carry the person's locale: `users.info` with `include_locale` gives it (`fr-FR`).
It is cached with an expiry, looked up off the ack path, and falls back to the bot's language when Slack
does not say, fails, is slow, or names a language the bot has no words for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient

from bot.words import LANGUAGES

log = logging.getLogger(__name__)

TTL = 3600.0  # seconds a person's language is trusted before it is asked again
KEPT = 10_000  # people remembered at most
RETRY_AFTER_FAILURE = 60.0  # seconds before a failed lookup is tried again
LOOKUP_TIMEOUT = 2.0  # seconds a lookup may hold the work waiting for it; then the bot's language


class Languages:
    """Thread-safe. `of()` answers from memory at once; `lookup()` waits a little for Slack (off the ack
    path). Lookups run on a few threads of their own, so a burst of waiting work never starves them."""

    def __init__(self, client: WebClient, default: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self._client = client
        self._clock = clock
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()  # user → (language, asked at)
        self._asking: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._lookups = ThreadPoolExecutor(4, thread_name_prefix="users-info")

    def of(self, user: str) -> str:
        """The person's language if known, else the bot's; an unknown or stale one is asked in the
        background, for the next message."""
        known, _ = self._known_or_ask(user)
        return known or self.default

    def lookup(self, user: str, timeout: float = LOOKUP_TIMEOUT) -> str:
        """The person's language, asking Slack when it is not known or stale, waiting `timeout` s at most."""
        known, asking = self._known_or_ask(user)
        if known is None and asking is not None:
            asking.wait(timeout)
            with self._lock:
                found = self._known.get(user)
            known = found[0] if found is not None else None
        return known or self.default

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)

    def _known_or_ask(self, user: str) -> tuple[str | None, threading.Event | None]:
        """What is known of `user` (None: nothing fresh), and the lookup under way for them, started here
        when none was."""
        if not user:
            return self.default, None
        with self._lock:
            known = self._known.get(user)
            if known is not None and self._clock() - known[1] <= TTL:
                return known[0], None
            asking = self._asking.get(user)
            start = asking is None
            if start:
                asking = self._asking[user] = threading.Event()
        if start:
            try:
                self._lookups.submit(self._fetch, user, asking)
            except RuntimeError:  # shut down: the process is exiting
                asking.set()
        return (known[0] if known is not None else None), asking

    def _fetch(self, user: str, asking: threading.Event) -> None:
        try:
            language, answered = self._ask(user)
            # A failed lookup is tried again a minute later, not an hour.
            asked_at = self._clock() - (0.0 if answered else TTL - RETRY_AFTER_FAILURE)
            with self._lock:
                self._known[user] = (language, asked_at)
                self._known.move_to_end(user)
                while len(self._known) > KEPT:
                    self._known.popitem(last=False)
        finally:
            with self._lock:
                self._asking.pop(user, None)
            asking.set()

    def _ask(self, user: str) -> tuple[str, bool]:
        """The language Slack gives for `user`, and whether Slack answered."""
        try:
            answer = self._client.users_info(user=user, include_locale=True)
        except Exception as error:  # slack_sdk raises whatever its HTTP call met
            log.info("users.info for %s failed (%s): %s is used", user, type(error).__name__, self.default)
            return self.default, False
        locale = str((answer.get("user") or {}).get("locale") or "")
        return language_of(locale, self.default), True


def language_of(locale: str, default: str) -> str:
    """`fr-FR` → `fr` when the bot has words for it; anything else → `default`."""
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return language if language in LANGUAGES else default
