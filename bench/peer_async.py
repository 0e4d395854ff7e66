"""The async peer: Bolt's starter app written for `AsyncApp`, measured beside the bot by bench/load.py.

The same seed's one call as bench/peer.py: `/cancel-mail ID` acks with a confirm button; the click acks,
then a lazy listener calls MailPartner's `message-cancel` over one httpx.AsyncClient and posts the outcome
through the click's `response_url`. No preview, no store, no owed messages, no rate limits, no access rules.
Served as the bot is: Bolt's aiohttp adapter on one event loop, the same listen backlog.

    PORT=3002 SLACK_BOT_TOKEN=… SLACK_SIGNING_SECRET=… SLACK_API_URL=… \\
    MAILPARTNER_BASE_URL=… MAILPARTNER_API_KEY=… python bench/peer_async.py
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

app = AsyncApp(
    client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
)
# httpx's defaults, as a team would leave them (100 connections: far more than 32 cancels in flight need).
mailpartner = httpx.AsyncClient(
    base_url=os.environ["MAILPARTNER_BASE_URL"].rstrip("/") + "/",
    timeout=float(os.environ.get("MAILPARTNER_TIMEOUT", "10")),
)


@app.command("/cancel-mail")
async def ask(ack: AsyncAck, command: dict[str, Any]) -> None:
    mail = command.get("text", "").strip()
    await ack(
        text=f"Cancel mail {mail}?",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Cancel mail `{mail}`?"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "cancel_mail_confirm",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Cancel"},
                        "value": mail,
                    }
                ],
            },
        ],
    )


async def acknowledge(ack: AsyncAck) -> None:
    await ack()


async def cancel(body: dict[str, Any], respond: AsyncRespond) -> None:
    mail = body["actions"][0]["value"]
    answer = (
        await mailpartner.get(
            "message-cancel",
            params={"apiKey": os.environ["MAILPARTNER_API_KEY"], "messageId": mail, "_format": "json"},
        )
    ).json()
    await respond(text=f"Mail {mail}: {answer.get('message')} (code {answer.get('code')})", response_type="in_channel")


app.action("cancel_mail_confirm")(ack=acknowledge, lazy=[cancel])


async def events(request: web.Request) -> web.Response:
    return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))


async def healthz(_request: web.Request) -> web.Response:  # for the bench's start-up wait, as the bot has
    return web.Response(text="ok")


if __name__ == "__main__":
    server = web.Application()
    server.router.add_post("/slack/events", events)
    server.router.add_get("/healthz", healthz)
    web.run_app(server, host="127.0.0.1", port=int(os.environ["PORT"]), backlog=2048, access_log=None, print=None)
