"""Layer 3: `python -m bot` as a process in HTTP mode, a fake Slack Web API and a fake MailPartner on
loopback, driven by signed HTTP requests exactly as Slack sends them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bot.console.local_slack import LocalSlack
from bot.console.wire import FORM, JSON, app_mention, blocks_text, button_click, buttons, signed_headers, slash_command
from tests.fakes import (
    API_KEY,
    BOT_TOKEN,
    SIGNING_SECRET,
    BotProcess,
    FakeMailPartner,
    Fault,
    answer_to,
    bot_env,
    free_port,
)
from tests.waiting import eventually, holds_for

ALICE, BOB = "U0ALICE000", "U0BOB00000"
CHANNEL = "C0ONCALL00"


class Driver:
    """Plays Slack's side: signs and posts commands, clicks and events to the bot over HTTP."""

    def __init__(self, bot: BotProcess, slack: LocalSlack) -> None:
        self.bot, self.slack = bot, slack
        self.http = httpx.Client(base_url=bot.url, timeout=10)

    def post(
        self,
        body: str,
        content_type: str,
        *,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        **headers: str,
    ) -> httpx.Response:
        signed = signed_headers(secret, body, timestamp=timestamp, content_type=content_type)
        return self.http.post("/slack/events", content=body, headers={**signed, **headers})

    def command(self, text: str, user: str = ALICE) -> tuple[httpx.Response, dict[str, Any]]:
        """The ack, and what the person then sees: the ack, or the prompt that takes its place."""
        url = self.slack.new_response_url()
        response = self.post(slash_command(text, user=user, channel=CHANNEL, response_url=url), FORM)
        try:
            return response, answer_to(self.slack, url, response.json())
        except json.JSONDecodeError:
            return response, {"text": response.text}

    def click(
        self, prompt: dict[str, Any], action: str = "confirm", user: str = ALICE, **where: str
    ) -> tuple[httpx.Response, str]:
        response_url = self.slack.new_response_url()
        body = button_click(
            buttons(prompt)[f"cancel_mail_{action}"], user=user, channel=CHANNEL, response_url=response_url, **where
        )
        return self.post(body, FORM), response_url

    def drain_mid_cancel(self, process: subprocess.Popen[bytes], mailpartner: FakeMailPartner, mail: str) -> None:
        """Confirm a cancel of `mail`, SIGTERM `process` once MailPartner has it, and see the drain post it."""
        _, prompt = self.command(mail)
        _, response_url = self.click(prompt)
        eventually(lambda: mailpartner.requests, what="the cancel reaching MailPartner")
        process.send_signal(signal.SIGTERM)
        outcome = self.outcome_at(response_url, timeout=20)
        assert f"`{mail}` is cancelled" in blocks_text(outcome)
        assert process.wait(30) == 0

    def outcome_at(self, response_url: str, timeout: float = 15) -> dict[str, Any]:
        path = response_url.removeprefix(self.slack.url)
        found = self.slack.wait_for(
            lambda c: c.path == path and c.payload.get("response_type") == "in_channel", timeout=timeout
        )
        assert found, f"no outcome posted to {path}"
        return found[0].payload


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Driver, FakeMailPartner, LocalSlack]]:
    slack = LocalSlack().start()
    mailpartner = FakeMailPartner(extra_mails=100).start()
    # 304 was sent: with its delivery report the prompt would offer no confirm; without one (as MailPartner
    # may answer), the confirm stays and MailPartner's code 7 is what the channel reads.
    mailpartner.unreported.add("304")
    env = bot_env(free_port(), slack.api_url, mailpartner.base_url, MAILPARTNER_TIMEOUT="1", MAILPARTNER_DEADLINE="3")
    bot = BotProcess(env, tmp_path_factory.mktemp("bot") / "bot.log")
    try:
        bot.wait_healthy()
        yield Driver(bot, slack), mailpartner, slack
    finally:
        bot.stop()
        mailpartner.stop()
        slack.stop()
    log = bot.log()
    assert API_KEY not in log and SIGNING_SECRET not in log and BOT_TOKEN not in log
    assert "Traceback" not in log, log


CASES = [
    ("300", None, "`300` is cancelled", 200),
    # The sandbox's 305 is cancelled, and its delivery report says so: it gets no button (test_first_week.py).
    # MailPartner's real reports may not say it: the click then learns it.
    (
        "m0098",
        Fault(body='{"success": false, "code": 5, "message": "L’envoi du mail a déjà été annulé"}'),
        "already",
        5,
    ),
    ("unknown-1", None, "not found", 4),
    ("303", None, "Too late", 6),
    ("304", None, "already sent", 7),
    ("m0090", Fault(body='{"success": false, "code": 10, "message": "Clé API incorrecte"}'), "API key", 10),
    ("m0091", Fault(body='{"success": false, "code": 1, "message": "La Clé API est requise"}'), "key is missing", 1),
    ("m0092", Fault(body='{"success": false, "code": 3, "message": "L’ID du message est requis"}'), "id is missing", 3),
    (
        "m0093",
        Fault(body='{"success": false, "code": 11, "message": "Crédits insuffisants"}'),
        "Crédits insuffisants",
        11,
    ),
    ("m0094", Fault(status=500, body="<h1>down</h1>", times=9), "HTTP 500", None),
    ("m0095", Fault(body="not json at all"), "cannot read", None),
    ("m0096", Fault(hang=True, times=9), "did not answer in time", None),
    ("m0097", Fault(reset=True, times=99), "Could not reach MailPartner", None),
]


@pytest.mark.parametrize(("mail", "fault", "words", "code"), CASES, ids=[c[0] for c in CASES])
def test_prompt_click_outcome(world, mail: str, fault: Fault | None, words: str, code: int | None) -> None:
    driver, mailpartner, _ = world
    if fault:
        mailpartner.fault(mail, fault)
    started = time.monotonic()
    response, prompt = driver.command(mail)
    assert response.status_code == 200 and prompt["response_type"] == "ephemeral"
    assert buttons(prompt)["cancel_mail_confirm"]["style"] == "danger"
    click, response_url = driver.click(prompt)
    assert click.status_code == 200 and time.monotonic() - started < 3
    outcome = blocks_text(driver.outcome_at(response_url))
    assert words in outcome and f"`{mail}`" in outcome and f"<@{ALICE}>" in outcome
    assert (f"`code {code}`" in outcome) if code is not None else ("`code" not in outcome)
    assert API_KEY not in outcome


def test_forged_and_stale_signatures_are_refused(world) -> None:
    driver, mailpartner, _ = world
    before = len(mailpartner.requests)
    body = slash_command("300", user=ALICE, channel=CHANNEL, response_url=driver.slack.new_response_url())
    assert driver.post(body, FORM, secret="not-the-secret").status_code == 401
    assert driver.post(body, FORM, timestamp=int(time.time()) - 6 * 60).status_code == 401
    (_, prompt) = driver.command("m0001")
    click_body = button_click(
        buttons(prompt)["cancel_mail_confirm"],
        user=ALICE,
        channel=CHANNEL,
        response_url=driver.slack.new_response_url(),
    )
    assert driver.post(click_body, FORM, secret="forged").status_code == 401
    assert driver.http.post("/slack/events", content=click_body, headers={"Content-Type": FORM}).status_code == 401
    holds_for(lambda: len(mailpartner.requests) == before, 0.3, what="no call to MailPartner")


@pytest.mark.parametrize("text", ["", "help", "300;rm", "é"])
def test_invalid_input_gets_usage(world, text: str) -> None:
    driver, _, _ = world
    response, message = driver.command(text)
    assert response.status_code == 200 and not buttons(message)
    # `help` and an empty command: the whole usage; a typo: what is wrong, and where the rest is.
    assert ("/cancel-mail <id>" if text in ("", "help") else "/cancel-mail help") in message["text"]


def test_keep(world) -> None:
    driver, mailpartner, slack = world
    _, prompt = driver.command("m0002")
    _, response_url = driver.click(prompt, "keep")
    path = response_url.removeprefix(slack.url)
    (note,) = slack.wait_for(lambda c: c.path == path)
    assert "kept `m0002`" in blocks_text(note.payload)
    assert all(r["messageId"] != "m0002" for r in mailpartner.requests)


def test_thread_flow_over_http(world) -> None:
    driver, mailpartner, slack = world
    ts = f"{int(time.time())}.000777"
    body = app_mention("<@U0BOT00000> cancel m0003", user=ALICE, channel=CHANNEL, ts=ts, event_id="Ev0E2E0001")
    assert driver.post(body, JSON).status_code == 200
    retry = driver.post(body, JSON, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    (prompt_call,) = slack.wait_for(lambda c: c.method == "chat.postMessage" and c.payload.get("thread_ts") == ts)
    prompt_ts = prompt_call.response["ts"]
    driver.click(prompt_call.payload, user=BOB, message_ts=prompt_ts, thread_ts=ts)
    posts = slack.wait_for(lambda c: c.method == "chat.postMessage" and c.payload.get("thread_ts") == ts, count=2)
    assert "`m0003` is cancelled" in blocks_text(posts[1].payload)
    updates = slack.wait_for(lambda c: c.method == "chat.update" and c.payload.get("ts") == prompt_ts, count=2)
    assert f"<@{BOB}> confirmed" in blocks_text(updates[-1].payload) and not buttons(updates[-1].payload)

    def in_thread() -> list:
        return [c for c in slack.of("chat.postMessage") if c.payload.get("thread_ts") == ts]

    holds_for(lambda: len(in_thread()) == 2, 0.3, what="no second prompt for the redelivered event")
    assert mailpartner.cancels["m0003"] == 1


def test_burst_of_commands_then_clicks(world) -> None:
    """A small version of the load target: every ack fast, every mail cancelled once, every outcome posted."""
    driver, mailpartner, _ = world
    mails = [f"m{i:04d}" for i in range(10, 40)]
    for mail in mails:
        mailpartner.fault(mail, Fault(delay=0.5))  # under the 1 s timeout set for this module
    with ThreadPoolExecutor(len(mails)) as pool:
        timed = lambda f, *a: (lambda t0: (f(*a), time.monotonic() - t0))(time.monotonic())  # noqa: E731
        commands = list(pool.map(lambda m: timed(driver.command, m), mails))
        clicks = list(pool.map(lambda c: timed(driver.click, c[0][1]), commands))
    acks = [t for _, t in commands] + [t for _, t in clicks]
    assert all(r[0].status_code == 200 for (r, _) in commands) and all(r[0].status_code == 200 for (r, _) in clicks)
    assert max(acks) < 1.5, max(acks)
    outcomes = [driver.outcome_at(url) for ((_, url), _) in clicks]
    assert all("is cancelled" in blocks_text(o) for o in outcomes)
    assert all(mailpartner.cancels[m] == 1 for m in mails)


def test_healthz(world) -> None:
    driver, _, _ = world
    response = driver.http.get("/healthz")
    # "ok", then what this process still owes people, if anything (an earlier test may have left one)
    assert response.status_code == 200 and response.text.split(";")[0].strip() == "ok"
    assert driver.http.get("/nope").status_code == 404


def test_sigterm_mid_cancellation_still_posts_outcome(tmp_path: Path) -> None:
    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        mailpartner.fault("300", Fault(delay=2.0))
        bot = BotProcess(bot_env(free_port(), slack.api_url, mailpartner.base_url), tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            Driver(bot, slack).drain_mid_cancel(bot.proc, mailpartner, "300")
        finally:
            bot.stop()
            mailpartner.stop()
        assert "every in-flight cancel finished" in bot.log()


def test_bad_settings_exit_with_one_line_per_problem(tmp_path: Path) -> None:
    env = bot_env(
        free_port(),
        "http://127.0.0.1:9/api/",
        "http://127.0.0.1:9/v1",
        SLACK_BOT_TOKEN="xoxp-wrong",
        PORT="eighty",
        MAILPARTNER_TIMEOUT="soon",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.strip().startswith("- SLACK_BOT_TOKEN") for line in lines)
    assert any(line.strip().startswith("- PORT") for line in lines)
    assert any(line.strip().startswith("- MAILPARTNER_TIMEOUT") for line in lines)
    assert "Traceback" not in result.stderr


def test_refused_token_exits_clearly(tmp_path: Path) -> None:
    with LocalSlack() as slack:
        slack.fail("auth.test", error="invalid_auth", times=100)  # a refused token is refused every time
        env = bot_env(free_port(), slack.api_url, "http://127.0.0.1:9/v1")
        result = subprocess.run(
            [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 2 and "invalid_auth" in result.stderr and "Traceback" not in result.stderr


def test_a_slack_web_api_that_never_answers_does_not_hold_the_start(tmp_path: Path) -> None:
    """Slack's Web API accepts connections and never answers: /healthz answers at once, saying the sign-in
    is under way, and a command gets its prompt; before, the first 200 came 11.5 s after the start."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0), backlog=64)  # connections complete; nothing is ever read
    mailpartner = FakeMailPartner().start()
    with LocalSlack() as slack:
        env = bot_env(free_port(), f"http://127.0.0.1:{silent.getsockname()[1]}/api/", mailpartner.base_url)
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            health = driver.http.get("/healthz")
            assert health.status_code == 200 and "signing in to Slack" in health.text, health.text
            response, prompt = driver.command("300 -- Slack's API is silent")
            assert response.status_code == 200 and "cancel_mail_confirm" in buttons(prompt), prompt
            later = driver.http.get("/healthz").text  # it really never answered: still waiting, or given up on
            assert "signing in to Slack" in later or "Slack is unreachable" in later, later
        finally:
            bot.stop()
            mailpartner.stop()
            silent.close()
    assert "Traceback" not in bot.log()


def test_a_french_speakers_first_private_prompt_is_in_french(tmp_path: Path) -> None:
    """The prompt comes after the preview: it waits for the person's language (bounded), even the first time."""
    mailpartner = FakeMailPartner().start()
    with LocalSlack() as slack:
        slack.locales[ALICE] = "fr-FR"
        bot = BotProcess(bot_env(free_port(), slack.api_url, mailpartner.base_url), tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            _, prompt = Driver(bot, slack).command("302")
        finally:
            bot.stop()
            mailpartner.stop()
    assert "Annuler l'envoi programmé du mail `302`" in blocks_text(prompt), blocks_text(prompt)


def test_thread_rules_over_http_outsider_requester_then_second_person(tmp_path: Path) -> None:
    mallory = "U0MALLORY0"
    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        env = bot_env(
            free_port(),
            slack.api_url,
            mailpartner.base_url,
            CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}",
            CANCEL_MAIL_REQUIRE_SECOND_PERSON="true",
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            bot.wait_healthy()
            driver = Driver(bot, slack)
            ts = f"{int(time.time())}.000888"
            driver.post(app_mention("<@U0BOT00000> cancel 300", user=ALICE, channel=CHANNEL, ts=ts), JSON)
            (prompt_call,) = slack.wait_for(lambda c: c.method == "chat.postMessage" and buttons(c.payload))
            prompt, prompt_ts = prompt_call.payload, prompt_call.response["ts"]
            assert "second person" in blocks_text(prompt)
            for user, words in ((mallory, "not allowed"), (ALICE, "second person must confirm")):
                _, url = driver.click(prompt, user=user, message_ts=prompt_ts, thread_ts=ts)
                path = url.removeprefix(slack.url)
                (note,) = slack.wait_for(lambda c, p=path: c.path == p)
                assert note.payload["response_type"] == "ephemeral" and words in blocks_text(note.payload)
            assert mailpartner.requests == [] and slack.of("chat.update") == []
            driver.click(prompt, user=BOB, message_ts=prompt_ts, thread_ts=ts)
            posts = slack.wait_for(
                lambda c: c.method == "chat.postMessage" and c.payload.get("thread_ts") == ts, count=2
            )
            assert "`300` is cancelled" in blocks_text(posts[1].payload)
            assert f"requested by <@{ALICE}>" in blocks_text(posts[1].payload)
        finally:
            bot.stop()
            mailpartner.stop()
    audit = [json.loads(line.split("bot.audit: ", 1)[1]) for line in bot.log().splitlines() if "bot.audit: " in line]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("request", ALICE),
        ("refusal", mallory),
        ("refusal", ALICE),
        ("confirm", BOB),
        ("outcome", BOB),
    ]
    assert [a.get("refusal") for a in audit[1:3]] == ["not_allowed_user", "own_request"]


def _malformed_bodies() -> list[tuple[str, str]]:
    """Signed bodies of every wrong shape: 200 of them, as a fuzzer or a broken proxy would send."""
    payloads: list[object] = [
        "{nope",
        [1, 2],
        {"type": "block_actions", "actions": [{"action_id": "cancel_mail_confirm", "value": "x"}]},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "drop_table"}]},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": "x"},
        {"type": "view_submission", "user": {"id": "U1"}, "view": "x"},
        {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": {"callback_id": "nope", "state": {"values": 5}}},
        {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": None},
        {"type": "shortcut", "callback_id": "cancel_mail_form"},
        {"type": "message_action", "user": "U1", "callback_id": "cancel_mail_from_message", "trigger_id": "t"},
    ]
    forms = [("payload=" + quote(p if isinstance(p, str) else json.dumps(p)), FORM) for p in payloads]
    forms += [("command=%2Fcancel-mail&text=300", FORM), ("command=%2Fcancel-mail&user_id=U1&text=300", FORM)]
    events: list[object] = [
        [1],
        {"foo": 1},
        {"type": "event_callback", "event": "x"},
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "text": "cancel 300"}},
        {"type": "event_callback", "event_id": "Ev2", "event": {"type": "function_executed", "inputs": 5}},
        {"type": "url_verification"},
    ]
    jsons = [(json.dumps(e), JSON) for e in events] + [("{", JSON), ("\xff", JSON)]
    cases = forms + jsons
    return [cases[i % len(cases)] for i in range(200)]


def test_signed_but_malformed_requests_get_400_and_one_log_line_each(world) -> None:
    driver, mailpartner, _ = world
    before = len(mailpartner.requests)
    answers = [driver.post(body, content_type).status_code for body, content_type in _malformed_bodies()]
    assert set(answers) == {400}, sorted(set(answers))
    unsigned = driver.post("payload=%7Bnope", FORM, secret="not-the-secret")
    assert unsigned.status_code == 401  # the signature is checked first, as before
    assert len(mailpartner.requests) == before
    log = driver.bot.log()
    assert log.count("refused a request with a malformed body (400)") >= 200
    assert "Traceback" not in log
    response, prompt = driver.command("301")  # and the bot goes on serving
    assert response.status_code == 200 and buttons(prompt)
