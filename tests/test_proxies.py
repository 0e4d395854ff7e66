"""Behind a company's proxy: every connection the bot opens goes through the proxy the environment names
(HTTP_PROXY, HTTPS_PROXY, NO_PROXY, read as every HTTP program reads them), `check` says which, and a proxy
that fails is named as what failed, not taken for MailPartner's or Slack's outage."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.console.local_slack import LocalSlack
from bot.console.wire import blocks_text, buttons
from bot.http import AsyncHttp, Proxies, shown_proxy, tls_context
from bot.mailpartner.client import MailPartnerClient
from tests.fakes import (
    API_KEY,
    BotProcess,
    FakeMailPartner,
    FakeProxy,
    bot_env,
    free_port,
    run_bot,
    socket_mode_env,
)
from tests.test_e2e import Driver
from tests.test_mailpartner import json_answer, served
from tests.waiting import eventually


@pytest.fixture
def world():
    slack, mailpartner, proxy = LocalSlack().start(), FakeMailPartner().start(), FakeProxy().start()
    try:
        yield slack, mailpartner, proxy
    finally:
        proxy.stop()
        mailpartner.stop()
        slack.stop()


@pytest.mark.parametrize("spelling", ["http://host:port", "host:port"])
def test_a_cancel_goes_through_the_proxy_end_to_end(world, tmp_path: Path, spelling: str) -> None:
    """A proxy written without its scheme is http://, as curl and pip read it; before, the click was acked and
    no outcome ever came."""
    slack, mailpartner, proxy = world
    written = proxy.url if spelling.startswith("http://") else proxy.url.removeprefix("http://")
    env = bot_env(
        free_port(),
        slack.api_url,
        mailpartner.base_url,
        HTTP_PROXY=written,
        HTTPS_PROXY=written,
        CANCEL_MAIL_STATE_DIR=str(tmp_path / "state"),
    )
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        bot.wait_healthy()
        driver = Driver(bot, slack)
        _, prompt = driver.command("300")
        assert buttons(prompt), prompt
        _, response_url = driver.click(prompt)
        assert "`300` is cancelled" in blocks_text(driver.outcome_at(response_url))
    finally:
        bot.stop()
    mp, sl = mailpartner.url.removeprefix("http://"), slack.url.removeprefix("http://")
    seen = set(proxy.seen)
    assert {f"GET {mp}/v1/bulk-status", f"GET {mp}/v1/message-cancel"} <= seen, proxy.seen  # MailPartner
    assert f"POST {sl}{response_url.removeprefix(slack.url)}" in seen  # the outcome, to its response_url
    assert f"POST {sl}/api/auth.test" in seen  # slack_sdk's reads
    assert len(mailpartner.requests) == 1


@pytest.mark.anyio
async def test_no_proxy_names_the_hosts_reached_directly(world, monkeypatch: pytest.MonkeyPatch) -> None:
    _, mailpartner, proxy = world
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    client = MailPartnerClient(API_KEY, base_url=mailpartner.base_url)
    try:
        assert (await client.cancel("300")).code == 200
    finally:
        await client.aclose()
    assert proxy.seen == [] and len(mailpartner.requests) == 1
    monkeypatch.setenv("NO_PROXY", "")
    assert Proxies().for_url("http://127.0.0.1:9/v1") == proxy.url
    monkeypatch.setenv("HTTPS_PROXY", "http://me:s3cret@proxy.example:3128")
    assert Proxies().describe("https://api.mailpartner.fr/v1") == "through the proxy http://me:***@proxy.example:3128"
    assert "s3cret" not in shown_proxy("http://me:s3cret@proxy.example:3128")


@pytest.mark.anyio
async def test_no_proxy_keeps_slack_off_the_proxy_and_check_says_so(world, monkeypatch, tmp_path: Path) -> None:
    """slack_sdk reads HTTPS_PROXY itself and ignores NO_PROXY: the bot's own choice is what connects."""
    from bot.app import async_web_client
    from bot.settings import Settings

    slack, _, proxy = world
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    settings = Settings.from_env({"SLACK_API_URL": slack.api_url, "MAILPARTNER_SANDBOX": "true"}, console=True)
    client = async_web_client(settings)
    assert client.proxy is None
    await client.api_call("auth.test")
    assert proxy.seen == [] and slack.of("auth.test")
    monkeypatch.delenv("NO_PROXY")
    assert async_web_client(settings).proxy == proxy.url


def test_proxy_settings_are_read_as_curl_reads_them(monkeypatch) -> None:
    from bot.http import proxy_url
    from bot.settings import Settings, SettingsError

    assert proxy_url("127.0.0.1:3128") == ("http://127.0.0.1:3128", "")
    assert proxy_url("https://proxy.example:443")[1] == ""
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    assert Proxies().for_url("https://slack.com/api/") == "http://proxy.example:3128"
    base = {"MAILPARTNER_SANDBOX": "true"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {**base, "HTTPS_PROXY": "socks5://me:s3cret@proxy:1080", "http_proxy": "http://"}, console=True
        )
    assert len(caught.value.problems) == 2
    socks, empty = caught.value.problems
    assert socks.startswith("HTTPS_PROXY uses socks5://") and "s3cret" not in socks
    assert empty.startswith("http_proxy names no host")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback, its certificate self-signed for 127.0.0.1: its URL and that certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to serve HTTPS with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with served(json_answer(200), tls=context) as server:
        yield server.url, cert


@pytest.mark.anyio
async def test_https_goes_through_the_proxy_with_the_certificates_ssl_cert_file_names(
    world, tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, proxy = world
    url, cert = tls_server
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    try:
        tls_context.cache_clear()  # read again: the certificates below
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        http_ = AsyncHttp(timeout=5, connections=2)
        try:
            assert (await http_.request("GET", url + "/message-cancel")).json()["code"] == 200
        finally:
            await http_.aclose()
        assert proxy.seen == [f"CONNECT {httpx.URL(url).netloc.decode()}"]  # a tunnel: the proxy sees no more
        tls_context.cache_clear()  # without it, the certificate is nobody's: refused, as any HTTP program would
        monkeypatch.delenv("SSL_CERT_FILE")
        http_ = AsyncHttp(timeout=5, connections=2)
        try:
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await http_.request("GET", url + "/message-cancel")
        finally:
            await http_.aclose()
    finally:
        tls_context.cache_clear()


def test_check_says_which_proxy_and_blames_it_when_it_fails(world, tmp_path: Path) -> None:
    _, mailpartner, proxy = world
    settings = {"MAILPARTNER_API_KEY": API_KEY, "MAILPARTNER_BASE_URL": mailpartner.base_url}
    through = run_bot(["check"], tmp_path, HTTP_PROXY=proxy.url, **settings)
    assert f"✅ Network: MailPartner through the proxy {proxy.url}" in through.stdout, through.stdout
    assert "✅ MailPartner: MAILPARTNER_API_KEY is @" in through.stdout
    assert any("/v1/me" in target for target in proxy.seen)
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy that is not there
    refused = run_bot(["check"], tmp_path, HTTP_PROXY=dead, **settings)
    line = next(x for x in refused.stdout.splitlines() if x.startswith("❌ MailPartner"))
    assert f"could not be reached through the proxy {dead}" in line and "NO_PROXY" in line, refused.stdout
    assert refused.returncode == 1


def test_socket_mode_dials_slack_through_the_proxy(world, tmp_path: Path) -> None:
    """slack_sdk's Socket Mode client opens TLS inside the tunnel, as Slack's wss:// wants: this checks the
    tunnel is asked of the proxy for the WebSocket's host (the commands through it: test_socket_mode.py)."""
    slack, mailpartner, proxy = world
    port = free_port()  # where the WebSocket would be: the proxy answers 502, the bot dials again
    slack.socket_url = f"wss://127.0.0.1:{port}/link"
    env = socket_mode_env(
        slack.api_url,
        mailpartner.base_url,
        HTTPS_PROXY=proxy.url,  # the WebSocket's wss://
        HTTP_PROXY=proxy.url,  # the local Slack's Web API is http://: its proxy, as curl would choose
        CANCEL_MAIL_STATE_DIR=str(tmp_path / "state"),
    )
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        eventually(lambda: f"CONNECT 127.0.0.1:{port}" in proxy.seen, what="the WebSocket through the proxy")
        assert f"POST {slack.url.removeprefix('http://')}/api/apps.connections.open" in proxy.seen
    finally:
        bot.stop()


def test_socket_mode_keeps_the_websocket_off_the_proxy_no_proxy_names(world, tmp_path: Path) -> None:
    """slack_sdk's Socket Mode client read HTTPS_PROXY alone: a WebSocket NO_PROXY exempts went through it."""
    slack, mailpartner, proxy = world
    port = free_port()  # nothing listens: the bot dials again and again, directly
    slack.socket_url = f"wss://localhost:{port}/link"
    env = socket_mode_env(
        slack.api_url,
        mailpartner.base_url,
        HTTPS_PROXY=proxy.url,
        HTTP_PROXY=proxy.url,
        NO_PROXY="localhost",  # the WebSocket's host; the Web API (127.0.0.1) still goes through the proxy
        CANCEL_MAIL_STATE_DIR=str(tmp_path / "state"),
    )
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        opened = f"POST {slack.url.removeprefix('http://')}/api/apps.connections.open"
        eventually(lambda: opened in proxy.seen, what="the WebSocket's URL asked through the proxy")
        eventually(lambda: f"Cannot connect to host localhost:{port}" in bot.log(), what="a dial, direct")
        assert not [seen for seen in proxy.seen if seen.startswith("CONNECT")], proxy.seen
    finally:
        bot.stop()


@pytest.mark.anyio
async def test_a_refused_certificate_is_said_at_once_and_not_retried(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.mailpartner.answers import FailureKind
    from bot.words.blocks import render_outcome

    url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    tls_context.cache_clear()  # the bundled authorities alone: the self-signed certificate is nobody's
    client = MailPartnerClient(API_KEY, base_url=url, timeout=1, deadline=30)
    try:
        outcome = await client.cancel("300")
    finally:
        await client.aclose()
        tls_context.cache_clear()
    assert outcome.failure is FailureKind.CERTIFICATE and outcome.attempts == 1
    assert "certificate was refused" in render_outcome(outcome, "en") and "SSL_CERT_FILE" in render_outcome(
        outcome, "en"
    )


def test_slack_sdks_calls_share_one_session_on_the_bots_tls_context(make_harness) -> None:
    """By itself slack_sdk opens a session (a DNS lookup, TCP and TLS handshakes) for every call."""
    harness = make_harness()
    session = harness.bot.slack_session
    assert session is not None and harness.bot.app.client.session is session
    assert session.connector is not None and session.connector._ssl is tls_context()  # type: ignore[attr-defined]
    harness.command("300")
    harness.settle()
    assert harness.slack.of("users.info") and not session.closed  # the person's language, asked on it
    harness.bot.shutdown(5.0)
    assert session.closed
