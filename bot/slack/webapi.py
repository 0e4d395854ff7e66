"""The Web API and `response_url` calls the bot makes on its hot path, over kept-alive connections.

Two Slack calls go with every cancel. slack_sdk's `WebClient` opens a new connection for each, and an
httpx request costs about 1.3 ms of CPU where the standard library's `http.client` costs 0.5 ms; so this
client keeps one `http.client` connection per outbox thread and Slack host (bot/connections.py), reused
call after call. It reports what the outbox needs to know:

    SlackCallError      Slack answered `ok: false` or an HTTP error: the call will not work as it is
    └── RateLimited     HTTP 429: worth trying again after `retry_after` seconds, no sooner

Connection errors and 5xx are retried here, twice, like slack_sdk's own handlers; 429 is not, since
waiting is the outbox's job (it must not hold a thread, nor other channels' messages).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from bot.connections import ThreadConnections

log = logging.getLogger(__name__)

# Where a 429 applies: chat.postMessage is limited per channel, the other methods per workspace.
PER_CHANNEL = frozenset({"chat.postMessage", "response_url"})
_RETRIES = (0.2, 0.6)  # seconds before each retry of a connection error or a 5xx


class SlackCallError(Exception):
    def __init__(self, method: str, error: str, status: int = 200) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method, self.error, self.status = method, error, status


class RateLimited(SlackCallError):
    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(method, f"rate limited, retry after {retry_after:g}s", 429)
        self.retry_after = retry_after

    @property
    def per_channel(self) -> bool:
        return self.method in PER_CHANNEL


class SlackHttp:
    """Thread-safe: each thread has its own connections."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.token = token
        self._connections = ThreadConnections(timeout=timeout)

    def close(self) -> None:
        self._connections.close()

    def call(self, method: str, payload: dict[str, Any], *, token: str = "") -> dict[str, Any]:
        """A Web API method with a JSON body; returns Slack's answer when `ok` is true."""
        status, headers, data = self._send(method, self.api_url + method, payload, token or self.token)
        if status == 429:
            raise RateLimited(method, _retry_after(headers))
        try:
            body = json.loads(data)
        except ValueError as error:
            raise SlackCallError(method, f"not JSON (HTTP {status})", status) from error
        if not isinstance(body, dict) or not body.get("ok"):
            error = str(body.get("error") if isinstance(body, dict) else "not_an_object")
            raise SlackCallError(method, error, status)
        return body

    def respond(self, url: str, payload: dict[str, Any]) -> None:
        """Post to a `response_url`; Slack answers plain `ok`, or an error text with a 4xx."""
        status, headers, data = self._send("response_url", url, payload, "")
        if status == 429:
            raise RateLimited("response_url", _retry_after(headers))
        if status != 200:
            raise SlackCallError("response_url", data[:100].decode("utf-8", "replace") or "error", status)

    def _send(self, method: str, url: str, payload: dict[str, Any], token: str) -> tuple[int, Message, bytes]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "cancel-mail-bot"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt, pause in enumerate((*_RETRIES, None)):
            connection = self._connections.get(parts.scheme, parts.netloc)
            try:
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()  # a kept-alive connection the server closed meanwhile: a fresh one next
                if pause is None:
                    raise SlackCallError(method, type(error).__name__) from error
                log.info("%s: %s; retrying (%d)", method, type(error).__name__, attempt + 1)
                time.sleep(pause if attempt else 0)  # a stale kept-alive connection is retried at once
                continue
            if response.will_close:
                connection.close()
            if response.status < 500 or pause is None:
                return response.status, response.headers, data
            log.info("%s: HTTP %d; retrying (%d)", method, response.status, attempt + 1)
            time.sleep(pause)
        raise AssertionError("unreachable")  # the loop returns or raises on its last pass


def _retry_after(headers: Message) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
