"""How the bot speaks HTTP, to Slack and to MailPartner alike: an `httpx.Client` over a transport of the
standard library's `http.client` with one kept-alive connection per thread, one reader of `Retry-After`,
and one backoff for every retry.

Every cancel is one short GET and two Slack POSTs, made by one of hundreds of pool threads at once.
httpcore's pool scans every pooled connection (a socket check each) whenever a response closes, and its
layers cost about 0.4 ms of CPU per request more than `http.client`; a connection of the calling thread's
own needs no pool, no lock and no scan. The `httpx.Client` above it keeps its API: base URL, params, timeouts, and
`httpx.MockTransport` in tests. Failures are raised as httpx's own exceptions, so callers see no
difference:

    connect timed out            httpx.ConnectTimeout     (a TimeoutException)
    no answer in time            httpx.ReadTimeout        (a TimeoutException)
    refused, unreachable, DNS    httpx.ConnectError       (a TransportError)
    dropped or garbled answer    httpx.RemoteProtocolError / httpx.ReadError (TransportErrors)
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity.wait import wait_random_exponential

from bot.connections import ThreadConnections

# A kept-alive connection the server closed while idle fails like this on its next request, before
# the server has seen it: such a request is sent again once, on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class KeptAliveTransport(httpx.BaseTransport):
    """Thread-safe: each thread has its own connection to each host."""

    def __init__(self, *, verify: ssl.SSLContext | None = None) -> None:
        self._connections = ThreadConnections(tls=verify)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        target = url.raw_path.decode("ascii")
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in request.headers.raw}
        body = request.read() or None
        for first_try in (True, False):
            connection = self._connections.get(url.scheme, url.host, url.port)
            reused = connection.sock is not None
            try:
                if connection.sock is None:
                    _connect(connection, timeouts.get("connect"), request)
                connection.sock.settimeout(timeouts.get("read"))  # type: ignore[union-attr]
                connection.request(request.method, target, body=body, headers=headers)
                response = connection.getresponse()
                content = response.read()
            except _STALE as error:
                connection.close()
                if reused and first_try:
                    continue  # the next pass connects anew
                raise httpx.RemoteProtocolError(
                    f"connection closed: {type(error).__name__}", request=request
                ) from error
            except TimeoutError as error:
                connection.close()
                raise httpx.ReadTimeout(str(error) or "timed out", request=request) from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise httpx.ReadError(f"{type(error).__name__}: {error}", request=request) from error
            if response.will_close:
                connection.close()
            return httpx.Response(
                response.status,
                headers=response.getheaders(),
                content=content,
                request=request,
                extensions={"reason_phrase": (response.reason or "").encode("latin-1", "replace")},
            )
        raise AssertionError("unreachable")  # the loop returns or raises on its second pass

    def close(self) -> None:
        self._connections.close()


def _connect(connection: http.client.HTTPConnection, timeout: float | None, request: httpx.Request) -> None:
    connection.timeout = timeout
    try:
        connection.connect()
    except TimeoutError as error:
        connection.close()
        raise httpx.ConnectTimeout(str(error) or "connect timed out", request=request) from error
    except OSError as error:  # refused, unreachable, DNS (socket.gaierror), a failed TLS handshake
        connection.close()
        raise httpx.ConnectError(f"{type(error).__name__}: {error}", request=request) from error


def kept_alive_client(
    *, timeout: float, headers: Mapping[str, str], transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An httpx.Client on the kept-alive transport (or `transport`: httpx.MockTransport in tests)."""
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": "cancel-mail-bot", **headers},
        transport=transport or KeptAliveTransport(),
    )


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds a server asked us to wait (`Retry-After: 30`); None when it did not say."""
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


class Backoff:
    """The one backoff every retry uses (tenacity's exponential with full jitter): from `first` seconds,
    doubling, capped, so that callers that failed together do not all come back together."""

    def __init__(self, *, cap: float, first: float = 0.5) -> None:
        self.wait = wait_random_exponential(multiplier=first, max=cap)  # a tenacity `wait=` strategy

    def __call__(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1, 2, …), for a retry loop tenacity does not drive."""
        return float(self.wait(_Attempt(attempt)))  # type: ignore[arg-type]


class _Attempt:
    """The one field of tenacity's RetryCallState its wait strategies read."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number
