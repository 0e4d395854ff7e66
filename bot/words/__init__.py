"""The bot's words, one module per language (en.py, fr.py), looked up by key.

`ui(key, lang, **values)` is a sentence of the interface; `outcome_words(key, lang)` what an answer of
MailPartner's means for the mail and what to do next, keyed like answers.ANSWERS. A test checks that every
language has every key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_skeleton
from babel.numbers import format_decimal

from bot.mailpartner.answers import UNKNOWN_CODE, FailureKind
from bot.words import en, fr

LANGUAGES = {"en": en, "fr": fr}

# The emoji that opens each outcome, the same in every language.
OUTCOME_EMOJI: dict[int | FailureKind | str, str] = {
    200: ":white_check_mark:",
    5: ":white_check_mark:",
    4: ":grey_question:",
    6: ":alarm_clock:",
    7: ":outbox_tray:",
    10: ":closed_lock_with_key:",
    1: ":closed_lock_with_key:",
    3: ":warning:",
    UNKNOWN_CODE: ":warning:",
    FailureKind.TIMEOUT: ":hourglass:",
    FailureKind.CONNECTION: ":electric_plug:",
    FailureKind.NAME_UNRESOLVED: ":electric_plug:",
    FailureKind.CERTIFICATE: ":closed_lock_with_key:",
    FailureKind.HTTP_ERROR: ":warning:",
    FailureKind.MALFORMED: ":warning:",
}


def ui(key: str, lang: str, **values: object) -> str:
    return LANGUAGES[lang].UI[key].format(**values)


def has_word(key: str, lang: str) -> bool:
    return key in LANGUAGES[lang].UI


def outcome_words(key: int | FailureKind | str, lang: str) -> tuple[str, str]:
    """What happened (a template with `{id}`, `{code}`, `{mp_message}`, `{status}`) and the next step."""
    return LANGUAGES[lang].OUTCOMES[key]


def format_number(number: int, lang: str) -> str:
    """A count as the language writes it: `1,240` in English, `1 240` (narrow no-break space) in French."""
    return format_decimal(number, locale=lang)


def format_time(at: float, lang: str) -> str:
    """A moment in UTC as the language writes a date: `Nov 27, 2026 16:05 UTC`, `27 nov. 2026 16:05 UTC`."""
    moment = datetime.fromtimestamp(at, UTC)
    return f"{format_skeleton('yMMMd', moment, locale=lang)} {format_skeleton('Hm', moment, locale=lang)} UTC"
