"""Operating the bot: Prometheus metrics (the table, counts through the real App, the bot process's own
port, apart from Slack's) and JSON logs (every line parses, audit fields on top, no secret)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.audit.logs import configure_logging
from bot.audit.metrics import RESULTS, Metrics, result_label
from bot.console.wire import blocks_text
from tests.conftest import ALICE, BOB, MALLORY, Harness
from tests.fakes import (
    API_KEY,
    BOT_TOKEN,
    SIGNING_SECRET,
    BotProcess,
    FakeMailPartner,
    Fault,
    bot_env,
    free_port,
    pids_of,
)
from tests.test_e2e import Driver

# -- metrics ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "failure", "result"),
    [
        (200, None, "cancelled"),
        (5, None, "already_cancelled"),
        (4, None, "not_found"),
        (6, None, "too_late"),
        (7, None, "already_sent"),
        (10, None, "key_refused"),
        (1, None, "key_refused"),
        (3, None, "id_missing"),
        (11, None, "unexpected_code"),
        (None, "timeout", "timeout"),
        (None, "connection", "connection"),
        (None, "http_error", "http_error"),
        (None, "malformed", "malformed"),
    ],
)
def test_every_outcome_has_its_result_label(code: int | None, failure: str | None, result: str) -> None:
    assert result_label(code, failure) == result and result in RESULTS


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_cancel_moves_the_right_counters(make_harness, mailpartner) -> None:
    harness: Harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}")
    mailpartner.fault("m0001", Fault(hang=True, times=9))
    mailpartner.unreported.add("304")  # no delivery report: the prompt lets it through, MailPartner says 7
    _, prompt = harness.command("300 304 999 -- wrong segment")
    harness.click(prompt, user=BOB)
    _, prompt = harness.command("m0001")
    harness.click(prompt)
    harness.command("300", user=MALLORY)
    harness.settle(20)
    metrics = harness.bot.metrics
    assert value(metrics, "cancel_mail_requests_total", via="command") == 2
    assert value(metrics, "cancel_mail_requests_total", via="mention") == 0
    assert value(metrics, "cancel_mail_refusals_total", reason="not_allowed_user") == 1
    for result, count in (("cancelled", 1), ("already_sent", 1), ("not_found", 1), ("timeout", 1), ("too_late", 0)):
        assert value(metrics, "cancel_mail_outcomes_total", result=result, account="default") == count, result
    # One per attempt, by call: a cancel's latency never mixes with the preview's delivery reports.
    assert value(metrics, "cancel_mail_mailpartner_seconds_count", call="message-cancel") >= 4
    assert value(metrics, "cancel_mail_mailpartner_seconds_count", call="bulk-status") == 4
    assert value(metrics, "cancel_mail_mailpartner_seconds_count", call="me") == 0
    assert value(metrics, "cancel_mail_outcome_seconds_count") == 2  # one per posted outcome
    assert value(metrics, "cancel_mail_in_flight") == 0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_the_bot_process_serves_metrics_on_their_own_port(tmp_path: Path) -> None:
    from bot.console.local_slack import LocalSlack

    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        metrics_port = free_port()
        env = bot_env(
            free_port(),
            slack.api_url,
            mailpartner.base_url,
            METRICS_PORT=str(metrics_port),
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            mailpartner.unreported.add("304")  # no delivery report: the prompt lets it through, MailPartner says 7
            for mail, words in (("300", "is cancelled"), ("304", "already sent"), ("999", "not found")):
                _, prompt = driver.command(mail)
                _, url = driver.click(prompt)
                assert words in blocks_text(driver.outcome_at(url))
            text = scrape(metrics_port)  # counted from the audit line, written before Slack is told
            assert 'cancel_mail_outcomes_total{account="default",result="cancelled"} 1.0' in text
            assert 'cancel_mail_outcomes_total{account="default",result="already_sent"} 1.0' in text
            assert 'cancel_mail_outcomes_total{account="default",result="not_found"} 1.0' in text
            assert 'cancel_mail_requests_total{via="command"} 3.0' in text
            assert "cancel_mail_mailpartner_seconds_bucket" in text and "cancel_mail_in_flight" in text
            # Every labelled family is there from the start, at zero: increase() then sees a first failure.
            for method in ("response_url", "chat.postMessage", "chat.postEphemeral", "chat.update"):
                assert f'cancel_mail_slack_post_failures_total{{method="{method}"}} 0.0' in text, method
            assert 'cancel_mail_refusals_total{reason="own_request"} 0.0' in text
            assert driver.http.get("/metrics").status_code == 404  # never on the Slack port
        finally:
            bot.stop()
            mailpartner.stop()
    assert "Traceback" not in bot.log()


def test_metrics_port_must_differ_from_the_slack_port(tmp_path: Path) -> None:

    env = bot_env(3999, "http://127.0.0.1:9/api/", "http://127.0.0.1:9/v1", METRICS_PORT="3999")
    run = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "METRICS_PORT must differ from PORT" in run.stderr


# -- JSON logs -------------------------------------------------------------------------------------------


def test_json_lines_parse_lift_audit_fields_and_mask_secrets() -> None:
    stream = io.StringIO()
    configure_logging("INFO", [API_KEY, BOT_TOKEN], stream, json_lines=True)
    try:
        from bot.audit.trail import audit

        logging.getLogger("bot.test").info("calling %s?apiKey=%s", "https://api.example/v1", API_KEY)
        audit(
            "request",
            actor="U0ALICE000",
            channel="C0ONCALL00",
            mail_ids=["300"],
            via="command",
            reason=f"x {BOT_TOKEN}",
        )
        try:
            raise RuntimeError(f"boom {API_KEY}")
        except RuntimeError:
            logging.getLogger("bot.test").exception("failed")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "INFO", "ERROR"]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    request = lines[1]
    assert request["logger"] == "bot.audit" and request["message"] == "audit request"
    assert (request["action"], request["via"], request["mail_ids"]) == ("request", "command", ["300"])
    assert "Traceback" in lines[2]["exc_info"]
    text = stream.getvalue()
    assert API_KEY not in text and BOT_TOKEN not in text and "[REDACTED]" in text


def test_the_bot_process_logs_only_json_lines(tmp_path: Path) -> None:
    from bot.console.local_slack import LocalSlack

    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        env = bot_env(
            free_port(),
            slack.api_url,
            mailpartner.base_url,
            LOG_FORMAT="json",
            DATABASE_URL=f"sqlite:///{tmp_path}/b.db",
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            _, prompt = driver.command("300 -- json please")
            _, url = driver.click(prompt)
            driver.outcome_at(url)
        finally:
            bot.stop()
            mailpartner.stop()
    lines = [json.loads(line) for line in bot.log().splitlines() if line.strip()]
    assert any(line.get("action") == "outcome" and line.get("reason") == "json please" for line in lines)
    assert any(line["logger"] == "bot.ops.server" for line in lines)  # the server's own lines too
    assert API_KEY not in bot.log() and SIGNING_SECRET not in bot.log() and BOT_TOKEN not in bot.log()


# -- one event loop --------------------------------------------------------------------------------------


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_calls_in_flight_hold_no_thread_and_the_kernel_places_the_process(tmp_path: Path) -> None:
    """Fifty cancels waiting on a slow MailPartner at once: each is a coroutine on the one event loop, so the
    process's threads stay few; and no thread is kept to a CPU: the kernel places them all."""
    from bot.console.local_slack import LocalSlack
    from tests.waiting import eventually

    with LocalSlack() as slack:
        mailpartner = FakeMailPartner(delay=3.0, extra_mails=50).start()
        env = bot_env(free_port(), slack.api_url, mailpartner.base_url, DATABASE_URL=f"sqlite:///{tmp_path}/b.db")
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            prompts = [driver.command(f"m{i:04d}")[1] for i in range(50)]
            (server,) = pids_of(bot.proc.pid)
            with ThreadPoolExecutor(10) as pool:
                list(pool.map(driver.click, prompts))
            eventually(lambda: len(mailpartner.requests) == 50, what="fifty cancels under way at MailPartner")
            assert threads_of(server) <= 16, threads_of(server)
            allowed = frozenset(os.sched_getaffinity(0))
            masks = {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{server}/task")}
            assert masks == {allowed}
        finally:
            bot.stop()
            mailpartner.stop()
