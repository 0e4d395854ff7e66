"""Layer 3: the store with real processes. `python -m bot` killed with SIGKILL mid-cancel (SQLite: restarted;
PostgreSQL: another replica takes over), two replicas on one PostgreSQL, history after a burst, and a
database that goes away while the bot runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.console.local_slack import LocalSlack
from bot.console.wire import FORM, JSON, app_mention, blocks_text, button_click, buttons
from bot.loop import LoopThread
from bot.store import HistoryEvent, Store, open_store
from tests.fakes import BotProcess, FakeMailPartner, Fault, TcpProxy, bot_env, free_port
from tests.test_e2e import ALICE, BOB, CHANNEL, Driver
from tests.waiting import eventually, holds_for

# A short deadline keeps leases short: a job is taken over 2 + 5 s after its process stops renewing it.
TIMING = {"MAILPARTNER_TIMEOUT": "2", "MAILPARTNER_DEADLINE": "2"}


@pytest.fixture
def fakes() -> Iterator[tuple[LocalSlack, FakeMailPartner]]:
    slack, mailpartner = LocalSlack().start(), FakeMailPartner(extra_mails=40).start()
    yield slack, mailpartner
    mailpartner.stop()
    slack.stop()


class Replicas:
    """Bot processes sharing one store, each with its own log, all stopped at the end."""

    def __init__(self, tmp: Path, slack: LocalSlack, mailpartner: FakeMailPartner, database_url: str) -> None:
        self.tmp, self.slack, self.mailpartner, self.database_url = tmp, slack, mailpartner, database_url
        self.started: list[BotProcess] = []

    def start(self, **extra: str) -> Driver:
        env = bot_env(free_port(), self.slack.api_url, self.mailpartner.base_url, DATABASE_URL=self.database_url)
        env.update({**TIMING, **extra})
        bot = BotProcess(env, self.tmp / f"bot-{len(self.started)}.log")
        self.started.append(bot)
        bot.wait_healthy()
        return Driver(bot, self.slack)

    def stop(self) -> None:
        for bot in self.started:
            bot.stop()
        for bot in self.started:
            assert "Traceback" not in bot.log(), bot.log()


@pytest.fixture
def replicas_on_sqlite(tmp_path: Path, fakes) -> Iterator[Replicas]:
    slack, mailpartner = fakes
    replicas = Replicas(tmp_path, slack, mailpartner, f"sqlite:///{tmp_path}/bot.db")
    yield replicas
    replicas.stop()


@pytest.fixture
def replicas_on_postgres(tmp_path: Path, fakes, postgres: str) -> Iterator[Replicas]:
    slack, mailpartner = fakes
    replicas = Replicas(tmp_path, slack, mailpartner, postgres)
    yield replicas
    replicas.stop()


def wait_for_request(mailpartner: FakeMailPartner, mail: str) -> None:
    eventually(lambda: any(r["messageId"] == mail for r in mailpartner.requests), what=f"{mail} reaching MailPartner")


class Terminal:
    """The replicas' store, as a terminal next to them would open it, on a loop of its own."""

    def __init__(self, database_url: str) -> None:
        self.loop = LoopThread("terminal")
        self.store: Store = self.loop.run(open_store(database_url, migrated=True))

    def history(self, **query: Any) -> list[HistoryEvent] | None:
        return self.loop.run(self.store.history(**query))

    def owed_summary(self) -> tuple[int, float | None] | None:
        return self.loop.run(self.store.owed_summary())

    def close(self) -> None:
        self.loop.run(self.store.close())
        self.loop.close()


@contextlib.contextmanager
def store_of(replicas: Replicas) -> Iterator[Terminal]:
    terminal = Terminal(replicas.database_url)
    try:
        yield terminal
    finally:
        terminal.close()


def kill_mid_cancel(driver: Driver, mailpartner: FakeMailPartner, mail: str) -> str:
    """Ask, confirm, and SIGKILL the bot while MailPartner is still working on the cancel."""
    mailpartner.fault(mail, Fault(delay=1.5))  # the first attempt only: the cancel itself goes through
    _, prompt = driver.command(f"{mail} -- wrong segment")
    _, response_url = driver.click(prompt, user=BOB)
    wait_for_request(mailpartner, mail)
    driver.bot.kill()
    return response_url


def test_sqlite_kill_9_mid_cancel_then_restart_posts_the_outcome(replicas_on_sqlite: Replicas) -> None:
    replicas, mailpartner = replicas_on_sqlite, replicas_on_sqlite.mailpartner
    response_url = kill_mid_cancel(replicas.start(), mailpartner, "m0001")
    killed_at = time.monotonic()
    restarted = replicas.start()
    outcome = blocks_text(restarted.outcome_at(response_url, timeout=30))
    assert "`m0001`" in outcome and "cancelled" in outcome and "Recovered after an interruption" in outcome
    assert "wrong segment" in outcome
    assert time.monotonic() - killed_at < 20
    assert mailpartner.cancels["m0001"] == 1  # the retry answered "already cancelled"


def test_postgres_another_replica_finishes_a_cancel_whose_process_was_killed(replicas_on_postgres: Replicas) -> None:
    replicas, mailpartner = replicas_on_postgres, replicas_on_postgres.mailpartner
    first, second = replicas.start(), replicas.start()
    response_url = kill_mid_cancel(first, mailpartner, "m0002")
    outcome = blocks_text(second.outcome_at(response_url, timeout=30))
    assert "`m0002`" in outcome and "Recovered after an interruption" in outcome
    assert "recover" in second.bot.log().lower() or "taking over" in second.bot.log()


def test_postgres_two_replicas_one_prompt_per_event_one_call_per_mail(replicas_on_postgres: Replicas) -> None:
    replicas, slack, mailpartner = replicas_on_postgres, replicas_on_postgres.slack, replicas_on_postgres.mailpartner
    first, second = replicas.start(), replicas.start()
    ts = f"{int(time.time())}.000321"
    body = app_mention(
        "<@U0BOT00000> cancel m0003 -- wrong list", user=ALICE, channel=CHANNEL, ts=ts, event_id="EvRep1"
    )
    assert first.post(body, JSON).status_code == 200
    redelivered = second.post(body, JSON, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert redelivered.status_code == 200
    (prompt,) = slack.wait_for(lambda c: c.method == "chat.postMessage" and buttons(c.payload))
    holds_for(
        lambda: len([c for c in slack.of("chat.postMessage") if buttons(c.payload)]) == 1,
        1.0,
        what="one prompt for an event both replicas received",
    )

    mailpartner.fault("m0003", Fault(delay=0.5))
    clicks = [
        button_click(
            buttons(prompt.payload)["cancel_mail_confirm"],
            user=user,
            channel=CHANNEL,
            response_url=slack.new_response_url(),
            message_ts=str(prompt.response["ts"]),
            thread_ts=ts,
        )
        for user in (ALICE, BOB)
    ]
    with ThreadPoolExecutor(2) as pool:  # both confirms at the same moment, one on each replica
        answers = list(pool.map(lambda pair: pair[0].post(pair[1], FORM), zip((first, second), clicks, strict=True)))
    assert [a.status_code for a in answers] == [200, 200]
    outcomes = slack.wait_for(
        lambda c: c.method == "chat.postMessage" and "`m0003` is cancelled" in blocks_text(c.payload)
    )
    assert len(outcomes) == 1
    under_way = slack.wait_for(lambda c: "already under way" in blocks_text(c.payload))
    assert under_way
    holds_for(
        lambda: len([r for r in mailpartner.requests if r["messageId"] == "m0003"]) == 1,
        0.5,
        what="one call to MailPartner for a mail both replicas were asked to cancel",
    )


def test_history_after_a_burst_in_slack_and_from_a_terminal(replicas_on_sqlite: Replicas) -> None:
    replicas, slack = replicas_on_sqlite, replicas_on_sqlite.slack
    driver = replicas.start()
    mails = [f"m{n:04d}" for n in range(10, 20)]
    for mail in mails:
        _, prompt = driver.command(f"{mail} -- burst {mail}", user=ALICE)
        driver.click(prompt, "keep" if mail == "m0019" else "confirm", user=BOB)
    for mail in mails[:-1]:
        slack.wait_for(lambda c, m=mail: f"`{m}` is cancelled" in blocks_text(c.payload))
    with store_of(replicas) as store:  # history rows are written in batches off the request path

        def written(action: str) -> int:
            return len(store.history(actions=(action,), limit=500) or ())

        eventually(lambda: (written("request"), written("outcome"), written("keep")) == (10, 9, 1), what="history")
    _, _ = driver.command("history m0012", user=ALICE)
    (answer,) = slack.wait_for(lambda c: "History of mail `m0012`" in blocks_text(c.payload))
    text = blocks_text(answer.payload)
    assert f"<@{ALICE}> asked to cancel `m0012`" in text and "burst m0012" in text
    assert f"<@{BOB}> confirmed the cancel of `m0012`" in text and "`code 200`" in text

    env = bot_env(free_port(), slack.api_url, replicas.mailpartner.base_url, DATABASE_URL=replicas.database_url)
    run = subprocess.run(
        [sys.executable, "-m", "bot", "history", "m0019"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert f"@{BOB} kept `m0019`" in run.stdout and "burst m0019" in run.stdout
    everything = subprocess.run(
        [sys.executable, "-m", "bot", "history", "--since", "1h", "--json", "--limit", "500"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = everything.stdout.splitlines()
    assert sum('"action": "request"' in x for x in lines) == 10 and sum('"action": "outcome"' in x for x in lines) == 9


def test_the_database_going_away_degrades_but_cancels_go_on(tmp_path: Path, fakes, postgres: str) -> None:
    slack, mailpartner = fakes
    url = httpx.URL(postgres.replace("postgresql://", "http://"))
    proxy = TcpProxy(url.host, url.port or 5432).start()
    through_proxy = postgres.replace(f"{url.host}:{url.port or 5432}", f"127.0.0.1:{proxy.port}")
    replicas = Replicas(tmp_path, slack, mailpartner, through_proxy)
    try:
        driver = replicas.start()
        proxy.cut()
        _, prompt = driver.command("m0030 -- database is down")
        _, response_url = driver.click(prompt, user=BOB)
        assert "`m0030` is cancelled" in blocks_text(driver.outcome_at(response_url))
        health = driver.http.get("/healthz")
        assert health.status_code == 200 and "store degraded" in health.text
        proxy.start()
        # the sweeper's next call heals it
        eventually(lambda: "degraded" not in driver.http.get("/healthz").text, what="the store healing")
    finally:
        replicas.stop()
        proxy.cut()
    log = replicas.started[0].log()
    assert "history row lost" in log and "works again" in log


def test_a_store_that_cannot_be_reached_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = bot_env(free_port(), "http://127.0.0.1:9/api/", "http://127.0.0.1:9/v1")
    env["DATABASE_URL"] = "postgresql://bot:s3cret-pass@127.0.0.1:9/bot"
    run = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [x for x in run.stderr.splitlines() if "DATABASE_URL" in x]
    assert "postgresql://bot:***@127.0.0.1:9/bot" in line and "s3cret-pass" not in run.stderr


def test_migrate_command(tmp_path: Path) -> None:
    env = bot_env(free_port(), "http://127.0.0.1:9/api/", "http://127.0.0.1:9/v1")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/fresh.db"
    run = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "revision 0004" in run.stdout, run.stderr


# -- Slack down: the outcome is owed, and a process that is killed or drained leaves it to the next ------


def confirm_in_an_outage(driver: Driver, slack: LocalSlack, mails: list[str]) -> list[str]:
    """Ask for each mail, then confirm them all while Slack is down; returns each click's response_url."""
    prompts = [driver.command(f"{mail} -- wrong segment")[1] for mail in mails]
    slack.outage(600, "503")
    return [driver.click(prompt, user=BOB)[1] for prompt in prompts]


def wait_for_owed(replicas: Replicas, count: int, timeout: float = 15) -> None:
    with store_of(replicas) as store:
        eventually(lambda: (store.owed_summary() or (0, None))[0] >= count, timeout=timeout, what=f"{count} owed")


def answered_while_down(slack: LocalSlack) -> None:
    """A post the killed process sent just before it died may still wait in a socket for the fake's thread, on
    a busy machine: let the fake, still down, refuse each one before Slack comes back. (A real Slack could
    take such a post once back: one post more, which is all a kill -9 mid-call allows.)"""

    def settled() -> bool:
        before = slack.refused_in_outage
        try:
            holds_for(lambda: slack.refused_in_outage == before, 0.5, what="no more refusals")
        except AssertionError:
            return False
        return True

    eventually(settled, timeout=20, what="every post of the killed process refused")


@pytest.mark.parametrize("store", ["replicas_on_sqlite", "replicas_on_postgres"])
def test_kill_9_in_a_slack_outage_the_next_process_posts_every_outcome_once(request, store: str) -> None:
    """SQLite: the process restarted; PostgreSQL: a second replica, running all along, takes the messages."""
    replicas: Replicas = request.getfixturevalue(store)
    slack, mailpartner = replicas.slack, replicas.mailpartner
    first = replicas.start()
    other = replicas.start() if store == "replicas_on_postgres" else None
    mails = [f"m{i:04d}" for i in range(10)]
    urls = confirm_in_an_outage(first, slack, mails)
    wait_for_owed(replicas, len(mails))  # every outcome is owed: MailPartner answered, Slack did not take it
    first.bot.kill()
    answered_while_down(slack)
    slack.down_until = 0.0  # Slack is back
    back = time.monotonic()
    restarted = other or replicas.start()
    for mail, url in zip(mails, urls, strict=True):
        text = blocks_text(restarted.outcome_at(url, timeout=40))
        assert f"`{mail}`" in text and "is cancelled" in text and "Recovered" not in text
    assert time.monotonic() - back < 40
    for mail, url in zip(mails, urls, strict=True):
        path = url.removeprefix(slack.url)
        posted = [c for c in slack.calls if c.path == path and c.payload.get("response_type") == "in_channel"]
        assert len([c for c in posted if "failed" not in c.response]) == 1, mail  # once
        assert len([r for r in mailpartner.requests if r["messageId"] == mail]) == 1  # never asked again


def test_drain_in_a_slack_outage_says_what_is_owed_and_the_next_process_posts_it(replicas_on_sqlite: Replicas) -> None:
    replicas, slack = replicas_on_sqlite, replicas_on_sqlite.slack
    first = replicas.start()
    urls = confirm_in_an_outage(first, slack, ["m0020", "m0021"])
    wait_for_owed(replicas, 2)
    first.bot.stop()
    log = first.bot.log()
    assert "2 message(s) still owed" in log and "every in-flight cancel finished and was posted" not in log
    restarted = replicas.start()  # Slack is still down: the process starts all the same
    eventually(lambda: "starting anyway" in restarted.bot.log(), what="the sign-in, in the background, said so")
    health = restarted.http.get("/healthz")
    assert health.status_code == 200 and "2 message(s) owed to people, waiting for Slack" in health.text
    slack.down_until = 0.0  # Slack is back
    for url in urls:
        assert "is cancelled" in blocks_text(restarted.outcome_at(url, timeout=40))
    _, prompt = restarted.command("m0022")  # and Slack's requests are served: Bolt signs in on the first
    assert buttons(prompt)
