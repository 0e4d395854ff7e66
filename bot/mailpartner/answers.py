"""What each MailPartner answer means, once, for every part of the bot that acts on it.

A `message-cancel` answer is a control code, or a failure to get one (`FailureKind`). Its `Meaning` says
what became of the mail (`Fate`), which column of a bulk summary counts it (`Tally`) and its `result`, the
name metrics, the audit trail and scripts use. The words people read are bot/words/'s (en.py, fr.py),
keyed the same way; the CLI's exit status, the workflow step's `result`, the metrics'
labels and `check` all read `meaning()`.

`bulk-status` answers (the delivery report of a mail) and `me` answers (the account) have tables of their
own below: `REPORT_CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FailureKind(Enum):
    """No control code came back."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    NAME_UNRESOLVED = "name_unresolved"  # MailPartner's name does not resolve: not worth trying again soon
    CERTIFICATE = "certificate_refused"  # its certificate is not trusted here: nor this
    HTTP_ERROR = "http_error"
    MALFORMED = "malformed"


class Fate(Enum):
    """What became of the mail, as far as the bot can know."""

    CANCELLED = "cancelled"  # it will not go out: cancelled now, on a retry, or earlier
    NOT_CANCELLED = "not_cancelled"  # it will go out (or never existed): MailPartner said so, or was never reached
    UNKNOWN = "unknown"  # MailPartner may have cancelled it: check before acting


class Tally(Enum):
    """The columns of a bulk summary."""

    CANCELLED = "cancelled"
    TOO_LATE = "too_late"
    ALREADY_SENT = "already_sent"
    NOT_FOUND = "not_found"
    FAILED = "failed"


@dataclass(frozen=True)
class Meaning:
    result: str  # metric label, JSON field, audit: `cancelled`, `too_late`, `timeout`, …
    fate: Fate
    tally: Tally


UNKNOWN_CODE = "unknown_code"  # the key of every control code outside the table

# Keys: a control code, a FailureKind, or UNKNOWN_CODE.
ANSWERS: dict[int | FailureKind | str, Meaning] = {
    200: Meaning("cancelled", Fate.CANCELLED, Tally.CANCELLED),
    5: Meaning("already_cancelled", Fate.CANCELLED, Tally.CANCELLED),
    4: Meaning("not_found", Fate.NOT_CANCELLED, Tally.NOT_FOUND),
    6: Meaning("too_late", Fate.NOT_CANCELLED, Tally.TOO_LATE),
    7: Meaning("already_sent", Fate.NOT_CANCELLED, Tally.ALREADY_SENT),
    10: Meaning("key_refused", Fate.NOT_CANCELLED, Tally.FAILED),
    1: Meaning("key_refused", Fate.NOT_CANCELLED, Tally.FAILED),
    3: Meaning("id_missing", Fate.NOT_CANCELLED, Tally.FAILED),
    UNKNOWN_CODE: Meaning("unexpected_code", Fate.NOT_CANCELLED, Tally.FAILED),
    # MailPartner may have acted before these: nobody can say the mail will be sent.
    FailureKind.TIMEOUT: Meaning("timeout", Fate.UNKNOWN, Tally.FAILED),
    FailureKind.HTTP_ERROR: Meaning("http_error", Fate.UNKNOWN, Tally.FAILED),
    FailureKind.MALFORMED: Meaning("malformed", Fate.UNKNOWN, Tally.FAILED),
    # Never reached: nothing was asked, so nothing was cancelled.
    FailureKind.CONNECTION: Meaning("connection", Fate.NOT_CANCELLED, Tally.FAILED),
    FailureKind.NAME_UNRESOLVED: Meaning("name_unresolved", Fate.NOT_CANCELLED, Tally.FAILED),
    FailureKind.CERTIFICATE: Meaning("certificate_refused", Fate.NOT_CANCELLED, Tally.FAILED),
}
# The control codes of `message-cancel` (the seed): an answer carrying one is MailPartner speaking.
KNOWN_CODES = frozenset(key for key in ANSWERS if isinstance(key, int))
RESULTS = tuple(dict.fromkeys(meaning.result for meaning in ANSWERS.values()))


def answer_key(code: int | None, failure: FailureKind | None) -> int | FailureKind | str:
    """The row of ANSWERS (and of the catalogue) for an answer."""
    if failure is not None:
        return failure
    return code if code in ANSWERS else UNKNOWN_CODE


def meaning(code: int | None, failure: FailureKind | None) -> Meaning:
    return ANSWERS[answer_key(code, failure)]


# -- delivery reports and accounts -----------------------------------------------------------------


class Report(Enum):
    """What `bulk-status` (a mail's delivery report) or `me` (the account) said."""

    FOUND = "found"  # 200: the report, or the account, is there
    NO_REPORT = "no_report"  # 4: no report for this id, which is normal for a mail not yet sent
    KEY_REFUSED = "key_refused"  # 1, 10
    ID_MISSING = "id_missing"  # 3: a bug of the bot's
    UNEXPECTED = "unexpected"  # any other code
    UNANSWERED = "unanswered"  # no code: timeout, connection, HTTP error, nonsense


REPORT_CODES: dict[int, Report] = {
    200: Report.FOUND,
    4: Report.NO_REPORT,
    1: Report.KEY_REFUSED,
    10: Report.KEY_REFUSED,
    3: Report.ID_MISSING,
}


def report_of(code: int | None) -> Report:
    if code is None:
        return Report.UNANSWERED
    return REPORT_CODES.get(code, Report.UNEXPECTED)
