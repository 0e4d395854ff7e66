"""How the bot speaks HTTP, to Slack and to MailPartner alike: httpx's client, request and response
models, with typed limits and timeouts, over aiohttp's connection pools (`ProxyRoutes`); one reader of
`Retry-After`, and one retry policy.

    AsyncHttp        one service's `httpx.AsyncClient` on the event loop, bounded by `httpx.Limits` and
                     `httpx.Timeout`; proxies and certificates as the environment names them; `transport`
                     is the test seam (`httpx.MockTransport`) and the sandbox's way in
    ProxyRoutes      the connections: a pool for each route (direct, or a proxy), bounded by `httpx.Limits`
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

import contextlib
import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

USER_AGENT = "cancel-mail-bot"


class Proxies:
    """The proxies the environment names, read once: which one a URL goes through, or none.

    The standard library reads the variables (upper or lower case, NO_PROXY's hosts, domains, ports and
    `*`), as curl, pip and httpx's own clients do; a bare transport would read nothing."""

    def __init__(self) -> None:
        found = urllib.request.getproxies_environment()
        # `no` is NO_PROXY's list; every other value is a proxy, written as curl and pip take it.
        self._proxies = {name: value if name == "no" else proxy_url(value)[0] for name, value in found.items()}
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


PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")  # and their lower-case spellings
PROXY_SCHEMES = ("http", "https")  # what aiohttp's pools can go through


def proxy_url(raw: str) -> tuple[str, str]:
    """A proxy setting as curl and pip read it, and what is wrong with it ("" when nothing): a value without
    a scheme is `http://`; the scheme must be one the bot's connections can use, with a host."""
    value = raw.strip()
    if value and "://" not in value:
        value = f"http://{value}"
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        return value, "is not a URL (write http://host:port)"
    if url.scheme not in PROXY_SCHEMES:
        return value, f"uses {url.scheme}://, which the bot cannot go through (write http://host:port)"
    if not url.host:
        return value, "names no host (write http://host:port)"
    return value, ""


def proxy_problems(env: Mapping[str, str]) -> list[str]:
    """Each proxy variable in `env` the bot could not use, named with what is wrong (never its password)."""
    problems = []
    for name in (*PROXY_VARIABLES, *(v.lower() for v in PROXY_VARIABLES)):
        if (raw := env.get(name, "").strip()) and (wrong := proxy_url(raw)[1]):
            problems.append(f"{name} {wrong}")
    return problems


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
        # The connections' bounds (httpx.Limits) are the transport's: ProxyRoutes', or a test's own.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport or ProxyRoutes(connections, self.proxies),
            trust_env=False,  # the proxies are ProxyRoutes', the certificates its pools'
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
        max_body: int | None = None,
    ) -> httpx.Response:
        """One request, its body read; `timeout` in place of the default; a body past `max_body` bytes raises
        AnswerTooLarge as soon as it goes past. Raises httpx's exceptions."""
        request = self._client.build_request(
            method,
            url,
            params=params,
            json=json,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
        )
        response = await self._client.send(request, stream=max_body is not None)
        if max_body is None:
            return response
        try:
            if int(response.headers.get("Content-Length") or 0) > max_body:
                raise AnswerTooLarge(
                    f"an answer of {response.headers['Content-Length']} bytes, more than the {max_body} read",
                    request=request,
                )
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():  # decoded: a small gzip that unpacks huge is caught too
                size += len(chunk)
                if size > max_body:
                    raise AnswerTooLarge(f"an answer of more than the {max_body} bytes read", request=request)
                chunks.append(chunk)
        finally:
            await response.aclose()
        # The body as read, decoded: its encoding and length headers no longer describe it.
        headers = [
            (k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=request,
            extensions={"reason_phrase": response.reason_phrase.encode()},
        )

    async def aclose(self) -> None:
        await self._client.aclose()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One for every connection the process opens: each costs tens of milliseconds of CPU (the certificate
    authorities read anew) and memory. SSL_CERT_FILE and SSL_CERT_DIR as httpx reads them."""
    return httpx.create_ssl_context(trust_env=True)


class ProxyRoutes(httpx.AsyncBaseTransport):
    """Each request through the proxy `proxies` names for its URL, or direct: one pool of at most
    `connections` kept-alive connections a route, made at its first request.

    The pools are aiohttp's, under httpx's client (httpx-aiohttp's transport): at each request's start and
    end, httpcore's pool looks at every one of its connections (expired? idle? readable? a system call
    each), through anyio, so its cost grows with their number. In the steady benchmark, 32 cancels in
    flight, httpcore's pools cost 12.2 ms of CPU a cancel, aiohttp's 7.0."""

    def __init__(self, connections: int, proxies: Proxies) -> None:
        self._limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._proxies = proxies
        self._routes: dict[str | None, AiohttpTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self._proxies.for_url(request.url)
        if (route := self._routes.get(proxy)) is None:
            route = self._routes[proxy] = AiohttpTransport(
                limits=self._limits, verify=tls_context(), proxy=httpx.Proxy(proxy) if proxy else None
            )
        with _as_httpx_failures(request):
            response = await route.handle_async_request(request)
        response.stream = _BodyFailuresAsHttpx(response.stream, request)
        return response

    async def aclose(self) -> None:
        for route in self._routes.values():
            await route.aclose()


class AnswerTooLarge(httpx.DecodingError):
    """The body went past what the caller reads (`max_body`): refused, and never held whole in memory."""


class NameNotResolved(httpx.ConnectError):
    """The host's name does not resolve (DNS): asking again at once will not mend it."""


class CertificateRefused(httpx.ConnectError):
    """The server's certificate is not trusted (SSL_CERT_FILE, a proxy's own authority): nor will this."""


# aiohttp's failures as httpx's, the first that matches, so that every caller maps httpx's alone. Not
# httpx-aiohttp's own table: it turns a refused connection and a dropped one into ConnectTimeout, and
# lets a garbled answer through as aiohttp's.
FAILURES: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorDNSError, NameNotResolved),
    (aiohttp.ClientConnectorCertificateError, CertificateRefused),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # no connection in time, a free one awaited included
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unreachable, unknown host, TLS
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not HTTP: a garbled status line or headers
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),  # the rest: the connection broke under way
)


@contextlib.contextmanager
def _as_httpx_failures(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (httpx.TransportError, aiohttp.ClientError) as error:
        failure = error.__cause__ if isinstance(error, httpx.TransportError) else error
        if not isinstance(failure, aiohttp.ClientError):
            raise
        kind = next(kind for caught, kind in FAILURES if isinstance(failure, caught))
        raise kind(str(failure) or type(failure).__name__, request=request) from failure


class _BodyFailuresAsHttpx(httpx.AsyncByteStream):
    """A response's body, read with its failures told as httpx's (FAILURES)."""

    def __init__(self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, request: httpx.Request) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_failures(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _as_httpx_failures(self._request):
            await self._stream.aclose()


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
