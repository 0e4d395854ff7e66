"""MailPartner: the client (one call in, one typed answer out), the accounts it acts in, what each answer
means, and the sandbox."""

from bot.mailpartner.accounts import Accounts, Preview
from bot.mailpartner.answers import ANSWERS, KNOWN_CODES, FailureKind, Fate, Meaning, Tally, meaning
from bot.mailpartner.client import (
    MESSAGE_ID,
    CancelOutcome,
    InvalidMessageId,
    MailPartnerClient,
    MailPartnerConnectionError,
    MailPartnerError,
    MailPartnerHTTPError,
    MailPartnerMalformedAnswer,
    MailPartnerTimeout,
    MailPartnerUnavailable,
    parse_answer,
)

__all__ = [
    "ANSWERS",
    "KNOWN_CODES",
    "MESSAGE_ID",
    "Accounts",
    "CancelOutcome",
    "FailureKind",
    "Fate",
    "InvalidMessageId",
    "MailPartnerClient",
    "MailPartnerConnectionError",
    "MailPartnerError",
    "MailPartnerHTTPError",
    "MailPartnerMalformedAnswer",
    "MailPartnerTimeout",
    "MailPartnerUnavailable",
    "Meaning",
    "Preview",
    "Tally",
    "meaning",
    "parse_answer",
]
