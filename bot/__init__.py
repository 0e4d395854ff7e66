"""cancel-mail-bot: cancel scheduled MailPartner mails from Slack, after an explicit confirmation.

The public surface, for scripts and tests; everything else is internal.
"""

from bot.app import Bot, build_bot
from bot.mailpartner.accounts import Accounts, Preview
from bot.mailpartner.client import (
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
)
from bot.mailpartner.sandbox import MailPartnerSandbox
from bot.settings import Settings, SettingsError
from bot.words.blocks import render_outcome

__all__ = [
    "Accounts",
    "Bot",
    "CancelOutcome",
    "FailureKind",
    "InvalidMessageId",
    "MailPartnerClient",
    "MailPartnerConnectionError",
    "MailPartnerError",
    "MailPartnerHTTPError",
    "MailPartnerMalformedAnswer",
    "MailPartnerSandbox",
    "MailPartnerTimeout",
    "MailPartnerUnavailable",
    "Preview",
    "Settings",
    "SettingsError",
    "build_bot",
    "render_outcome",
]
