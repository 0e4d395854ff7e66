"""Command grammar: turn what a person typed into a request, or a reason to show usage.

Shared by `/cancel-mail <ids> [-- reason]`, `@bot cancel <ids> [-- reason]`, the cancel form, the
Workflow Builder step, the console and the break-glass CLI, so every entry point accepts exactly the
same input.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import Enum

from bot.mailpartner.accounts import MAIL_REF, MAX_REF_LENGTH, split_ref
from bot.requests.ticket import MAX_IDS, ticket_fits

MAX_REASON = 500

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_HELP = ("help", "aide", "-h", "--help")
_SEPARATORS = re.compile(r"[\s,]+")
# ` -- why`, and the dashes phones type instead: ` — why`, ` – why`.
_REASON_MARK = re.compile(r"(?:^|\s)(?:--|—|–)(?:\s|$)")
# Control characters other than newline and tab would only garble the reason where it is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class UsageReason(Enum):
    HELP = "help"
    NO_ID = "no_id"
    INVALID_ID = "invalid_id"
    ID_TOO_LONG = "id_too_long"  # longer than any mail reference: said so, with the limit
    TOO_MANY = "too_many"
    UNKNOWN_VERB = "unknown_verb"
    REASON_REQUIRED = "reason_required"
    REASON_TOO_LONG = "reason_too_long"
    TOO_LONG = "too_long"
    HISTORY_ARGS = "history_args"
    REASON_UNMARKED = "reason_unmarked"  # `/cancel-mail 302 wrong list`: words after the ids, no ` -- `
    NOT_ID_LIKE = "not_id_like"  # the same words in a field that holds ids only (the form, the step, the CLI)
    VERB_MISSING = "verb_missing"  # `@bot 302`: ids, but no `cancel` before them
    UNKNOWN_ACCOUNT = "unknown_account"  # `brand-x:301` where no account is named brand-x
    ACCOUNT_NEEDED = "account_needed"  # a bare id that several accounts know, or none, and no `default`


@dataclass(frozen=True)
class CancelRequest:
    ids: tuple[str, ...]
    reason: str = ""  # as the person typed it; escaped wherever Slack shows it


@dataclass(frozen=True)
class UsageRequest:
    reason: UsageReason
    offending: str = ""


@dataclass(frozen=True)
class HistoryRequest:
    """`/cancel-mail history [id]`: recent events here, or everything about one mail."""

    mail_id: str = ""


ParsedCommand = CancelRequest | UsageRequest | HistoryRequest


def parse_slash_command(text: str, *, require_reason: bool = False) -> ParsedCommand:
    """`/cancel-mail 300 301 -- why` → ids and reason; `history [id]` → history; `help` or junk → usage."""
    ids_text, reason = split_reason(text)
    words = _words(ids_text)
    if words[:1] and words[0].lower() in ("history", "historique"):
        if len(words) > 2 or reason:
            return UsageRequest(UsageReason.HISTORY_ARGS)
        mail = _account_lowered(words[1]) if len(words) == 2 else ""
        if mail and not MAIL_REF.match(mail):
            return bad_id(words[1])
        return HistoryRequest(mail)
    if words[:1] and words[0].lower() == "cancel":
        words = words[1:]
    return _request(words, reason, require_reason)


def parse_mention(text: str, *, require_reason: bool = False) -> CancelRequest | UsageRequest:
    """`<@BOT> cancel 300 -- why` → ids and reason; anything else → usage."""
    ids_text, reason = split_reason(text)
    words = _words(_MENTION.sub(" ", ids_text))
    if not words or words[0].lower() in ("help", "aide"):
        return UsageRequest(UsageReason.HELP)
    if words[0].lower() not in ("cancel", "annuler"):
        if _id_like(words[0]):  # `@bot 302`: the ids are there, the verb is not
            return UsageRequest(UsageReason.VERB_MISSING, " ".join(words)[:40])
        return UsageRequest(UsageReason.UNKNOWN_VERB, words[0][:40])
    return _request(words[1:], reason, require_reason)


def parse_direct_message(text: str, *, require_reason: bool = False) -> ParsedCommand:
    """A direct message to the bot: `cancel 300 -- why`, `history [id]`, `help`; as a mention reads, with
    history too, and no mention needed."""
    words = _words(split_reason(text)[0])
    if words[:1] and words[0].lower() in ("history", "historique"):
        return parse_slash_command(text, require_reason=require_reason)
    return parse_mention(text, require_reason=require_reason)


def parse_fields(ids_text: str, reason_text: str, *, require_reason: bool = False) -> CancelRequest | UsageRequest:
    """The form, the workflow step and the CLI: ids (spaces, commas or new lines between them), a separate reason."""
    return _request(
        _words(ids_text), clean_reason(reason_text), require_reason, help_words=(), stray=UsageReason.NOT_ID_LIKE
    )


def split_reason(text: str) -> tuple[str, str]:
    """Split `300 301 -- wrong segment` into the ids part and the cleaned reason."""
    parts = _REASON_MARK.split(text, maxsplit=1)
    return (parts[0], clean_reason(parts[1])) if len(parts) == 2 else (text, "")


def clean_reason(text: str) -> str:
    """The reason as the person typed it: Slack's entities decoded, control characters dropped.

    Slack sends `<`, `>` and `&` typed as text as entities and its own commands (`<!channel>`) raw;
    decoding both gives one plain text that `messages.escape` later shows exactly as typed.
    """
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return _CONTROL.sub("", html.unescape(text) if "&#" in text else text).strip()


def _words(text: str) -> list[str]:
    # An id copied from a Slack message comes in back quotes (`300`, or ```300```), as Slack shows code.
    return [w for w in (w.strip("`") for w in _SEPARATORS.split(text.strip())) if w]


def _strays(words: list[str]) -> str:
    return " ".join(w for w in words if not _id_like(w))[:80]


def _as_reason(words: list[str]) -> str:
    """`302 --wrong list` as it was probably meant: `302 -- wrong list`, shortened to be shown."""
    ids = " ".join(w for w in words if _id_like(w))[:60]
    return f"{ids} -- {_strays(words).lstrip('-')}"


def _id_like(word: str) -> bool:
    """A word that reads as a mail id (`301`, `brand-b:301`): valid, with a digit in the id (MailPartner's
    ids are numbered)."""
    return bool(MAIL_REF.match(word)) and any(c.isdigit() for c in split_ref(word)[1])


def bad_id(word: str) -> UsageRequest:
    """What is wrong with a word that is no mail reference: too long (shown cut short, visibly), or not one."""
    if len(word) > MAX_REF_LENGTH:
        return UsageRequest(UsageReason.ID_TOO_LONG, f"{word[:24]}…")
    return UsageRequest(UsageReason.INVALID_ID, word[:40])


def _account_lowered(word: str) -> str:
    """`Brand-B:301` → `brand-b:301`: account names are lower case, ids are as typed."""
    account, colon, message_id = word.rpartition(":")
    return f"{account.lower()}{colon}{message_id}"


def _request(
    words: list[str],
    reason: str,
    require_reason: bool,
    help_words: tuple[str, ...] = _HELP,
    stray: UsageReason = UsageReason.REASON_UNMARKED,
) -> ParsedCommand:
    if not words:
        return UsageRequest(UsageReason.NO_ID)
    if words[0].lower() in help_words:
        return UsageRequest(UsageReason.HELP)
    words = [_account_lowered(w) for w in words]
    numbered = any(_id_like(w) for w in words)
    for word in words:
        if not MAIL_REF.match(word) and not (numbered and word.startswith("-")):
            return bad_id(word)
    # Beside numbered ids, a word with no digit (or one starting with `-`, never an id) is far likelier a
    # reason typed without ` -- ` than an id: sending `wrong` and `list` to MailPartner would be noise at
    # best, and someone else's mail at worst.
    if numbered and not all(_id_like(w) for w in words):
        return UsageRequest(stray, _as_reason(words) if stray is UsageReason.REASON_UNMARKED else _strays(words))
    ids = tuple(dict.fromkeys(words))  # duplicates removed, order kept
    if len(ids) > MAX_IDS:
        return UsageRequest(UsageReason.TOO_MANY, str(len(ids)))
    if len(reason) > MAX_REASON:
        return UsageRequest(UsageReason.REASON_TOO_LONG, str(len(reason)))
    if require_reason and not reason:
        return UsageRequest(UsageReason.REASON_REQUIRED)
    if not ticket_fits(ids, reason):
        return UsageRequest(UsageReason.TOO_LONG)
    return CancelRequest(ids, reason)
