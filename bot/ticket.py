"""The prompt ticket: everything a confirm or keep click needs, carried in the button's `value`.

Keeping it in the button (Slack signs the click that brings it back) makes the bot stateless: any
process serving the app can handle any click, and a restart loses no prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.mailpartner import MESSAGE_ID

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

    def encode(self) -> str:
        value = json.dumps(
            {
                "v": 1,
                "ids": list(self.ids),
                "r": self.requester,
                "c": self.channel,
                "t": self.thread_ts,
                "at": round(self.issued_at, 3),
                "2p": self.second_person,
            },
            separators=(",", ":"),
        )
        if len(value) > _VALUE_LIMIT:  # 25 ids of 64 chars fit; guard against future fields
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
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a prompt ticket: {error}") from error
        if data.get("v") != 1 or not 1 <= len(ticket.ids) <= MAX_IDS:
            raise ValueError("not a prompt ticket: bad version or id count")
        if not all(MESSAGE_ID.match(i) for i in ticket.ids):
            raise ValueError("not a prompt ticket: bad message id")
        return ticket
