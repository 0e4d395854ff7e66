"""Requests exactly as Slack sends them: bodies for commands, clicks, events, shortcuts, form submissions
and workflow steps, and their signatures.

The console drives the real Bolt app with these, and so do the tests and the benchmark.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.cancels.workflow import CALLBACK_ID
from bot.words.blocks import PROMPT_BLOCK

TEAM_ID = "T0LOCAL000"


def signed_headers(secret: str, body: str, *, timestamp: int | None = None, content_type: str = "") -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def slash_command(text: str, *, user: str, channel: str, response_url: str, command: str = "/cancel-mail") -> str:
    return urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": "on-call",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": f"{int(time.time())}.trigger",
            "api_app_id": "A0LOCAL000",
        }
    )


def button_click(
    button: dict[str, Any],
    *,
    user: str,
    channel: str,
    response_url: str,
    message_ts: str = "",
    thread_ts: str = "",
    function: dict[str, Any] | None = None,
) -> str:
    """A `block_actions` click on `button` (as found in the prompt's blocks); ephemeral when no message_ts.

    `function`: the click lands on a message a workflow step posted; Slack then adds `function_data` and
    the execution's token (`execution_id`, `inputs` and `bot_access_token` keys of this dict).
    """
    container: dict[str, Any] = {"type": "message", "channel_id": channel, "is_ephemeral": not message_ts}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A0LOCAL000",
        "channel": {"id": channel},
        "container": container,
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.trigger",
        "actions": [
            {
                "type": "button",
                "block_id": PROMPT_BLOCK,
                "action_id": button["action_id"],
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if message_ts:
        container["message_ts"] = message_ts
        payload["message"] = {"ts": message_ts, "thread_ts": thread_ts or None, "type": "message"}
    if function:
        payload["function_data"] = {
            "execution_id": function["execution_id"],
            "function": {"callback_id": function.get("callback_id", CALLBACK_ID)},
            "inputs": function.get("inputs", {}),
        }
        payload["bot_access_token"] = function["bot_access_token"]
    return _interactive(payload)


def view_button_click(button: dict[str, Any], *, user: str, view: dict[str, Any]) -> str:
    """A `block_actions` click on a button of a view (the App Home's): no channel, no response_url."""
    view_id = str(view.get("id") or "V0LOCALHOME")
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A0LOCAL000",
        "container": {"type": "view", "view_id": view_id},
        "view": {**view, "id": view_id},
        "trigger_id": f"{int(time.time())}.trigger",
        "actions": [{"type": "button", "action_id": button["action_id"], "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def global_shortcut(callback_id: str, *, user: str) -> str:
    return _interactive(
        {
            "type": "shortcut",
            "callback_id": callback_id,
            "trigger_id": f"{int(time.time())}.trigger",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0LOCAL000",
        }
    )


def message_shortcut(callback_id: str, message: dict[str, Any], *, user: str, channel: str, response_url: str) -> str:
    """A message shortcut on `message` (`text`, `ts`, maybe `thread_ts`)."""
    return _interactive(
        {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": f"{int(time.time())}.trigger",
            "action_ts": f"{time.time():.6f}",
            "message_ts": message["ts"],
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "channel": {"id": channel, "name": "on-call"},
            "message": {"type": "message", "user": "U0SOMEONE0", **message},
            "response_url": response_url,
            "api_app_id": "A0LOCAL000",
        }
    )


def view_submission(
    view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str, response_urls: list[dict[str, str]] = ()
) -> str:
    """Submitting `view` (as opened) with `values`: block_id → the field's state, e.g. {"value": "300"}."""
    state = {block: {"value": {"type": "plain_text_input", **field}} for block, field in values.items()}
    return _interactive(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0LOCAL000",
            "trigger_id": f"{int(time.time())}.trigger",
            "view": {**view, "id": view.get("id", "V0LOCAL000"), "state": {"values": state}},
            "response_urls": list(response_urls),
        }
    )


def function_executed(
    inputs: dict[str, Any], *, execution_id: str, bot_access_token: str, callback_id: str = CALLBACK_ID
) -> str:
    """The event Slack sends when a workflow reaches the bot's step."""
    return json.dumps(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0LOCAL000",
            "type": "event_callback",
            "event_id": f"Ev{execution_id}",
            "event_time": int(time.time()),
            "event": {
                "type": "function_executed",
                "function": {"id": "Fn0LOCAL00", "callback_id": callback_id, "title": "Cancel scheduled mail"},
                "inputs": inputs,
                "function_execution_id": execution_id,
                "workflow_execution_id": f"Wf{execution_id}",
                "event_ts": f"{time.time():.6f}",
                "bot_access_token": bot_access_token,
            },
        }
    )


def _interactive(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def app_mention(text: str, *, user: str, channel: str, ts: str, thread_ts: str = "", event_id: str = "") -> str:
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return _event_callback(event, event_id or f"Ev{ts.replace('.', '')}")


def direct_message(text: str, *, user: str, channel: str, ts: str, event_id: str = "") -> str:
    """A message written to the bot in its Messages tab (`message.im`)."""
    event = {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts, "channel": channel}
    return _event_callback({**event, "event_ts": ts}, event_id or f"Ev{ts.replace('.', '')}")


def app_home_opened(*, user: str, channel: str, tab: str = "home") -> str:
    """A person opening the app's Home tab (or its Messages tab)."""
    event = {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": f"{time.time():.6f}"}
    return _event_callback(event, f"Ev{time.monotonic_ns()}")


def _event_callback(event: dict[str, Any], event_id: str) -> str:
    return json.dumps(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0LOCAL000",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0BOT00000", "is_bot": True}],
        }
    )


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buttons of a message's blocks, by action_id."""
    found = {}
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                found[element["action_id"]] = element
    return found


def blocks_text(message: dict[str, Any]) -> str:
    """All the text a person sees in a message's blocks (or its fallback text)."""
    blocks = message.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not blocks:
        return str(message.get("text", ""))
    parts = []
    for block in blocks:
        if block.get("type") == "header":
            parts.append(block["text"]["text"])
        elif block.get("type") == "divider":
            parts.append("—" * 20)
        elif block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts.extend(e.get("text", "") for e in block["elements"])
        elif block.get("type") == "actions":
            parts.append("  ".join(f"[ {e['text']['text']} ]" for e in block["elements"]))
    return "\n".join(parts)
