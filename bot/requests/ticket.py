"""The prompt ticket: everything a confirm or keep click needs, carried in the button's `value`.

Keeping it in the button (Slack signs the click that brings it back) makes the bot stateless: any
process serving the app can handle any click, and a restart loses no prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.mailpartner.accounts import MAIL_REF

MAX_IDS = 25
_VALUE_LIMIT = 2000  # Slack's limit for a button value


@dataclass(frozen=True)
class PromptTicket:
    ids: tuple[str, ...]
    requester: str
    channel: str
    issued_at: float
    thread_ts: str = ""
    second_person: bool = False
    reason: str = ""
    workflow: bool = False  # posted by a Workflow Builder step: the click must end that step
    lang: str = ""  # the language the prompt was written in, when not the bot's: its updates keep it

    def encode(self) -> str:
        data: dict[str, object] = {
            "v": 1,
            "ids": list(self.ids),
            "r": self.requester,
            "c": self.channel,
            "t": self.thread_ts,
            "at": round(self.issued_at, 3),
            "2p": self.second_person,
        }
        if self.reason:
            data["why"] = self.reason
        if self.workflow:
            data["wf"] = True
        if self.lang:
            data["l"] = self.lang
        # Slack counts characters, not bytes: keep non-ASCII reasons as they are, not as \uXXXX.
        value = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(value) > _VALUE_LIMIT:  # requests are checked with ticket_fits() before a prompt is made
            raise ValueError(f"ticket is {len(value)} characters, over Slack's {_VALUE_LIMIT}")
        return value

    @classmethod
    def decode(cls, value: str) -> PromptTicket:
        """Parse a button value; raise ValueError on anything this bot did not write."""
        try:
            data = json.loads(value)
            ticket = cls(
                ids=tuple(str(i) for i in data["ids"]),
                requester=str(data["r"]),
                channel=str(data["c"]),
                issued_at=float(data["at"]),
                thread_ts=str(data.get("t") or ""),
                second_person=bool(data.get("2p", False)),
                reason=str(data.get("why") or ""),
                workflow=bool(data.get("wf", False)),
                lang=str(data.get("l") or ""),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a prompt ticket: {error}") from error
        if data.get("v") != 1 or not 1 <= len(ticket.ids) <= MAX_IDS:
            raise ValueError("not a prompt ticket: bad version or id count")
        if not all(MAIL_REF.match(i) for i in ticket.ids):
            raise ValueError("not a prompt ticket: bad message id")
        return ticket


def is_direct_message(channel: str) -> bool:
    """Whether a conversation is a person's direct messages with the bot (`D…`): one reader, in their language."""
    return channel.startswith("D")


def ticket_fits(ids: tuple[str, ...], reason: str) -> bool:
    """Whether a prompt for these ids and this reason fits in a button, whoever asks and wherever.

    25 ids of 64 characters leave room for a reason of about 150 characters; ordinary ids for 500.
    """
    widest = PromptTicket(
        ids=ids,
        requester="W" * 16,
        channel="C" * 16,
        issued_at=9_999_999_999.999,
        thread_ts="9999999999.999999",
        second_person=True,
        reason=reason,
        workflow=True,
        lang="fr",
    )
    try:
        widest.encode()
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class StepRef:
    """A Workflow Builder run a prompt belongs to: its execution id and the short-lived token Slack gave
    for it (the run is ended with that token: bot/outbound/replies.py)."""

    execution_id: str
    token: str
