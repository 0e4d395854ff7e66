"""Requests whose body is not what Slack sends: found before Bolt, answered 400 with one log line.

A request that carries a valid signature but a payload that is not JSON, a payload of the wrong shape,
an action this app never offers or no user would otherwise reach Bolt, which answers 500 (a parse error)
or runs a listener on half a request. `problem()` says in a few words what is wrong, or "" when the body
has every field the listeners read. The HTTP server answers such a request 400 when it is signed, and 401
when it is not (Bolt checks the signature of every other request itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from bot.slack.messages import CONFIRM_ACTION, KEEP_ACTION

ACTIONS = frozenset({CONFIRM_ACTION, KEEP_ACTION})  # every button the app's messages carry

Check = Callable[[dict[str, Any]], str]


def _text(data: dict[str, Any], *path: str) -> bool:
    """Whether data[path…] is a non-empty string."""
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return isinstance(value, str) and bool(value)


def _user(payload: dict[str, Any]) -> str:
    return "" if _text(payload, "user", "id") else "no user"


def _actions(payload: dict[str, Any]) -> str:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
        return "no actions"
    unknown = [str(a.get("action_id"))[:40] for a in actions if a.get("action_id") not in ACTIONS]
    return f"unknown action id {unknown[0]!r}" if unknown else _user(payload)


def _view(payload: dict[str, Any]) -> str:
    view = payload.get("view")
    if not isinstance(view, dict) or not _text(view, "callback_id") or not isinstance(view.get("state"), dict):
        return "no view with a callback_id and a state"
    return _user(payload)


def _shortcut(payload: dict[str, Any]) -> str:
    if not _text(payload, "callback_id") or not _text(payload, "trigger_id"):
        return "no callback_id or trigger_id"
    return _user(payload)


# What each kind of interaction must carry: the fields the listeners read.
_INTERACTIONS: dict[str, Check] = {
    "block_actions": _actions,
    "view_submission": _view,
    "view_closed": _user,
    "shortcut": _shortcut,
    "message_action": _shortcut,
}


def _event(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "app_mention":
        missing = [k for k in ("user", "channel", "ts") if not _text(event, k)]
        return f"app_mention without {', '.join(missing)}" if missing else ""
    if kind == "function_executed":
        ok = isinstance(event.get("inputs"), dict) and _text(event, "function_execution_id")
        return "" if ok else "function_executed without inputs or function_execution_id"
    return "" if isinstance(kind, str) else "an event without a type"


def _json_body(data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return "not a JSON object with a type"
    if data["type"] == "url_verification":
        return "" if _text(data, "challenge") else "url_verification without a challenge"
    if data["type"] == "event_callback":
        event = data.get("event")
        if not isinstance(event, dict):
            return "event_callback without an event"
        return _event(event)
    return ""


def _form_body(form: dict[str, list[str]]) -> str:
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "payload is not JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "payload is not a JSON object with a type"
        check = _INTERACTIONS.get(payload["type"])
        return check(payload) if check else ""
    if "command" in form:
        missing = [k for k in ("user_id", "channel_id") if not form.get(k, [""])[0]]
        return f"slash command without {', '.join(missing)}" if missing else ""
    return "" if "ssl_check" in form else "neither a payload nor a command"


def problem(body: bytes, content_type: str) -> str:
    """What is wrong with a signed request's body, or "" when it has what the listeners need."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if content_type.startswith("application/json"):
        try:
            return _json_body(json.loads(text))
        except ValueError:
            return "body is not JSON"
    return _form_body(parse_qs(text, keep_blank_values=True))
