"""Layer 3, Socket Mode: `python -m bot` with SLACK_APP_TOKEN dials a fake Socket Mode server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

from bot.console.local_slack import LocalSlack
from bot.console.wire import app_mention, blocks_text, button_click, buttons, slash_command
from bot.http import RetryPolicy
from bot.ops.server import connect_until_slack_answers
from tests.fakes import (
    API_KEY,
    APP_TOKEN,
    BotProcess,
    FakeMailPartner,
    FakeSocketMode,
    answer_to,
    free_port,
    socket_mode_env,
)
from tests.waiting import eventually, holds_for

ALICE, CHANNEL = "U0ALICE000", "C0ONCALL00"


def test_socket_mode_command_click_outcome_and_mention(tmp_path: Path) -> None:
    socket_mode = FakeSocketMode()
    mailpartner = FakeMailPartner().start()
    with LocalSlack() as slack:
        slack.socket_url = socket_mode.url
        env = socket_mode_env(
            slack.api_url,
            mailpartner.base_url,
            METRICS_PORT=str(metrics_port := free_port()),
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            assert socket_mode.wait_connected(), bot.log()
            command = dict(
                parse_qsl(slash_command("300", user=ALICE, channel=CHANNEL, response_url=slack.new_response_url()))
            )
            ack = socket_mode.ack_of(socket_mode.send("slash_commands", command))
            assert ack is not None, bot.log()
            # "Looking up…" at once; the prompt takes its place through the command's response_url.
            prompt = answer_to(slack, command["response_url"], ack["payload"])
            assert (
                prompt["response_type"] == "ephemeral" and buttons(prompt)["cancel_mail_confirm"]["style"] == "danger"
            )

            response_url = slack.new_response_url()
            click = json.loads(
                dict(
                    parse_qsl(
                        button_click(
                            buttons(prompt)["cancel_mail_confirm"],
                            user=ALICE,
                            channel=CHANNEL,
                            response_url=response_url,
                        )
                    )
                )["payload"]
            )
            assert socket_mode.ack_of(socket_mode.send("interactive", click)) is not None
            path = response_url.removeprefix(slack.url)
            outcome = slack.wait_for(lambda c: c.path == path and c.payload.get("response_type") == "in_channel")
            assert outcome and "`300` is cancelled" in blocks_text(outcome[0].payload)

            ts = f"{int(time.time())}.000555"
            event = json.loads(app_mention("<@U0BOT00000> cancel 302", user=ALICE, channel=CHANNEL, ts=ts))
            socket_mode.send("events_api", event, retry_attempt=0, retry_reason="")
            socket_mode.send("events_api", event, retry_attempt=1, retry_reason="timeout")  # redelivered
            prompts = slack.wait_for(lambda c: c.method == "chat.postMessage" and c.payload.get("thread_ts") == ts)
            assert prompts and buttons(prompts[0].payload)
            holds_for(
                lambda: len([c for c in slack.of("chat.postMessage") if c.payload.get("thread_ts") == ts]) == 1,
                0.3,
                what="one prompt for a redelivered event",
            )
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                metrics = response.read().decode()  # Socket Mode serves its own metrics too
            assert 'cancel_mail_outcomes_total{account="default",result="cancelled"} 1.0' in metrics
            assert 'cancel_mail_requests_total{via="mention"} 1.0' in metrics

            bot.proc.send_signal(signal.SIGTERM)
            assert bot.proc.wait(20) == 0
        finally:
            bot.stop()
            mailpartner.stop()
            socket_mode.close()
    assert mailpartner.cancels["300"] == 1
    assert API_KEY not in bot.log() and APP_TOKEN not in bot.log()


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextlib.contextmanager
def socket_mode_bot(
    tmp_path: Path, *, outage: float = 0.0, **extra: str
) -> Iterator[tuple[BotProcess, FakeSocketMode]]:
    """`python -m bot` in Socket Mode, dialling a FakeSocketMode; Slack down for `outage` s from the start."""
    socket_mode = FakeSocketMode()
    mailpartner = FakeMailPartner().start()
    with LocalSlack() as slack:
        slack.socket_url = socket_mode.url
        if outage:
            slack.outage(outage, "503")
        env = socket_mode_env(
            slack.api_url,
            mailpartner.base_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
            **extra,
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            yield bot, socket_mode
        finally:
            bot.stop()
            mailpartner.stop()


def test_socket_mode_healthz_answers_503_once_the_websocket_stays_down(tmp_path: Path) -> None:
    with socket_mode_bot(tmp_path, CANCEL_MAIL_SOCKET_GRACE="2") as (bot, socket_mode):
        assert socket_mode.wait_connected(), bot.log()
        eventually(lambda: healthz(bot.port) == (200, "ok\n"), what="a healthy bot")
        socket_mode.close()  # Slack's end goes away, and stays away
        # slack_sdk notices a dead WebSocket at its next ping, up to about 20 s later; then the grace.

        def down() -> tuple[int, str] | None:
            answer = healthz(bot.port)
            return answer if answer[0] != 200 else None

        status, body = eventually(down, timeout=60, what="/healthz saying the WebSocket is down")
        assert status == 503 and "Slack WebSocket down for" in body, (body, bot.log())


def test_socket_mode_starts_while_slack_is_down_and_connects_once_it_is_back(tmp_path: Path) -> None:
    # 10 s: past slack_sdk's own retries of the sign-in and of the dial
    with socket_mode_bot(tmp_path, outage=10.0) as (bot, socket_mode):
        assert socket_mode.wait_connected(timeout=60), bot.log()
        log = bot.log()
        assert "starting anyway" in log and "Socket Mode: cannot reach Slack" in log, log
        assert bot.proc.poll() is None and "Traceback" not in log


def test_the_socket_is_dialled_again_until_slack_answers() -> None:
    tries: list[float] = []

    async def connect() -> None:
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise ConnectionRefusedError("no Slack")

    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # counted, not slept
        waits.append(seconds)

    asyncio.run(connect_until_slack_answers(connect, RetryPolicy(cap=0.05, first=0.01), sleep=sleep))
    assert len(tries) == 3 and len(waits) == 2 and all(0 <= w <= 0.05 for w in waits)


def test_socket_link_watch_allows_a_grace_then_reports() -> None:
    from bot.ops.server import SocketLinkWatch

    now, up = [100.0], [False]
    watch = SocketLinkWatch(lambda: up[0], grace=30, clock=lambda: now[0])
    now[0] += 29
    watch.sample()
    assert watch.problem() == ""  # still dialling, within the grace
    up[0] = True
    watch.sample()
    now[0] += 100
    assert watch.problem() == ""
    up[0] = False
    watch.sample()
    now[0] += 31
    assert watch.problem() == "Slack WebSocket down for 31 s"
