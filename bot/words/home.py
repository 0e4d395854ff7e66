"""A person's App Home (the Home tab): what they may do, a button to start, what they did and what is under
way, and, for people who may cancel, the state of each MailPartner account. Laid out here from `HomeFacts`,
gathered in bot/inbound/home.py, within Slack's limits: 100 blocks, 3,000 characters a section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.mailpartner.answers import Report
from bot.store.history import HistoryEvent
from bot.words import format_number, ui
from bot.words.blocks import history_line, ids_text

OPEN_FORM_ACTION = "cancel_mail_home_form"  # the home's button: opens the cancel form
HOME_HISTORY = 15  # events shown at most; more are a command away
MAX_BLOCKS = 100  # Slack's limit for a home view
SECTION_TEXT = 3000  # Slack's limit for a section's text
LINES_A_SECTION = 8  # history lines per section: 8 of them stay far below SECTION_TEXT


@dataclass(frozen=True)
class AccountFacts:
    """One MailPartner account as `me` last answered, or None while it is being asked."""

    name: str
    report: Report | None = None
    username: str = ""
    mail_credits: int | None = None
    code: int | None = None


@dataclass(frozen=True)
class HomeFacts:
    user: str
    may_cancel: bool
    access_unread: bool = False  # whether they may is not known: the allowed user groups not read from Slack yet
    allowed_channels: tuple[str, ...] = ()  # where they may, when CANCEL_MAIL_ALLOWED_CHANNELS says
    allowed_users: tuple[str, ...] = ()  # who may, when they may not: user ids, never anything secret
    allowed_groups: tuple[str, ...] = ()  # and user groups
    history: Sequence[HistoryEvent] | None = ()  # None: the store does not answer
    more_history: bool = False
    under_way: tuple[str, ...] = ()
    accounts: tuple[AccountFacts, ...] = ()
    sandbox: bool = False
    store_problem: bool = False


def home_view(facts: HomeFacts, lang: str) -> dict[str, Any]:
    """The `home` view for views.publish."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": ui("home_title", lang)[:150]}},
        *_notices(facts, lang),
        _section(ui("home_intro", lang)),
        _section(_access(facts, lang)),
    ]
    if facts.may_cancel:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": OPEN_FORM_ACTION,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": ui("home_open_form", lang)},
                    }
                ],
            }
        )
    if facts.under_way:
        blocks.append(_section(ui("home_under_way", lang, ids=ids_text(facts.under_way))))
    blocks += [{"type": "divider"}, *_history(facts, lang)]
    if facts.may_cancel and facts.accounts:
        lines = [_account_line(account, lang) for account in facts.accounts]
        blocks += [{"type": "divider"}, _section(ui("home_accounts", lang)), *_chunks(lines)]
    if len(blocks) > MAX_BLOCKS:  # never with today's limits; a guard should a list grow
        blocks = [*blocks[: MAX_BLOCKS - 1], _context(ui("home_recent_more", lang, limit=HOME_HISTORY))]
    return {"type": "home", "callback_id": "cancel_mail_home", "blocks": blocks}


def _notices(facts: HomeFacts, lang: str) -> list[dict[str, Any]]:
    """What is wrong or special, first: the sandbox, a store that does not answer, an account refused."""
    notices = []
    if facts.sandbox:
        notices.append(_section(ui("home_sandbox", lang)))
    if facts.store_problem:
        notices.append(_section(ui("home_problem_store", lang)))
    refused = [a.name for a in facts.accounts if a.report is Report.KEY_REFUSED]
    if facts.may_cancel and refused:
        notices.append(_section(ui("home_problem_accounts", lang, accounts=", ".join(f"`{a}`" for a in refused))))
    return notices


def _access(facts: HomeFacts, lang: str) -> str:
    if facts.access_unread:
        return ui("home_access_unread", lang)
    if facts.may_cancel:
        if facts.allowed_channels:
            return ui("home_may_channels", lang, channels=", ".join(f"<#{c}>" for c in facts.allowed_channels))
        return ui("home_may", lang)
    people = ", ".join(f"<@{u}>" for u in facts.allowed_users)
    groups = ", ".join(f"<!subteam^{g}>" for g in facts.allowed_groups)
    if people and groups:
        rule = ui("home_rule_both", lang, people=people, groups=groups)
    elif groups:
        rule = ui("home_rule_groups", lang, groups=groups)
    else:
        rule = ui("home_rule_users", lang, people=people)
    return ui("home_may_not", lang, rule=rule)


def _history(facts: HomeFacts, lang: str) -> list[dict[str, Any]]:
    if facts.history is None:
        return [_section(ui("home_history_unavailable", lang))]
    if not facts.history:
        return [_section(ui("home_recent", lang)), _context(ui("home_recent_none", lang))]
    lines = [history_line(event, lang, with_channel=True) for event in facts.history[:HOME_HISTORY]]
    blocks = [_section(ui("home_recent", lang)), *_chunks(lines)]
    if facts.more_history:
        blocks.append(_context(ui("home_recent_more", lang, limit=HOME_HISTORY)))
    return blocks


def _account_line(account: AccountFacts, lang: str) -> str:
    if account.report is None:
        return ui("home_account_checking", lang, account=account.name)
    if account.report is Report.FOUND:
        if account.mail_credits is None:
            return ui("home_account_ok_no_credits", lang, account=account.name, user=account.username or "?")
        credits = format_number(account.mail_credits, lang)
        return ui("home_account_ok", lang, account=account.name, user=account.username or "?", credits=credits)
    if account.report is Report.KEY_REFUSED:
        return ui("home_account_refused", lang, account=account.name, code=account.code)
    if account.report is Report.UNANSWERED:
        return ui("home_account_silent", lang, account=account.name)
    return ui("home_account_odd", lang, account=account.name, code=account.code)


def _chunks(lines: list[str]) -> list[dict[str, Any]]:
    return [_section("\n".join(lines[i : i + LINES_A_SECTION])) for i in range(0, len(lines), LINES_A_SECTION)]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_TEXT]}]}
