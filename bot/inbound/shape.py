"""Requests whose body is not what Slack sends: found before Bolt, answered 400 with one log line.

A request that carries a valid signature but a payload that is not JSON, a payload of the wrong shape,
an action this app never offers or no user would otherwise reach Bolt's listeners, which would fail
(a 500) or run on half a request. The HTTP server has Bolt parse the body once (`BoltRequest`); when
that fails, `unreadable()` says why, and `problem()` reads the parsed body and says in a few words what
is wrong, or "" when it has every field the listeners read. Such a request is answered 400 when it is
signed, and 401 when it is not (Bolt checks the signature of every other request itself).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.words.blocks import CONFIRM_ACTION, KEEP_ACTION
from bot.words.home import OPEN_FORM_ACTION

log = logging.getLogger(__name__)

ACTIONS = frozenset({CONFIRM_ACTION, KEEP_ACTION, OPEN_FORM_ACTION})  # every button the app shows

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
    # Bolt's own matchers read view.type and view.callback_id, the form reads state.values.
    if not isinstance(view, dict) or not _text(view, "type") or not _text(view, "callback_id"):
        return "no view with a type and a callback_id"
    state = view.get("state", {})
    if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
        return "a view whose state has no values"
    if not isinstance(view.get("private_metadata", ""), str):
        return "a view whose private_metadata is not text"
    return _user(payload)


def _shortcut(payload: dict[str, Any]) -> str:
    if not _text(payload, "callback_id") or not _text(payload, "trigger_id"):
        return "no callback_id or trigger_id"
    return _user(payload)


# What each kind of interaction must carry: the fields the listeners read.
_INTERACTIONS: dict[str, Check] = {
    "block_actions": _actions,
    "view_submission": _view,
    "view_closed": _view,
    "shortcut": _shortcut,
    "message_action": _shortcut,
}


def _event(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "app_mention":
        missing = [k for k in ("user", "channel", "ts") if not _text(event, k)]
        return f"app_mention without {', '.join(missing)}" if missing else ""
    if kind == "message":  # a direct message: the listener reads its user, channel and text
        return "" if _text(event, "channel") else "message without a channel"
    if kind == "app_home_opened":
        return "" if _text(event, "user") else "app_home_opened without a user"
    if kind == "function_executed":
        ok = isinstance(event.get("inputs"), dict) and _text(event, "function_execution_id")
        return "" if ok else "function_executed without inputs or function_execution_id"
    return "" if isinstance(kind, str) else "an event without a type"


def _event_body(data: dict[str, Any]) -> str:
    if data["type"] == "url_verification":
        return "" if _text(data, "challenge") else "url_verification without a challenge"
    event = data.get("event")
    return _event(event) if isinstance(event, dict) else "event_callback without an event"


def _command(form: dict[str, Any]) -> str:
    missing = [k for k in ("user_id", "channel_id") if not form.get(k)]
    return f"slash command without {', '.join(missing)}" if missing else ""


def problem(body: Any) -> str:
    """What is wrong with a request's body as Bolt parsed it (a form's fields, an interaction's payload, or
    an event), or "" when it has what the listeners need."""
    if not isinstance(body, dict):
        return "not a JSON object with a type"
    if "command" in body:
        return _command(body)
    if "ssl_check" in body:
        return ""
    kind = body.get("type")
    if not isinstance(kind, str):
        return "neither a command nor anything with a type"
    if kind in ("url_verification", "event_callback"):
        return _event_body(body)
    check = _INTERACTIONS.get(kind)
    return check(body) if check else ""


def unreadable(error: Exception) -> str:
    """Why Bolt could not read a body at all (its parser raised `error`)."""
    if isinstance(error, UnicodeDecodeError):
        return "body is not UTF-8"
    return "body is not JSON" if isinstance(error, ValueError) else "not a JSON object with a type"


class RefuseMalformed(AsyncMiddleware):
    """The same check as Bolt middleware, for Socket Mode, where no HTTP server reads the body before Bolt.
    A Middleware of its own (not a function) because Bolt builds a function's keyword arguments from the
    body first, which is what fails on such a body."""

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        if wrong := problem(req.body):
            log.warning("refused a request with a malformed body (400): %s", wrong)
            return BoltResponse(status=400, body="bad request")
        return await next()
