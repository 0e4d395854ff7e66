"""MailPartner sandbox: a simulator of `GET /v1/message-cancel`, `/v1/bulk-status` and `/v1/me`.

It applies the real rules (codes 1, 3, 4, 5, 6, 7, 10, 200; a mail whose time has passed was sent; no
cancel under 5 minutes before sending) to a handful of mails. Their send times are relative to each
question, not to start-up: `303` is due in 3 minutes whenever it is asked about, so a walk-through reads
the same an hour after the console opened. The bot reaches it through the ordinary `MailPartnerClient`
over an httpx transport, so every line of code above HTTP is the production one.

Its delivery reports take one side of what MailPartner leaves undocumented: a scheduled mail has rows
whose status is not final ("Scheduled"), a sent one "Delivered" rows, and `302` has no report at all
(code 4), as a mail not yet sent may well have at the real service. Recipients are at example domains.

It holds two accounts, as an agency's sub-accounts: `default` (key `sandbox`) and `brand-b` (key
`sandbox-brand-b`), each with mails of its own. Both have a `301`: the id alone cannot say whose it is.

Given a state file, it remembers what was cancelled across processes (each `python -m bot cancel` is
one), as MailPartner would: a second cancel of a mail answers code 5 however many runs apart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

import httpx

log = logging.getLogger(__name__)

LOCK_WINDOW = 5 * 60.0  # MailPartner refuses a cancel this close to the send time
SANDBOX_KEY = "sandbox"

_MESSAGES = {
    1: "La Clé API est requise",
    3: "L’ID du message est requis",
    4: "Message introuvable",
    5: "L’envoi du mail a déjà été annulé",
    6: "Vous ne pouvez pas annuler l’envoi d’un mail moins de 5 minutes avant son envoi",
    7: "Vous ne pouvez pas annuler un mail déjà envoyé",
    10: "Clé API incorrecte",
    200: "L'envoi du mail a été annulé.",
}


class MailState(Enum):
    SCHEDULED = "scheduled"
    LOCKED = "due in under 5 minutes"
    SENT = "sent"
    CANCELLED = "cancelled"


@dataclass
class SandboxMail:
    message_id: str
    subject: str
    send_in: float  # seconds from the moment of any question; negative: sent that long ago
    cancelled: bool = False
    recipients: int = 1
    reported: bool = True  # False: bulk-status has no report for it (code 4), though it exists


# (id, subject, seconds from any question to the send time, already cancelled, recipients)
SandboxMailSpec = tuple[str, str, float, bool, int]
DEFAULT_MAILS: tuple[SandboxMailSpec, ...] = (
    ("300", "Spring sale: 20% off everything", 2 * 3600, False, 1240),
    ("301", "Weekly newsletter #48", 26 * 3600, False, 860),
    ("302", "Password policy reminder", 3 * 3600, False, 42),
    ("303", "Flash sale ends tonight", 3 * 60, False, 1240),
    ("304", "Welcome series, part 1", -3600, False, 3),
    ("305", "Webinar invitation", 6 * 3600, True, 310),
)
BRAND_B_MAILS: tuple[SandboxMailSpec, ...] = (
    ("301", "Brand B: autumn lookbook", 5 * 3600, False, 2300),
    ("310", "Brand B: loyalty points expire", 8 * 3600, False, 415),
)
# The sandbox's accounts: name → (key, mails). `default` is MAILPARTNER_API_KEY's account.
SANDBOX_ACCOUNTS: dict[str, tuple[str, tuple[SandboxMailSpec, ...]]] = {
    "default": (SANDBOX_KEY, DEFAULT_MAILS),
    "brand-b": ("sandbox-brand-b", BRAND_B_MAILS),
}
UNREPORTED = frozenset({"302"})  # bulk-status answers code 4 for these: "no report yet"
ACCOUNT = {"username": "sandbox", "creditMail": 5000, "currency": "EUR", "balance": "125.50"}
OTHER_ACCOUNT = {"username": "sandbox-brand-b", "creditMail": 1200, "currency": "EUR", "balance": "30.00"}
_NAMES = ("anna", "bruno", "chloe", "david", "emma", "farid", "gina", "hugo")  # recipients' made-up names
_STATUS = {
    "scheduled": "Scheduled",
    "due in under 5 minutes": "Scheduled",
    "sent": "Delivered",
    "cancelled": "Cancelled",
}


class MailPartnerSandbox:
    def __init__(
        self,
        mails: tuple[SandboxMailSpec, ...] = DEFAULT_MAILS,
        *,
        api_key: str | None = None,
        others: dict[str, tuple[SandboxMailSpec, ...]] | None = None,
        state_file: Path | None = None,
    ) -> None:
        """`api_key=None` accepts any non-empty key; a string accepts only that key (for code 10).
        `others`: more accounts, each a key and its own mails (the sandbox's `brand-b`). `state_file`: where
        the mails cancelled are kept, shared by every process given the same file; None keeps them in memory."""
        self._api_key = api_key
        self._lock = threading.Lock()
        self._books = {key: self._book(specs) for key, specs in (others or {}).items()}
        self._mails = self._book(mails)
        self._state_file = state_file
        self._state_stamp: int | None = None
        self.requests = 0

    @classmethod
    def with_accounts(cls, state_file: Path | None = None) -> MailPartnerSandbox:
        """Both of the sandbox's accounts (SANDBOX_ACCOUNTS), each answering to its own key only."""
        (key, mails), *others = SANDBOX_ACCOUNTS.values()
        return cls(mails, api_key=key, others=dict(others), state_file=state_file)

    @staticmethod
    def _book(specs: tuple[SandboxMailSpec, ...]) -> dict[str, SandboxMail]:
        return {
            m: SandboxMail(m, subject, send_in, done, recipients, m not in UNREPORTED)
            for m, subject, send_in, done, recipients in specs
        }

    def _mails_of(self, api_key: str) -> dict[str, SandboxMail]:
        self._take_in_state()
        return self._books.get(api_key, self._mails)

    def _book_name(self, api_key: str) -> str:
        """The name a book of mails has in the state file: its key, or `*` for the first account's."""
        return api_key if api_key in self._books else "*"

    def _take_in_state(self) -> None:
        """Mark cancelled what the state file says was, when it changed since the last look (lock held)."""
        if self._state_file is None:
            return
        try:
            stamp = self._state_file.stat().st_mtime_ns
        except OSError:
            return
        if stamp == self._state_stamp:
            return
        try:
            with self._state_file.open(encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                cancelled = _cancelled_in(handle)
        except OSError as error:
            log.warning("sandbox state %s unreadable (%s); going on from memory", self._state_file, error)
            return
        self._state_stamp = stamp
        for name, ids in cancelled.items():
            book = self._mails if name == "*" else self._books.get(name, {})
            for message_id in ids:
                if message_id in book:
                    book[message_id].cancelled = True

    def _keep_cancelled(self, api_key: str, message_id: str) -> None:
        """Add one cancelled mail to the state file, whatever other processes added meanwhile (lock held)."""
        if self._state_file is None:
            return
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            with self._state_file.open("a+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.seek(0)
                cancelled = _cancelled_in(handle)
                ids = cancelled.setdefault(self._book_name(api_key), [])
                if message_id not in ids:
                    ids.append(message_id)
                handle.seek(0)
                handle.truncate()
                json.dump({"cancelled": cancelled}, handle, indent=1, sort_keys=True)
                handle.flush()
            self._state_stamp = self._state_file.stat().st_mtime_ns
        except OSError as error:
            log.warning("sandbox state %s not written (%s): the next run will not know of it", self._state_file, error)

    def add_mails(self, message_ids: list[str], *, subject: str = "bulk", send_in: float = 7200.0) -> None:
        """Schedule more mails, each due `send_in` seconds after any question (the benchmark's supply)."""
        with self._lock:
            for message_id in message_ids:
                self._mails[message_id] = SandboxMail(message_id, subject, send_in)

    @staticmethod
    def state(mail: SandboxMail) -> MailState:
        if mail.cancelled:
            return MailState.CANCELLED
        if mail.send_in <= 0:
            return MailState.SENT
        return MailState.LOCKED if mail.send_in < LOCK_WINDOW else MailState.SCHEDULED

    def mails(self, api_key: str = "") -> list[tuple[SandboxMail, MailState]]:
        """The mails of the account with `api_key` (the first account's by default), and their state."""
        with self._lock:
            return [(mail, self.state(mail)) for mail in self._mails_of(api_key).values()]

    def cancel(self, api_key: str, message_id: str) -> int:
        """Apply MailPartner's rules; return the control code."""
        with self._lock:
            self.requests += 1
            if refused := self._refusal(api_key, message_id):
                return refused
            mail = self._mails_of(api_key).get(message_id)
            if mail is None:
                return 4
            code = {
                MailState.CANCELLED: 5,
                MailState.SENT: 7,
                MailState.LOCKED: 6,
                MailState.SCHEDULED: 200,
            }[self.state(mail)]
            if code == 200:
                mail.cancelled = True
                self._keep_cancelled(api_key, message_id)
            return code

    def delivery_report(self, api_key: str, message_id: str) -> dict[str, object]:
        """`bulk-status`: one row per recipient, or code 1, 3, 4 or 10."""
        with self._lock:
            self.requests += 1
            refused = self._refusal(api_key, message_id)
            mail = self._mails_of(api_key).get(message_id)
            if refused or mail is None or not mail.reported:
                code = refused or 4
                return {"success": False, "code": code, "message": _MESSAGES[code]}
            state = self.state(mail)
        status = _STATUS[state.value]
        rows = [
            {"email": f"{_NAMES[i % len(_NAMES)]}{i}@example.fr", "token": f"{message_id}-{i}", "status": status,
             "cost": 1, "stopMail": state is MailState.CANCELLED, "date": ""}
            for i in range(mail.recipients)
        ]  # fmt: skip
        return {"success": True, "code": 200, "messageId": message_id, "StatutResponseList": rows}

    def account(self, api_key: str) -> dict[str, object]:
        """`me`: the account's user and credits, or code 10."""
        refused = self._refusal(api_key)
        if refused:
            return {"success": False, "code": refused, "message": _MESSAGES[refused]}
        account = OTHER_ACCOUNT if api_key in self._books else ACCOUNT
        credits = {k: account[k] for k in ("creditMail", "currency", "balance")}
        return {"success": True, "code": 200, "user": {"username": account["username"]}, "credits": credits}

    def _refusal(self, api_key: str, message_id: str | None = None) -> int:
        """The code refusing this key (and id, for the calls that take one), or 0."""
        if not api_key:
            return 1
        if self._api_key is not None and api_key != self._api_key and api_key not in self._books:
            return 10
        return 3 if message_id == "" else 0

    def answer(self, params: dict[str, str], endpoint: str = "message-cancel") -> tuple[int, dict[str, object]]:
        """The HTTP status and JSON body MailPartner gives for these query parameters at `endpoint`."""
        key, message_id = params.get("apiKey", ""), params.get("messageId", "")
        if endpoint == "bulk-status":
            return 200, self.delivery_report(key, message_id)
        if endpoint == "me":
            return 200, self.account(key)
        if endpoint != "message-cancel":
            return 404, {"success": False, "code": 404, "message": "Not found"}
        code = self.cancel(key, message_id)
        return 200, {"success": code == 200, "code": code, "message": _MESSAGES[code]}

    def handle(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1] if request.method == "GET" else ""
        status, body = self.answer(dict(request.url.params), endpoint)
        return httpx.Response(status, json=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def _cancelled_in(handle: IO[str]) -> dict[str, list[str]]:
    """The state file's mails cancelled, by book; an empty or damaged file holds none."""
    try:
        cancelled = json.loads(handle.read() or "{}").get("cancelled", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(cancelled, dict):
        return {}
    return {str(k): [str(i) for i in v] for k, v in cancelled.items() if isinstance(v, list)}
