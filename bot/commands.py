"""Command grammar: turn what a person typed into a request, or a reason to show usage.

Shared by `/cancel-mail <ids>`, `@bot cancel <ids>` and the console, so every entry point accepts
exactly the same input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from bot.mailpartner import MESSAGE_ID
from bot.ticket import MAX_IDS

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_SEPARATORS = re.compile(r"[\s,]+")


class UsageReason(Enum):
    HELP = "help"
    NO_ID = "no_id"
    INVALID_ID = "invalid_id"
    TOO_MANY = "too_many"
    UNKNOWN_VERB = "unknown_verb"


@dataclass(frozen=True)
class CancelRequest:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class UsageRequest:
    reason: UsageReason
    offending: str = ""


ParsedCommand = CancelRequest | UsageRequest


def parse_slash_command(text: str) -> ParsedCommand:
    """`/cancel-mail 300 301` → ids; `/cancel-mail`, `help` or junk → usage."""
    words = _words(text)
    if words[:1] and words[0].lower() == "cancel":
        words = words[1:]
    return _parse_ids(words)


def parse_mention(text: str) -> ParsedCommand:
    """`<@BOT> cancel 300` → ids; anything else → usage."""
    words = _words(_MENTION.sub(" ", text))
    if not words or words[0].lower() in ("help", "aide"):
        return UsageRequest(UsageReason.HELP)
    if words[0].lower() not in ("cancel", "annuler"):
        return UsageRequest(UsageReason.UNKNOWN_VERB, words[0][:40])
    return _parse_ids(words[1:])


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(text.strip()) if w]


def _parse_ids(words: list[str]) -> ParsedCommand:
    if not words:
        return UsageRequest(UsageReason.NO_ID)
    if words[0].lower() in ("help", "aide", "-h", "--help"):
        return UsageRequest(UsageReason.HELP)
    for word in words:
        if not MESSAGE_ID.match(word):
            return UsageRequest(UsageReason.INVALID_ID, word[:40])
    ids = tuple(dict.fromkeys(words))  # duplicates removed, order kept
    if len(ids) > MAX_IDS:
        return UsageRequest(UsageReason.TOO_MANY, str(len(ids)))
    return CancelRequest(ids)
