"""The peer: what a team would write instead of this project, measured beside it by bench/load.py.

Bolt's starter app with the seed's one call: `/cancel-mail ID` acks with a confirm button; the click acks,
then a lazy listener calls MailPartner's `message-cancel` with httpx and posts the outcome through the
click's `response_url`. No preview, no store, no owed messages, no rate limits, no access rules. Served
as a team would serve a sync Bolt app: gunicorn's threaded worker, one process of 32 request threads.

    PORT=3001 SLACK_BOT_TOKEN=… SLACK_SIGNING_SECRET=… SLACK_API_URL=… \\
    MAILPARTNER_BASE_URL=… MAILPARTNER_API_KEY=… python bench/peer.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from gunicorn.app.base import BaseApplication
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


app = App(
    client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    # Bolt's default executor has cpu + 4 threads: with 3 s calls in lazy listeners it cannot ack 32
    # requests in flight within Slack's 3 s. Enough threads for those and their lazy cancels.
    listener_executor=ThreadPoolExecutor(max_workers=64),
)
mailpartner = httpx.Client(base_url=os.environ["MAILPARTNER_BASE_URL"].rstrip("/") + "/", timeout=10)


@app.command("/cancel-mail")
def ask(ack: Ack, command: dict[str, Any]) -> None:
    mail = command["text"].strip()
    ack(
        text=f"Cancel mail {mail}?",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Cancel scheduled mail `{mail}`?"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "cancel_mail_confirm",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Cancel the mail"},
                        "value": mail,
                    }
                ],
            },
        ],
    )


def acknowledge(ack: Ack) -> None:
    ack()


def cancel(body: dict[str, Any], respond: Respond) -> None:
    mail = body["actions"][0]["value"]
    answer = mailpartner.get(
        "message-cancel", params={"apiKey": os.environ["MAILPARTNER_API_KEY"], "messageId": mail, "_format": "json"}
    ).json()
    respond(text=f"Mail {mail}: {answer.get('message')} (code {answer.get('code')})", response_type="in_channel")


app.action("cancel_mail_confirm")(ack=acknowledge, lazy=[cancel])


slack_requests = SlackRequestHandler(app)


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":  # for the bench's start-up wait, as the bot has
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return slack_requests(environ, start_response)


# How a team serves Bolt's sync starter app: gunicorn's threaded worker, one process of 32 request threads.
GUNICORN_OPTIONS: dict[str, Any] = {
    "workers": 1,
    "worker_class": "gthread",
    "threads": 32,
    "backlog": 2048,
    "keepalive": 5,
    "timeout": 60,
    "control_socket_disable": True,  # one path for every gunicorn of a user: replicas would share it
}


class Peer(BaseApplication):  # type: ignore[misc]
    def load_config(self) -> None:
        for key, value in {"bind": f"127.0.0.1:{os.environ['PORT']}", **GUNICORN_OPTIONS}.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        return wsgi


if __name__ == "__main__":
    Peer().run()
