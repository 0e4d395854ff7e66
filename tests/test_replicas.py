"""Layer 3: several `python -m bot` replicas on one PostgreSQL, driven as Slack drives them, what one process
promises holding for all: opposite-order bulk confirms on a busy database, a replica SIGKILLed right after its
acks, and the drain a load balancer can see."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.console.local_slack import LocalSlack
from bot.console.wire import blocks_text
from tests.databases import slow_inserts
from tests.fakes import FakeMailPartner
from tests.test_e2e import BOB, Driver
from tests.test_e2e_store import Replicas
from tests.waiting import eventually, holds_for


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    slack = LocalSlack().start()
    yield slack
    slack.stop()


def released_together(clicks: list[tuple[Driver, dict, str]]) -> list[tuple[httpx.Response, str]]:
    """Every click sent at the same instant, each from a thread of its own, as a crowd clicking would."""
    gate, answers = threading.Barrier(len(clicks)), [None] * len(clicks)

    def click(n: int) -> None:
        driver, prompt, user = clicks[n]
        gate.wait()
        answers[n] = driver.click(prompt, user=user)  # type: ignore[call-overload]

    threads = [threading.Thread(target=click, args=(n,)) for n in range(len(clicks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers  # type: ignore[return-value]


def test_opposite_order_bulk_confirms_on_two_replicas_cancel_each_mail_once(
    tmp_path: Path, slack: LocalSlack, postgres: str
) -> None:
    """Ten pairs of bulk requests name the same two mails in opposite orders, `a b` on one replica and `b a`
    on the other; the twenty clicks come at once, on a database whose every claim insert is 5 ms slower, while
    MailPartner takes a second over each cancel (so every pair's two cancels would overlap). Each mail reaches
    MailPartner once, and every click ends in an outcome or in "already under way"."""
    mailpartner = FakeMailPartner(extra_mails=20, delay=1.0).start()
    replicas = Replicas(tmp_path, slack, mailpartner, postgres)
    try:
        first, second = replicas.start(), replicas.start()
        slow_inserts(postgres, "claims", 0.005)
        pairs = [(f"m{2 * n:04d}", f"m{2 * n + 1:04d}") for n in range(10)]
        clicks = []
        for a, b in pairs:
            clicks.append((first, first.command(f"{a} {b} -- opposite order")[1], BOB))
            clicks.append((second, second.command(f"{b} {a} -- opposite order")[1], BOB))
        answers = released_together(clicks)
        assert [response.status_code for response, _ in answers] == [200] * 20
        for _, url in answers:  # each click's own answer: the outcome, or who is cancelling
            path = url.removeprefix(slack.url)
            told = slack.wait_for(lambda c, p=path: c.path == p, timeout=30)
            assert told, f"nothing said after the click answered at {path}"
        mails = [m for pair in pairs for m in pair]
        eventually(lambda: all(mailpartner.cancels[m] == 1 for m in mails), timeout=30, what="every mail cancelled")
        holds_for(
            lambda: all(len([r for r in mailpartner.requests if r["messageId"] == m]) == 1 for m in mails),
            1.0,
            what="one MailPartner call per mail",
        )
        told = [blocks_text(c.payload) for c in slack.calls if c.is_response_url]
        assert len([t for t in told if "Outcome of cancelling 2 mails" in t]) == 10
        assert len([t for t in told if "already under way" in t]) == 10
    finally:
        replicas.stop()
        mailpartner.stop()
    for bot in replicas.started:
        assert "claim failed" not in bot.log() and "unrecorded" not in bot.log()


def test_a_replica_killed_right_after_its_acks_loses_no_confirm(
    tmp_path: Path, slack: LocalSlack, postgres: str
) -> None:
    """Twenty confirms acked by one replica, which is SIGKILLed the instant the last ack is read, before any
    MailPartner answer: the other replica takes every one over and posts its outcome, once."""
    mailpartner = FakeMailPartner(extra_mails=20, delay=1.0).start()
    replicas = Replicas(tmp_path, slack, mailpartner, postgres)
    try:
        doomed, survivor = replicas.start(), replicas.start()
        mails = [f"m{n:04d}" for n in range(20)]
        prompts = [doomed.command(f"{mail} -- killed after the ack")[1] for mail in mails]
        answers = released_together([(doomed, prompt, BOB) for prompt in prompts])
        doomed.bot.kill()
        killed_at = time.monotonic()
        assert [response.status_code for response, _ in answers] == [200] * 20
        for mail, (_, url) in zip(mails, answers, strict=True):
            outcome = blocks_text(survivor.outcome_at(url, timeout=40))
            assert f"`{mail}`" in outcome and "cancelled" in outcome, outcome
        assert time.monotonic() - killed_at < 40
        holds_for(
            lambda: all(
                len(
                    [c for c in slack.calls if c.path == url.removeprefix(slack.url) and "in_channel" in str(c.payload)]
                )
                == 1
                for _, url in answers
            ),
            1.0,
            what="one outcome per click",
        )
        assert all(mailpartner.cancels[m] == 1 for m in mails)  # cancelled once; a second call answers code 5
        assert all(len([r for r in mailpartner.requests if r["messageId"] == m]) <= 2 for m in mails)
        assert "taking over cancel job" in survivor.bot.log()
    finally:
        replicas.stop()
        mailpartner.stop()


def test_sigterm_answers_503_on_healthz_for_the_grace_while_requests_are_served(
    tmp_path: Path, slack: LocalSlack, postgres: str
) -> None:
    mailpartner = FakeMailPartner(extra_mails=2).start()
    replicas = Replicas(tmp_path, slack, mailpartner, postgres)
    try:
        driver = replicas.start(CANCEL_MAIL_DRAIN_GRACE="3")
        driver.bot.proc.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        health = eventually(lambda: (h := driver.http.get("/healthz")).status_code == 503 and h, what="503")
        assert "stopping" in health.text
        response, prompt = driver.command("m0000 -- during the grace")  # still served: the balancer may send it
        assert response.status_code == 200 and "cancel_mail_confirm" in str(prompt)
        click, url = driver.click(prompt, user=BOB)
        assert click.status_code == 200 and "`m0000` is cancelled" in blocks_text(driver.outcome_at(url))
        assert time.monotonic() - sent_at < 3  # all of it within the grace
        eventually(lambda: _refused(driver), timeout=10, what="the listener closed after the grace")
        assert time.monotonic() - sent_at >= 2.9
        assert driver.bot.proc.wait(30) == 0
    finally:
        replicas.stop()
        mailpartner.stop()
    log = replicas.started[0].log()
    assert "/healthz answers 503 for 3 s" in log


def _refused(driver: Driver) -> bool:
    try:
        httpx.get(driver.bot.url + "/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False
