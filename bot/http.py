"""How the bot speaks HTTP, to Slack and to MailPartner alike: an `httpx.Client` with a bounded pool of
kept-alive connections and typed timeouts, one reader of `Retry-After`, and one retry policy.

    http_client(…)   an httpx.Client: `httpx.Limits`, `httpx.Timeout`, the bot's User-Agent, no redirects;
                     `transport` is the test seam (`httpx.MockTransport`) and the sandbox's way in
    ClientPerThread  such a client for each calling thread, for the hot paths (why: its docstring)
    retry_after(…)   the seconds a server asked us to wait: `Retry-After: 30` or an HTTP date
    RetryPolicy      what every retry waits: the server's Retry-After when it gave one, else tenacity's
                     exponential backoff with full jitter, capped, so callers that failed together do
                     not all come back together

Failures are httpx's own exceptions: `httpx.TimeoutException` (no answer, or no connection, in time) and
the other `httpx.TransportError`s (refused, unreachable, dropped); each caller maps them in one table.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

USER_AGENT = "cancel-mail-bot"


def http_client(
    *,
    timeout: float,
    connections: int,
    base_url: str = "",
    transport: httpx.BaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """A thread-safe client whose pool holds at most `connections` connections, kept alive between calls;
    a call that finds them all busy waits for one up to its timeout."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        verify=verify,
        follow_redirects=False,  # neither Slack nor MailPartner redirects an API call; a redirect is a fault
    )


class ClientPerThread:
    """An `http_client()` for each calling thread, each keeping at most `per_thread` connections alive.

    Why not one client for all: httpcore's pool matches every waiting request with every connection on
    each request and each response, so with hundreds of calls in flight its cost grows with the square of
    them (4.5 ms of CPU a call with 64 threads, against 2.2 ms with a client each). A thread's own client
    never waits for another's connection. The callers' thread pools bound the clients (CANCEL_MAIL_WORKERS
    for MailPartner, the outbox's workers for Slack), and `close()` closes them all. Thread-safe."""

    def __init__(self, *, timeout: float, per_thread: int = 2, transport: httpx.BaseTransport | None = None) -> None:
        self._timeout, self._per_thread, self._transport = timeout, per_thread, transport
        self._tls = ssl.create_default_context()  # one for all: each costs milliseconds and memory
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = http_client(
                timeout=self._timeout, connections=self._per_thread, transport=self._transport, verify=self._tls
            )
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.close()


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asked us to wait, in either of Retry-After's forms (`30`, or `Wed, 02 Dec 2026
    10:00:00 GMT`); None when it did not say or said something else."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RetryPolicy:
    """The one retry policy. As tenacity's `wait=` it reads the failure's `retry_after`; the outbox, which
    waits without holding a thread, asks `delay()` for the same answer."""

    def __init__(self, *, cap: float, first: float = 0.5) -> None:
        self.cap = cap
        self._backoff = wait_random_exponential(multiplier=first, max=cap)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(error, "retry_after", None)
        return asked if asked is not None else float(self._backoff(state))

    def delay(self, failures: int, asked: float | None = None) -> float:
        """Seconds before the next try of something that failed `failures` times; `asked`: Retry-After."""
        if asked is not None:
            return asked
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = failures
        return float(self._backoff(state))
