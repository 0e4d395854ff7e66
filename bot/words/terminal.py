"""Slack's mrkdwn as a terminal shows it: for the console, the break-glass CLI and `check`; plain text for a
person at a terminal."""

from __future__ import annotations

import re

_EMOJI = {
    ":white_check_mark:": "✅",
    ":grey_question:": "❔",
    ":alarm_clock:": "⏰",
    ":outbox_tray:": "📤",
    ":closed_lock_with_key:": "🔐",
    ":warning:": "⚠️",
    ":hourglass:": "⌛",
    ":electric_plug:": "🔌",
    ":hourglass_flowing_sand:": "⏳",
    ":ballot_box_with_check:": "☑️",
    ":ok_hand:": "👌",
    ":mag:": "🔍",
    ":stopwatch:": "⏱️",
    ":no_entry:": "⛔",
    ":no_entry_sign:": "🚫",
    ":busts_in_silhouette:": "👥",
    ":construction:": "🚧",
    ":test_tube:": "🧪",
    ":recycle:": "♻️",
}


def terminal_text(text: str, *, people: dict[str, str] | None = None, channels: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as a terminal shows it: emoji drawn, mentions as @names, entities decoded.

    `people` names the user ids the terminal knows (the console's "you"), `channels` the channel ids (the
    console's #on-call), as Slack would show them.
    """
    names = channels or {}
    known = people or {}
    text = re.sub(r":[a-z_]+:", lambda m: _EMOJI.get(m.group(0), m.group(0)), text)
    text = re.sub(r"<@([A-Z0-9]+)>", lambda m: "@" + known.get(m.group(1), m.group(1)), text)
    text = re.sub(
        r"<#([A-Z0-9]+)(?:\|([^>]*))?>", lambda m: "#" + (m.group(2) or names.get(m.group(1)) or m.group(1)), text
    )
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_text(text: str) -> str:
    """For a terminal that shows no markup (the break-glass CLI at a terminal): as `terminal_text`, without
    Slack's `*bold*` and back quotes."""
    text = re.sub(r"`([^`\n]*)`", r"\1", terminal_text(text))
    return re.sub(r"\*([^*\n]+)\*", r"\1", text)
