"""MailPartner: the `message-cancel` client (one call in, one `CancelOutcome` out) and its sandbox."""

from bot.mailpartner.client import (
    KNOWN_CODES,
    MESSAGE_ID,
    CancelOutcome,
    FailureKind,
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
    "KNOWN_CODES",
    "MESSAGE_ID",
    "CancelOutcome",
    "FailureKind",
    "InvalidMessageId",
    "MailPartnerClient",
    "MailPartnerConnectionError",
    "MailPartnerError",
    "MailPartnerHTTPError",
    "MailPartnerMalformedAnswer",
    "MailPartnerTimeout",
    "MailPartnerUnavailable",
    "parse_answer",
]
