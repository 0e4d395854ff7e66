"""What the CLI's modes share: exit statuses, how words reach a terminal, the store opened for a mode."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from bot.settings import Settings
from bot.words.terminal import plain_text, terminal_text

if TYPE_CHECKING:
    from bot.store import Store

# Exit statuses of `cancel`, for scripts.
EXIT_ALL_CANCELLED = 0


EXIT_NOT_CANCELLED = 1  # at least one mail is not cancelled: MailPartner said so, or was never reached


EXIT_USAGE = 2  # bad arguments or settings


EXIT_UNKNOWN = 3  # at least one mail's fate is unknown: MailPartner silent, failing or unreadable


EXIT_DECLINED = 4  # the confirmation was declined; nothing was sent


log = logging.getLogger("bot")


def for_stdout() -> Callable[[str], str]:
    """How Slack's words reach standard output: plain text for a person at a terminal; for a pipe, Slack's
    markup kept (ids in back quotes), which a script may pass on to Slack as it is."""
    return plain_text if is_terminal(sys.stdout) else terminal_text


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # a closed stream
        return False


def password_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password or ""
    except Exception:
        return ""


async def open_mode_store(settings: Settings) -> Store | None:
    """The store, migrated; None after one error line naming DATABASE_URL (password masked)."""
    from bot.store import StoreError, open_store

    try:
        return await open_store(settings.database_url, pool_size=2, create_folder=settings.default_store)
    except StoreError as error:
        log.error("cancel-mail-bot cannot start: DATABASE_URL: %s", error)
        return None
