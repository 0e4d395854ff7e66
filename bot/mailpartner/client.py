"""MailPartner adapter: one `message-cancel` call in, one typed `CancelOutcome` out.

`MailPartnerClient.cancel` never raises for anything MailPartner or the network does: every answer,
known code or not, and every failure becomes a `CancelOutcome`, so callers render instead of catching.
Internally each attempt raises from the `MailPartnerError` hierarchy and tenacity decides on retries:

    MailPartnerError
    ├── MailPartnerTimeout          no answer in time; the cancel may or may not have happened
    ├── MailPartnerConnectionError  MailPartner could not be reached
    ├── MailPartnerHTTPError        an HTTP error status with no control code in the body
    │   └── MailPartnerUnavailable  429 / 502 / 503 / 504: worth another try, honouring Retry-After
    └── MailPartnerMalformedAnswer  a body that is neither JSON nor carries a control code
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_before_delay
from tenacity.wait import wait_random_exponential

from bot.mailpartner.transport import KeptAliveTransport

log = logging.getLogger(__name__)

# A leading `-` is never an id: it is an option or a reason typed without ` -- ` (`--wrong`).
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# The seed's control codes: an answer carrying one of these is MailPartner speaking, whatever the status.
KNOWN_CODES = frozenset({1, 3, 4, 5, 6, 7, 10, 200})


class MailPartnerError(Exception):
    """Base of every failure to get a control code from MailPartner."""


class MailPartnerTimeout(MailPartnerError):
    pass


class MailPartnerConnectionError(MailPartnerError):
    pass


class MailPartnerHTTPError(MailPartnerError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class MailPartnerUnavailable(MailPartnerHTTPError):
    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class MailPartnerMalformedAnswer(MailPartnerError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class InvalidMessageId(ValueError):
    """The id is not 1–64 letters, digits, `-` or `_`; it never reaches MailPartner."""


class FailureKind(Enum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HTTP_ERROR = "http_error"
    MALFORMED = "malformed"


_FAILURE_OF: dict[type[MailPartnerError], FailureKind] = {
    MailPartnerTimeout: FailureKind.TIMEOUT,
    MailPartnerConnectionError: FailureKind.CONNECTION,
    MailPartnerHTTPError: FailureKind.HTTP_ERROR,
    MailPartnerUnavailable: FailureKind.HTTP_ERROR,
    MailPartnerMalformedAnswer: FailureKind.MALFORMED,
}


@dataclass(frozen=True)
class CancelOutcome:
    """What happened to one cancel request.

    Exactly one of `code` (MailPartner answered) and `failure` (it did not) is set.
    """

    message_id: str
    code: int | None = None
    message: str = ""
    failure: FailureKind | None = None
    http_status: int | None = None
    detail: str = ""
    attempts: int = 1
    latency: float = 0.0
    confirmed_on_retry: bool = False

    @property
    def cancelled(self) -> bool:
        """True when the mail will not go out: cancelled now, on a retry, or earlier."""
        return self.code in (200, 5)

    @property
    def label(self) -> str:
        """Short machine label for logs and JSON: `code 200`, `timeout`, ..."""
        return f"code {self.code}" if self.code is not None else self.failure.value  # type: ignore[union-attr]


class MailPartnerClient:
    """Holds one pooled `httpx.Client` for the process; thread-safe, share it."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.mailpartner.fr/v1",
        timeout: float = 10.0,
        deadline: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_attempt: Callable[[float], None] | None = None,
    ) -> None:
        self._on_attempt = on_attempt  # told each HTTP attempt's duration in seconds (metrics)
        self._timeout = timeout
        self._deadline = deadline
        self._sleep = sleep
        self._base_url = base_url.rstrip("/") + "/"
        # The whole URL but the id is built once: httpx's pure-Python URL parsing, for a base URL merged
        # with params, cost more CPU than the request itself. Ids match MESSAGE_ID: nothing to quote.
        self._cancel_url = f"{self._base_url}message-cancel?apiKey={quote(api_key, safe='')}&messageId="
        # httpx.Client may be shared between threads; the transport keeps a connection per calling thread
        # (transport.py), so the worker pool bounds the connections.
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "cancel-mail-bot"},
            transport=transport or KeptAliveTransport(),
        )

    def __repr__(self) -> str:  # the key must not leak through a debug print
        return f"MailPartnerClient(base_url={self._base_url!r})"

    def close(self) -> None:
        self._http.close()

    def cancel(self, message_id: str) -> CancelOutcome:
        if not MESSAGE_ID.match(message_id):
            raise InvalidMessageId(message_id)
        started = time.monotonic()
        errors: list[MailPartnerError] = []
        retrying = Retrying(
            retry=retry_if_exception_type((MailPartnerTimeout, MailPartnerConnectionError, MailPartnerUnavailable)),
            stop=stop_before_delay(self._deadline),
            wait=_wait_for_retry,
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: _log_retry(message_id, state),
        )
        try:
            for attempt in retrying:
                with attempt:
                    remaining = self._deadline - (time.monotonic() - started)
                    try:
                        code, message, status = self._attempt(message_id, max(0.05, min(self._timeout, remaining)))
                    except MailPartnerError as error:
                        errors.append(error)
                        raise
        except MailPartnerError as error:
            return self._failure(message_id, error, errors, started)
        attempts = len(errors) + 1
        outcome = CancelOutcome(
            message_id=message_id,
            code=code,
            message=message,
            http_status=status,
            attempts=attempts,
            latency=time.monotonic() - started,
            # A repeated cancel answers 5: after a failed attempt that means our first one went through.
            confirmed_on_retry=code == 5 and attempts > 1,
        )
        log.info("MailPartner cancel id=%s: %s after %d attempt(s)", message_id, outcome.label, attempts)
        return outcome

    def _failure(
        self, message_id: str, error: MailPartnerError, errors: list[MailPartnerError], started: float
    ) -> CancelOutcome:
        kind = _FAILURE_OF[type(error)]
        # One unanswered attempt is enough to make the result unknown, whatever the last one said.
        if any(isinstance(e, MailPartnerTimeout) for e in errors):
            kind = FailureKind.TIMEOUT
        outcome = CancelOutcome(
            message_id=message_id,
            failure=kind,
            http_status=getattr(error, "status", None),
            detail=str(error),
            attempts=len(errors),
            latency=time.monotonic() - started,
        )
        log.warning(
            "MailPartner cancel id=%s failed: %s (%s) after %d attempt(s)",
            message_id,
            kind.value,
            outcome.detail,
            outcome.attempts,
        )
        return outcome

    def _attempt(self, message_id: str, timeout: float) -> tuple[int, str, int]:
        started = time.monotonic()
        try:
            response = self._http.get(f"{self._cancel_url}{message_id}&_format=json", timeout=timeout)
        except httpx.TimeoutException as error:
            raise MailPartnerTimeout(f"no answer within {timeout:g} s") from error
        except httpx.TransportError as error:
            raise MailPartnerConnectionError(type(error).__name__ + _reason(error)) from error
        finally:
            if self._on_attempt is not None:
                self._on_attempt(time.monotonic() - started)
        return parse_answer(response)


def parse_answer(response: httpx.Response) -> tuple[int, str, int]:
    """Read the control code from a response, whatever its HTTP status; raise when there is none."""
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    code = _code_of(body)
    if code is not None and (code in KNOWN_CODES or status not in RETRYABLE_STATUSES):
        return code, _message_of(body), status
    if status in RETRYABLE_STATUSES:
        raise MailPartnerUnavailable(status, response.reason_phrase, _retry_after(response))
    if status >= 400:
        raise MailPartnerHTTPError(status, response.reason_phrase or "error")
    what = "a JSON answer without a control code" if body is not None else "an answer that is not JSON"
    raise MailPartnerMalformedAnswer(status, what)


def _code_of(body: object) -> int | None:
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    if code is None and body.get("success") is True:
        return 200
    return None


def _message_of(body: dict[str, object]) -> str:
    message = body.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()[:500]
    errors = body.get("errors", body.get("error"))
    if isinstance(errors, list):
        texts = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
        return "; ".join(texts)[:500]
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _reason(error: Exception) -> str:
    text = str(error)
    return f": {text}" if text else ""


_backoff = wait_random_exponential(multiplier=0.5, max=8)


def _wait_for_retry(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    retry_after = getattr(error, "retry_after", None)
    return retry_after if retry_after is not None else _backoff(state)


def _log_retry(message_id: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0
    log.info(
        "MailPartner cancel id=%s attempt %d failed (%s); retrying in %.1fs",
        message_id,
        state.attempt_number,
        error,
        wait,
    )
