"""How the bot speaks HTTP, to Slack and to MailPartner alike: httpx's connection pool and request and
response models, with typed limits and timeouts, one reader of `Retry-After`, and one retry policy.

    AsyncHttp        one service's `httpx.AsyncClient` on the event loop, bounded by `httpx.Limits` and
                     `httpx.Timeout`; proxies and certificates as the environment names them; `transport`
                     is the test seam (`httpx.MockTransport`) and the sandbox's way in
    Proxies          the proxy the environment names for a URL, as every HTTP program reads it
                     (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY); certificates from httpx's bundle, or
                     SSL_CERT_FILE and SSL_CERT_DIR when set (`tls_context`)
    retry_after(…)   the seconds a server asked us to wait: `Retry-After: 30` or an HTTP date
    RetryPolicy      what every retry waits: the server's Retry-After when it gave one, else tenacity's
                     exponential backoff with full jitter, capped, so callers that failed together do
                     not all come back together

Failures are httpx's own exceptions: `httpx.TimeoutException` (no answer, or no connection, in time) and
the other `httpx.TransportError`s (refused, unreachable, dropped); each caller maps them in one table.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

USER_AGENT = "cancel-mail-bot"
POOL_SIZE = 64  # connections a pool of PoolsInTurn holds at most


class Proxies:
    """The proxies the environment names, read once: which one a URL goes through, or none.

    The standard library reads the variables (upper or lower case, NO_PROXY's hosts, domains, ports and
    `*`), as curl, pip and httpx's own clients do; a bare transport would read nothing."""

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies_environment()
        self._chosen: dict[tuple[str, str], str | None] = {}  # (scheme, host[:port]) → proxy; a few hosts

    def for_url(self, url: httpx.URL | str) -> str | None:
        """The proxy URL requests to `url` go through; None: a direct connection."""
        url = httpx.URL(url)
        where = (url.scheme, url.netloc.decode("ascii"))
        if where not in self._chosen:
            proxy = self._proxies.get(url.scheme) or self._proxies.get("all") or None
            bypass = proxy is not None and urllib.request.proxy_bypass_environment(where[1], self._proxies)
            self._chosen[where] = None if bypass else proxy
        return self._chosen[where]

    def describe(self, url: httpx.URL | str) -> str:
        """`through the proxy http://proxy:3128` (a password in it masked), or `directly`: for `check`."""
        proxy = self.for_url(url)
        return f"through the proxy {shown_proxy(proxy)}" if proxy else "directly"

    def blame(self, url: httpx.URL | str) -> str:
        """What a failed connection to `url` adds to its message: ` through the proxy …`, or nothing when it
        was direct. A proxy in the way is said, so that its failure never reads as the service's outage."""
        return f" {self.describe(url)}" if self.for_url(url) else ""


def shown_proxy(proxy: str) -> str:
    """A proxy URL as a log line or `check` may show it: its password masked."""
    url = httpx.URL(proxy)
    return str(url.copy_with(userinfo=f"{url.username}:***".encode())) if url.password else proxy


class AsyncHttp:
    """One service's requests on the event loop, over one `httpx.AsyncClient`: at most `connections` at once
    (one per call in flight; a call past that waits for one, within its timeout), kept alive between calls.

    HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY apply as `Proxies` reads them, SSL_CERT_FILE and
    SSL_CERT_DIR as httpx does. A redirect is returned as it is: no API call is redirected, so a 3xx is the
    caller's fault to report."""

    def __init__(self, *, timeout: float, connections: int, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.proxies = Proxies()  # which proxy each call goes through, and what a failed call's message says
        # The connections' bounds (httpx.Limits) are the transport's: PoolsInTurn's, or a test's own.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport or PoolsInTurn(connections, self.proxies),
            trust_env=False,  # the proxies are PoolsInTurn's, the certificates its transports'
            headers={"User-Agent": USER_AGENT},
        )

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request, its body read; `timeout` in place of the default. Raises httpx's exceptions."""
        return await self._client.request(
            method,
            url,
            params=params,
            json=json,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One for every connection the process opens: each costs tens of milliseconds of CPU (the certificate
    authorities read anew) and memory. SSL_CERT_FILE and SSL_CERT_DIR as httpx reads them."""
    return httpx.create_ssl_context(trust_env=True)


class PoolsInTurn(httpx.AsyncBaseTransport):
    """`connections` kept-alive connections as a few of httpx's transports of POOL_SIZE each, a request going
    to the one with the fewest in flight; through the proxy `proxies` names for its URL, if any.

    Why not one: at each request's start and end, httpcore's pool looks at every one of its connections
    (expired? idle? readable?), so its cost grows with their number. A burst of 500 MailPartner calls in
    flight on one pool of 512 cost 15 ms of CPU a cancel, most of it there; in pools of 64, 9."""

    def __init__(self, connections: int, proxies: Proxies) -> None:
        self._count = max(1, -(-connections // POOL_SIZE))
        size = -(-connections // self._count)
        self._limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._proxies = proxies
        self._routes: dict[str | None, tuple[list[httpx.AsyncHTTPTransport], list[int]]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pools, in_flight = self._route(self._proxies.for_url(request.url))
        chosen = min(range(len(pools)), key=in_flight.__getitem__)
        in_flight[chosen] += 1
        try:
            return await pools[chosen].handle_async_request(request)
        finally:
            in_flight[chosen] -= 1

    def _route(self, proxy: str | None) -> tuple[list[httpx.AsyncHTTPTransport], list[int]]:
        """The pools to `proxy` (None: direct), made at their first request."""
        if proxy not in self._routes:
            pools = [
                httpx.AsyncHTTPTransport(limits=self._limits, verify=tls_context(), proxy=proxy)
                for _ in range(self._count)
            ]
            self._routes[proxy] = (pools, [0] * self._count)
        return self._routes[proxy]

    async def aclose(self) -> None:
        for pools, _ in self._routes.values():
            for pool in pools:
                await pool.aclose()


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
