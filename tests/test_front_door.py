"""HTTP mode's front door on the open internet: bodies larger than any Slack payload are refused before they
are read, and a crowd of slow clients costs coroutines, not the requests of Slack and the health checks."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from bot.console.local_slack import LocalSlack
from bot.console.wire import buttons
from bot.ops.server import READ_TIMEOUT
from tests.fakes import BotProcess, FakeMailPartner, bot_env, free_port
from tests.test_e2e import Driver


@pytest.fixture
def door(tmp_path: Path) -> Iterator[tuple[BotProcess, Driver]]:
    slack, mailpartner = LocalSlack().start(), FakeMailPartner().start()
    env = bot_env(free_port(), slack.api_url, mailpartner.base_url, CANCEL_MAIL_STATE_DIR=str(tmp_path / "state"))
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        bot.wait_healthy()
        yield bot, Driver(bot, slack)
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()


def connect(bot: BotProcess) -> socket.socket:
    port = int(bot.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_a_body_larger_than_any_slack_payload_gets_413_before_it_is_read(door) -> None:
    bot, driver = door
    before = rss_kb(bot.proc.pid)
    with connect(bot) as client:  # says 200 MB are coming, sends none of them
        client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n")
        answer = client.recv(1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    with connect(bot) as client:  # no length given: refused once past the cap, not read to its end
        client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(64):  # 4 MB at most
                client.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:  # the bot stopped reading: refused
            pass
        client.settimeout(10)
        answer = client.recv(1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert rss_kb(bot.proc.pid) - before < 20_000, "the refused bodies were held in memory"
    assert "413" in bot.log()
    _, prompt = driver.command("300")  # Slack's requests go on
    assert buttons(prompt)


def test_slow_clients_cost_coroutines_and_are_cut_off(door) -> None:
    bot, driver = door
    with ExitStack() as stack:
        slow = []
        for _ in range(200):  # each sends part of its headers, then nothing more
            client = stack.enter_context(connect(bot))
            client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(client)
        started = time.monotonic()
        health = httpx.get(bot.url + "/healthz", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 2
        _, prompt = driver.command("300")  # a signed command, answered as usual
        assert buttons(prompt)
        # Past READ_TIMEOUT, each slow client has been closed by the bot (recv: the end of the stream).
        for client in slow[:5]:
            client.settimeout(READ_TIMEOUT + 10)
            assert client.recv(1024) == b""
        assert time.monotonic() - started < READ_TIMEOUT + 10
