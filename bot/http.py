"""How the bot speaks HTTP, to Slack and to MailPartner alike: one loop over the standard library's
`http.client` with a kept-alive connection per thread and host (`KeptAlive`), one reader of
`Retry-After`, and one backoff for every retry.

    KeptAlive              the loop: Slack's calls use it directly (bot/slack/webapi.py)
    KeptAliveTransport     the same as an httpx transport, for MailPartner (httpx's requests and
                           responses, and `httpx.MockTransport` in tests)

Every cancel is a few short requests, made by hundreds of pool threads at once. httpcore's pool scans
every pooled connection (a socket check each) whenever a response closes, and its layers cost about
0.4 ms of CPU per request more than `http.client`; httpx's request and response objects cost another
0.5 ms, which is why Slack's three calls per cancel skip them. A connection of the calling thread's own
needs no pool, no lock and no scan. Failures are httpx's own exceptions, whichever way in:

    connect timed out            httpx.ConnectTimeout     (a TimeoutException)
    no answer in time            httpx.ReadTimeout        (a TimeoutException)
    refused, unreachable, DNS    httpx.ConnectError       (a TransportError)
    dropped or garbled answer    httpx.RemoteProtocolError / httpx.ReadError (TransportErrors)
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity.wait import wait_random_exponential

from bot.connections import ThreadConnections

USER_AGENT = "cancel-mail-bot"

# A kept-alive connection the server closed while idle fails like this on its next request, before
# the server has seen it: such a request is sent again once, on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass(frozen=True)
class Answer:
    """What a server said: status, headers, body."""

    status: int
    headers: http.client.HTTPMessage
    content: bytes
    reason: str = ""


class KeptAlive:
    """One request and its answer over this thread's kept-alive connection to the host: the one loop of
    the bot's HTTP. A connection the server closed while idle is tried once more on a fresh one. Failures
    are httpx's exceptions (see the module's table), with no request attached. Thread-safe."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._connections = ThreadConnections(tls=tls)

    def exchange(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        target: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> Answer:
        for first_try in (True, False):
            connection = self._connections.get(scheme, host, port)
            reused = connection.sock is not None
            try:
                if connection.sock is None:
                    _connect(connection, connect_timeout)
                connection.sock.settimeout(read_timeout)  # type: ignore[union-attr]
                connection.request(method, target, body=body, headers=dict(headers))
                response = connection.getresponse()
                content = response.read()
            except _STALE as error:
                connection.close()
                if reused and first_try:
                    continue  # the next pass connects anew
                raise httpx.RemoteProtocolError(f"connection closed: {type(error).__name__}") from error
            except TimeoutError as error:
                connection.close()
                raise httpx.ReadTimeout(str(error) or "timed out") from error
            except (OSError, http.client.HTTPException, ValueError, AttributeError) as error:
                # ValueError and AttributeError: http.client's own, when `close()` at shutdown closed the
                # connection under this thread's feet; the call failed all the same.
                connection.close()
                raise httpx.ReadError(f"{type(error).__name__}: {error}") from error
            if response.will_close:
                connection.close()
            return Answer(response.status, response.headers, content, response.reason or "")
        raise AssertionError("unreachable")  # the loop returns or raises on its second pass

    def close(self) -> None:
        self._connections.close()


class KeptAliveTransport(httpx.BaseTransport):
    """httpx's API (base URL, params, timeouts, MockTransport in tests) over `KeptAlive`. Thread-safe."""

    def __init__(self, *, verify: ssl.SSLContext | None = None) -> None:
        self._http = KeptAlive(tls=verify)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        try:
            answer = self._http.exchange(
                request.method,
                url.scheme,
                url.host,
                url.port,
                url.raw_path.decode("ascii"),
                body=request.read() or None,
                headers={key.decode("latin-1"): value.decode("latin-1") for key, value in request.headers.raw},
                connect_timeout=timeouts.get("connect"),
                read_timeout=timeouts.get("read"),
            )
        except httpx.TransportError as error:
            error.request = request
            raise
        return httpx.Response(
            answer.status,
            headers=answer.headers.items(),
            content=answer.content,
            request=request,
            extensions={"reason_phrase": answer.reason.encode("latin-1", "replace")},
        )

    def close(self) -> None:
        self._http.close()


def _connect(connection: http.client.HTTPConnection, timeout: float | None) -> None:
    connection.timeout = timeout
    try:
        connection.connect()
    except TimeoutError as error:
        connection.close()
        raise httpx.ConnectTimeout(str(error) or "connect timed out") from error
    except OSError as error:  # refused, unreachable, DNS (socket.gaierror), a failed TLS handshake
        connection.close()
        raise httpx.ConnectError(f"{type(error).__name__}: {error}") from error


def retry_after(headers: Mapping[str, str] | http.client.HTTPMessage) -> float | None:
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
