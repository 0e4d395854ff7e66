"""The Web API and `response_url` calls the bot makes on its hot path, over one pooled HTTP client.

slack_sdk's `WebClient` opens a new connection per call; at hundreds of cancels a minute that is most of
the bot's CPU. This client keeps connections to Slack alive and reports what the outbox needs to know:

    SlackCallError      Slack answered `ok: false` or an HTTP error: the call will not work as it is
    └── RateLimited     HTTP 429: worth trying again after `retry_after` seconds, no sooner

Connection errors and 5xx are retried here, twice, like slack_sdk's own handlers; 429 is not, since
waiting is the outbox's job (it must not hold a thread, nor other channels' messages).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

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
    """Thread-safe; one per process."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.token = token
        self._http = httpx.Client(
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "cancel-mail-bot"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, payload: dict[str, Any], *, token: str = "") -> dict[str, Any]:
        """A Web API method with a JSON body; returns Slack's answer when `ok` is true."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        response = self._send(method, self.api_url + method, payload, headers)
        try:
            body = response.json()
        except ValueError as error:
            raise SlackCallError(method, f"not JSON (HTTP {response.status_code})", response.status_code) from error
        if not isinstance(body, dict) or not body.get("ok"):
            error = str(body.get("error") if isinstance(body, dict) else "not_an_object")
            raise SlackCallError(method, error, response.status_code)
        return body

    def respond(self, url: str, payload: dict[str, Any]) -> None:
        """Post to a `response_url`; Slack answers plain `ok`, or an error text with a 4xx."""
        response = self._send("response_url", url, payload, {})
        if response.status_code != 200:
            raise SlackCallError("response_url", response.text[:100] or "error", response.status_code)

    def _send(self, method: str, url: str, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        for attempt, pause in enumerate((*_RETRIES, None)):
            try:
                response = self._http.post(url, json=payload, headers=headers)
            except httpx.TransportError as error:
                if pause is None:
                    raise SlackCallError(method, type(error).__name__) from error
                log.info("%s: %s; retrying (%d)", method, type(error).__name__, attempt + 1)
            else:
                if response.status_code == 429:
                    raise RateLimited(method, _retry_after(response))
                if response.status_code < 500 or pause is None:
                    return response
                log.info("%s: HTTP %d; retrying (%d)", method, response.status_code, attempt + 1)
            time.sleep(pause)
        raise AssertionError("unreachable")  # the loop returns or raises on its last pass


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
