"""MailPartner adapter: one call in, one typed answer out, each a coroutine on the event loop.

    await cancel(id)           GET message-cancel   → CancelOutcome    retried within MAILPARTNER_DEADLINE
    await delivery_report(id)  GET bulk-status      → DeliveryReport   one attempt, a short timeout (preview)
    await account()            GET me               → AccountReport    one attempt (`check`)

None of them raises for anything MailPartner or the network does: every answer, known code or not, and
every failure becomes the typed answer, so callers render instead of catching. What each answer means is
answers.py's. Internally each attempt raises from the `MailPartnerError` hierarchy (tenacity decides on
the cancel's retries):

    MailPartnerError
    ├── MailPartnerTimeout          no answer in time; the cancel may or may not have happened
    ├── MailPartnerConnectionError  MailPartner could not be reached
    ├── MailPartnerHTTPError        an HTTP error status with no control code in the body
    │   └── MailPartnerUnavailable  429 / 502 / 503 / 504: worth another try, honouring Retry-After
    └── MailPartnerMalformedAnswer  a body that is neither JSON nor carries a control code
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay

from bot.http import AnswerTooLarge, AsyncHttp, CertificateRefused, NameNotResolved, RetryPolicy, retry_after
from bot.mailpartner.answers import KNOWN_CODES, FailureKind, Fate, Meaning, Report, meaning, report_of

log = logging.getLogger(__name__)

# A leading `-` is never an id: it is an option or a reason typed without ` -- ` (`--wrong`).
MESSAGE_ID_SYNTAX = r"[A-Za-z0-9_][A-Za-z0-9_-]*"  # the id's characters; 64 at most, said where it is matched
MESSAGE_ID = re.compile(rf"^(?=.{{1,64}}$){MESSAGE_ID_SYNTAX}$")
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
BASE_URL = "https://api.mailpartner.fr/v1"
TIMEOUT = 10.0  # seconds for one HTTP attempt (MAILPARTNER_TIMEOUT)
DEADLINE = 30.0  # seconds for all attempts of one cancel (MAILPARTNER_DEADLINE)
HEADERS = {"Accept": "application/json"}
CALLS = ("message-cancel", "bulk-status", "me")  # the endpoints the client asks
# The most of an answer read: a delivery report lists each recipient (about 100 bytes each), so this holds
# one of well over 100,000; anything larger is refused as unreadable, never held whole in memory.
MAX_ANSWER_BYTES = 16 << 20
CONNECTIONS = 512  # a client's calls in flight at most, when it has no shared one (CANCEL_MAIL_WORKERS's default)


class MailPartnerError(Exception):
    """Base of every failure to get a control code from MailPartner."""


class MailPartnerTimeout(MailPartnerError):
    pass


class MailPartnerConnectionError(MailPartnerError):
    pass


class MailPartnerNameUnresolved(MailPartnerConnectionError):
    """Its name does not resolve: not tried again (a DNS answer does not change in seconds)."""


class MailPartnerCertificateRefused(MailPartnerConnectionError):
    """Its certificate is not trusted here: not tried again."""


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


_FAILURE_OF: dict[type[MailPartnerError], FailureKind] = {
    MailPartnerTimeout: FailureKind.TIMEOUT,
    MailPartnerConnectionError: FailureKind.CONNECTION,
    MailPartnerNameUnresolved: FailureKind.NAME_UNRESOLVED,
    MailPartnerCertificateRefused: FailureKind.CERTIFICATE,
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
    def meaning(self) -> Meaning:
        """What this answer means (answers.py): the mail's fate, its summary column, its result name."""
        return meaning(self.code, self.failure)

    @property
    def cancelled(self) -> bool:
        """True when the mail will not go out: cancelled now, on a retry, or earlier."""
        return self.meaning.fate is Fate.CANCELLED

    @property
    def label(self) -> str:
        """Short machine label for logs and JSON: `code 200`, `timeout`, ..."""
        return f"code {self.code}" if self.code is not None else self.failure.value  # type: ignore[union-attr]


DELIVERED = "delivered"  # the one final status the docs show ("Delivered"); any other is not final yet
# A recipient's status once the mail was cancelled: not in MailPartner's docs, which show no such row; the
# sandbox writes "Cancelled", and the other spellings cost nothing. Never a reason to withhold a cancel alone:
# only a report whose every row says so.
CANCELLED = frozenset({"cancelled", "canceled", "annulé", "annule"})
SAMPLE = 3  # recipients a delivery report keeps beside its counts: as many as a private prompt may show


@dataclass(frozen=True)
class Recipient:
    """One row of a delivery report. `email` is personal data: never in public messages or logs."""

    email: str
    status: str
    date: float | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """What `bulk-status` said of one mail: how many recipients and how far delivery went, or why not.
    `recipients` holds the first few rows only: a campaign has thousands, the preview shows three."""

    message_id: str
    report: Report
    recipients: tuple[Recipient, ...] = ()
    code: int | None = None
    message: str = ""
    failure: FailureKind | None = None
    total: int = 0
    delivered: int = 0
    cancelled: int = 0  # rows whose status says the mail was cancelled

    @property
    def gone_out(self) -> bool:
        """Delivered to every recipient: a cancel would answer code 7."""
        return self.report is Report.FOUND and self.total > 0 and self.delivered == self.total

    @property
    def already_cancelled(self) -> bool:
        """Cancelled for every recipient: a cancel would answer code 5."""
        return self.report is Report.FOUND and self.total > 0 and self.cancelled == self.total


@dataclass(frozen=True)
class AccountReport:
    """What `me` said of the account a key belongs to."""

    report: Report
    username: str = ""
    mail_credits: int | None = None
    currency: str = ""
    balance: str = ""
    code: int | None = None
    message: str = ""
    failure: FailureKind | None = None


class MailPartnerClient:
    """One account's calls, on the event loop. `http`: MailPartner's one client, shared by every account's
    (its key travels in the query); without it, a client of its own (`transport`: a test's or the sandbox's).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = BASE_URL,
        timeout: float = TIMEOUT,
        deadline: float = DEADLINE,
        http: AsyncHttp | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: Callable[[str, float], None] | None = None,
    ) -> None:
        self._on_attempt = on_attempt  # told each HTTP attempt's call (CALLS) and duration in seconds (metrics)
        self._timeout = timeout
        self._deadline = deadline
        self._sleep = sleep
        self._base_url = base_url.rstrip("/") + "/"
        self._api_key = api_key  # sent only as a query parameter, through httpx's params; never logged
        self._own_http = http is None
        self._http = http or AsyncHttp(timeout=timeout, connections=CONNECTIONS, transport=transport)
        self._urls = {call: httpx.URL(self._base_url + call) for call in CALLS}  # parsed once

    def __repr__(self) -> str:  # the key must not leak through a debug print
        return f"MailPartnerClient(base_url={self._base_url!r})"

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def cancel(self, message_id: str) -> CancelOutcome:
        if not MESSAGE_ID.match(message_id):
            raise InvalidMessageId(message_id)
        started = time.monotonic()
        errors: list[MailPartnerError] = []
        retrying = AsyncRetrying(
            retry=retry_if_exception(_worth_another_attempt),
            stop=stop_before_delay(self._deadline),
            wait=_wait_for_retry,
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: _log_retry(message_id, state),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    remaining = self._deadline - (time.monotonic() - started)
                    try:
                        code, message, status = await self._attempt(
                            message_id, max(0.05, min(self._timeout, remaining))
                        )
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
        # DEBUG: the audit line of the outcome says the same (code, attempts, latency); retries and failures
        # are logged at INFO and WARNING.
        log.debug("MailPartner cancel id=%s: %s after %d attempt(s)", message_id, outcome.label, attempts)
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

    async def delivery_report(self, message_id: str, *, timeout: float = 2.0) -> DeliveryReport:
        """The mail's delivery report, in one attempt: the preview waits `timeout` seconds at most."""
        if not MESSAGE_ID.match(message_id):
            raise InvalidMessageId(message_id)
        try:
            body, code, message = await self._ask("bulk-status", {"messageId": message_id}, timeout)
        except MailPartnerError as error:
            log.info("MailPartner bulk-status id=%s: %s", message_id, error)
            return DeliveryReport(message_id, Report.UNANSWERED, failure=_FAILURE_OF[type(error)])
        report = report_of(code)
        found = body.get("StatutResponseList") if report is Report.FOUND else None
        rows = [row for row in found if isinstance(row, dict)] if isinstance(found, list) else []
        statuses = [str(row.get("status") or "").strip().lower() for row in rows]
        delivered, cancelled = statuses.count(DELIVERED), sum(1 for status in statuses if status in CANCELLED)
        # The count only: addresses never reach a log line.
        log.debug("MailPartner bulk-status id=%s: code %s, %d recipient(s)", message_id, code, len(rows))
        sample = tuple(_recipient(row) for row in rows[:SAMPLE])
        return DeliveryReport(
            message_id, report, sample, code, message, total=len(rows), delivered=delivered, cancelled=cancelled
        )

    async def account(self, *, timeout: float | None = None) -> AccountReport:
        """Who the key belongs to, and the credits left: a check of the key that touches no mail."""
        try:
            body, code, message = await self._ask("me", {}, timeout or self._timeout)
        except MailPartnerError as error:
            return AccountReport(Report.UNANSWERED, failure=_FAILURE_OF[type(error)], message=str(error))
        user = _mapping(body.get("user"))
        credits = _mapping(body.get("credits"))
        mail_credits = credits.get("creditMail")
        return AccountReport(
            report_of(code),
            username=str(user.get("username") or "")[:100],
            mail_credits=mail_credits if isinstance(mail_credits, int) and not isinstance(mail_credits, bool) else None,
            currency=str(credits.get("currency") or "")[:8],
            balance=str(credits.get("balance") or "")[:32],
            code=code,
            message=message,
        )

    async def _ask(self, call: str, params: dict[str, str], timeout: float) -> tuple[dict[str, object], int, str]:
        """One GET of `call`: the JSON body, its control code and message; raise MailPartnerError."""
        body, code, message, _status = read_answer(await self._get(call, params, timeout))
        return _mapping(body), code, message

    async def _attempt(self, message_id: str, timeout: float) -> tuple[int, str, int]:
        answer = await self._get("message-cancel", {"messageId": message_id, "_format": "json"}, timeout)
        return parse_answer(answer)

    async def _get(self, call: str, params: dict[str, str], timeout: float) -> httpx.Response:
        started = time.monotonic()
        try:
            return await self._http.request(
                "GET",
                self._urls[call],
                params={"apiKey": self._api_key, **params},
                headers=HEADERS,
                timeout=timeout,
                max_body=MAX_ANSWER_BYTES,
            )
        except AnswerTooLarge as error:  # read no further: an answer that size is nobody's report
            raise MailPartnerMalformedAnswer(200, str(error)) from error
        except httpx.PoolTimeout as error:  # every connection busy: the request never left
            raise MailPartnerConnectionError(f"no free connection within {round(timeout, 1):g} s") from error
        except NameNotResolved as error:
            host = httpx.URL(self._urls[call]).host
            raise MailPartnerNameUnresolved(f"{host} does not resolve{_reason(error)}") from error
        except CertificateRefused as error:
            route = self._http.proxies.blame(self._urls[call])
            raise MailPartnerCertificateRefused(f"certificate refused{_reason(error)}{route}") from error
        except httpx.TimeoutException as error:
            route = self._http.proxies.blame(self._urls[call])
            raise MailPartnerTimeout(f"no answer within {round(timeout, 1):g} s{route}") from error
        except httpx.TransportError as error:
            route = self._http.proxies.blame(self._urls[call])
            raise MailPartnerConnectionError(type(error).__name__ + _reason(error) + route) from error
        finally:
            if self._on_attempt is not None:
                self._on_attempt(call, time.monotonic() - started)


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _recipient(row: dict[str, object]) -> Recipient:
    raw_date = row.get("date")
    try:
        date = float(raw_date) if isinstance(raw_date, (int, float, str)) and raw_date != "" else None
    except ValueError:
        date = None
    return Recipient(email=str(row.get("email") or "")[:254], status=str(row.get("status") or "")[:40], date=date)


def parse_answer(response: httpx.Response) -> tuple[int, str, int]:
    """Read the control code from a response, whatever its HTTP status; raise when there is none."""
    _body, code, message, status = read_answer(response)
    return code, message, status


def read_answer(response: httpx.Response) -> tuple[object, int, str, int]:
    """`parse_answer` with the JSON body it read, which is parsed once (a delivery report can be large)."""
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    code = _code_of(body)
    if code is not None and (code in KNOWN_CODES or status not in RETRYABLE_STATUSES):
        return body, code, _message_of(body), status
    if status in RETRYABLE_STATUSES:
        raise MailPartnerUnavailable(status, response.reason_phrase, retry_after(response.headers))
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


def _reason(error: Exception) -> str:
    text = str(error)
    return f": {text}" if text else ""


# Retry-After when MailPartner sent one, else 0.5 s doubling up to 8 s, jittered.
_wait_for_retry = RetryPolicy(first=0.5, cap=8)


def _worth_another_attempt(error: BaseException) -> bool:
    """No answer, no connection, or MailPartner busy: another attempt may get through. A name that does not
    resolve or a certificate refused will not be mended in seconds: the person is told at once."""
    unmendable = (MailPartnerNameUnresolved, MailPartnerCertificateRefused)
    retryable = (MailPartnerTimeout, MailPartnerConnectionError, MailPartnerUnavailable)
    return isinstance(error, retryable) and not isinstance(error, unmendable)


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
