"""Slack's Web API and `response_url`s, one attempt per call, each a coroutine on the event loop over one
`httpx.AsyncClient` (bot/http.py): every message the bot sends to a person leaves here (`chat.*`,
`response_url`, `functions.*`).

Nothing here retries: the outbox decides when a message is tried again (bot/outbound/outbox.py), so a
retry never holds a thread, nor another channel's messages. Each failure says what it is:

    SlackCallError          Slack refused the call (`ok: false`, a 4xx): it will not work as it is
    └── SlackRetryable      worth trying again later; `retry_after` when Slack said how long
        ├── RateLimited     HTTP 429: pause what the limit applies to (a channel, or the method)
        └── SlackUnavailable  5xx, refused or dropped connections, no answer in time, or an error Slack
                            documents as passing (`internal_error`, `service_unavailable`…)
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.http import AsyncHttp, retry_after

# Where a 429 applies: chat.postMessage is limited per channel, the other methods per workspace.
PER_CHANNEL = frozenset({"chat.postMessage", "response_url"})
# `ok: false` errors that Slack documents as passing: the same call may work later.
PASSING_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})


class SlackCallError(Exception):
    def __init__(self, method: str, error: str, status: int = 200) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method, self.error, self.status = method, error, status


class SlackRetryable(SlackCallError):
    def __init__(self, method: str, error: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(method, error, status)
        self.retry_after = retry_after


class RateLimited(SlackRetryable):
    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(method, f"rate limited, retry after {retry_after:g}s", 429, retry_after)

    @property
    def per_channel(self) -> bool:
        return self.method in PER_CHANNEL


class SlackUnavailable(SlackRetryable):
    pass


class SlackHttp:
    """The outbox's workers call it, on the event loop; at most `connections` calls at once."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.token = token
        self._http = AsyncHttp(timeout=timeout, connections=connections, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, payload: dict[str, Any], *, token: str = "") -> dict[str, Any]:
        """A Web API method with a JSON body; returns Slack's answer when `ok` is true."""
        answer = await self._post(method, self.api_url + method, payload, token or self.token)
        try:
            body = answer.json()
        except ValueError as error:
            raise SlackCallError(method, f"not JSON (HTTP {answer.status_code})", answer.status_code) from error
        if not isinstance(body, dict) or not body.get("ok"):
            error = str(body.get("error") if isinstance(body, dict) else "not_an_object")
            if error in PASSING_ERRORS:
                raise SlackUnavailable(method, error, answer.status_code, retry_after(answer.headers))
            raise SlackCallError(method, error, answer.status_code)
        return body

    async def respond(self, url: str, payload: dict[str, Any]) -> None:
        """Post to a `response_url`; Slack answers plain `ok`, or an error text (`expired_url`, `used_url`)."""
        answer = await self._post("response_url", url, payload, "")
        if answer.status_code != 200:
            detail = answer.content[:100].decode("utf-8", "replace") or "error"
            raise SlackCallError("response_url", detail, answer.status_code)

    async def _post(self, method: str, url: str, payload: dict[str, Any], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            answer = await self._http.request("POST", url, json=payload, headers=headers)
        except httpx.TimeoutException as error:
            raise SlackUnavailable(method, "no answer in time" + self._http.proxies.blame(url)) from error
        except httpx.TransportError as error:
            raise SlackUnavailable(method, type(error).__name__ + self._http.proxies.blame(url)) from error
        status = answer.status_code
        if status == 429:
            raise RateLimited(method, retry_after(answer.headers) or 1.0)
        if status >= 500:
            raise SlackUnavailable(method, f"HTTP {status}", status, retry_after(answer.headers))
        return answer
