"""The cancel form: the modal both shortcuts open, what a submission says, and ids found in a message.

    global shortcut  "Cancel a scheduled mail"   → form with ids, reason and a conversation select
    message shortcut "Cancel mails in message"   → form with ids, reason, ids pre-filled from the message

A submission is read into plain fields here and validated by `commands.parse_fields`, like every entry point.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.mailpartner.client import MESSAGE_ID
from bot.requests.commands import MAX_REASON
from bot.requests.ticket import MAX_IDS
from bot.words import ui

GLOBAL_SHORTCUT = "cancel_mail_form"
MESSAGE_SHORTCUT = "cancel_mail_from_message"
FORM_CALLBACK = "cancel_mail_form_submit"
IDS_BLOCK, REASON_BLOCK, CONVERSATION_BLOCK = "mail_ids", "reason", "conversation"
_FIELD = "value"  # the action_id of every field's element

# Ids in a message, in the order they appear (the person reviews them in the form before submitting):
#   "messageId": "abc-1"  /  messageId=abc-1   a field as MailPartner names it, in JSON, logs or URLs
#   `abc-1`                                    a back-quoted token that is a valid id
#   20260412000123                             a run of 6 or more digits
#   mails 301, 302 and 305  /  les mails 301 et 305   numbers that a word for a mail introduces, with the
#                                              list that follows it (English and French)
# A number is not an id when it is a time, a date or a quantity: "10:30", "12/05", "in 5 minutes",
# "3 mails" (a number before the word counts mails; only numbers after it name them).
_INTRODUCER = r"(?:e-?)?mails?|courriels?|ids?|identifiants?|messageids?|messages?|envois?"
_UNIT = r"%|min\b|minutes?|h\b|hours?|heures?|s\b|sec\b|seconds?|secondes?|days?|jours?|" + _INTRODUCER
_NUMBER = rf"\d{{1,64}}(?![:/.-]\d|[\w-]|\s*(?:{_UNIT})\b)"
_LIST_JOINER = r"\s*(?:,|&|/|\band\b|\bet\b|\bor\b|\bou\b)\s*"
_IDS_IN_MESSAGE = re.compile(
    r"""messageId["']?\s*[:=]\s*["']?(?P<field>[A-Za-z0-9_-]{1,64})"""
    r"|`(?P<quoted>[A-Za-z0-9_-]{1,64})`"
    rf"|\b(?:{_INTRODUCER})\s*(?:#|n°|no\.?|nos?\b)?\s*:?\s*(?P<listed>{_NUMBER}(?:(?:{_LIST_JOINER}){_NUMBER})*)"
    r"|(?<![\w-])(?P<digits>\d{6,64})(?![\w-])",
    re.IGNORECASE,
)
_LISTED = re.compile(_NUMBER)


def ids_in_message(text: str) -> list[str]:
    """The mail ids a message names (see the rule above), without duplicates, at most 25."""
    found: list[str] = []
    for match in _IDS_IN_MESSAGE.finditer(text):
        if match.group("listed"):
            found += _LISTED.findall(match.group("listed"))
        else:
            found.append(match.group("field") or match.group("quoted") or match.group("digits"))
    ids = [i for i in dict.fromkeys(found) if MESSAGE_ID.match(i)]
    return ids[:MAX_IDS]


@dataclass(frozen=True)
class FormOrigin:
    """Where the form was opened, carried in the view's private_metadata."""

    kind: str  # "global" or "message"
    channel: str = ""
    thread_ts: str = ""  # the message shortcut's thread: the prompt goes there

    def encode(self) -> str:
        return json.dumps({"k": self.kind, "c": self.channel, "t": self.thread_ts}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> FormOrigin:
        try:
            data = json.loads(raw or "{}")
            origin = cls(str(data["k"]), str(data.get("c") or ""), str(data.get("t") or ""))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a cancel form: {error}") from error
        if origin.kind not in ("global", "message"):
            raise ValueError(f"not a cancel form: kind {origin.kind!r}")
        return origin


@dataclass(frozen=True)
class FormSubmission:
    ids_text: str
    reason_text: str
    conversation: str  # the chosen conversation (global form), else ""
    response_url: str  # for the chosen conversation, when Slack gave one


def form_view(origin: FormOrigin, *, lang: str, ids: list[str], require_reason: bool, sandbox: bool) -> dict[str, Any]:
    """The modal for `views.open`."""
    blocks: list[dict[str, Any]] = []
    if sandbox:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ui("sandbox", lang)}]})
    ids_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": _FIELD,
        "multiline": True,
        "placeholder": _plain(ui("form_ids_placeholder", lang)),
    }
    if ids:
        ids_element["initial_value"] = " ".join(ids)
    blocks.append(
        {
            "type": "input",
            "block_id": IDS_BLOCK,
            "label": _plain(ui("form_ids", lang)),
            "hint": _plain(ui("form_ids_hint", lang, max=MAX_IDS)),
            "element": ids_element,
        }
    )
    blocks.append(
        {
            "type": "input",
            "block_id": REASON_BLOCK,
            "optional": not require_reason,
            "label": _plain(ui("form_reason", lang)),
            "element": {
                "type": "plain_text_input",
                "action_id": _FIELD,
                "multiline": True,
                "max_length": MAX_REASON,
                "placeholder": _plain(ui("form_reason_placeholder", lang)),
            },
        }
    )
    if origin.kind == "global":
        blocks.append(
            {
                "type": "input",
                "block_id": CONVERSATION_BLOCK,
                "label": _plain(ui("form_conversation", lang)),
                "element": {
                    "type": "conversations_select",
                    "action_id": _FIELD,
                    "default_to_current_conversation": True,
                    # Gives the submission a response_url there: works where the bot is not a member.
                    "response_url_enabled": True,
                },
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ui("form_note", lang)}]})
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK,
        "private_metadata": origin.encode(),
        "title": _plain(ui("form_title", lang)),
        "submit": _plain(ui("form_submit", lang)),
        "close": _plain(ui("form_close", lang)),
        "blocks": blocks,
    }


def read_submission(body: dict[str, Any]) -> FormSubmission:
    """The fields of a `view_submission`, tolerant of missing ones (each is then validated as empty)."""
    values = (body.get("view") or {}).get("state", {}).get("values", {})

    def field(block: str, key: str) -> str:
        return str((values.get(block, {}).get(_FIELD) or {}).get(key) or "")

    conversation = field(CONVERSATION_BLOCK, "selected_conversation")
    urls = [u for u in body.get("response_urls") or [] if u.get("block_id") == CONVERSATION_BLOCK]
    return FormSubmission(
        ids_text=field(IDS_BLOCK, "value"),
        reason_text=field(REASON_BLOCK, "value"),
        conversation=conversation,
        response_url=str(urls[0].get("response_url", "")) if urls else "",
    )


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}
