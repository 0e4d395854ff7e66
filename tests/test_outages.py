"""Slack itself down: every message owed to a person arrives once Slack is back, once, in order, across a
drain and another process, and by another way when the first one is closed for good."""

from __future__ import annotations

import time

import pytest

from bot.cancels.recovery import Sweeper
from bot.console.local_slack import LocalSlack
from bot.console.wire import blocks_text
from bot.http import RetryPolicy
from bot.outbound.outbox import Outbox
from bot.outbound.replies import Conversation
from bot.store import OwedRecord, open_store
from bot.store.store import Owe
from tests.conftest import ALICE, BOB, ONCALL, Harness
from tests.databases import lapse
from tests.fakes import FakeMailPartner
from tests.waiting import eventually

SHORT = RetryPolicy(first=0.05, cap=0.3)  # the production cap is 30 s: tests wait less for Slack's return


def quick(make_harness, database_url: str = "", **env: str) -> Harness:
    """A bot whose outbox tries again within 0.3 s while Slack is down (30 s in production)."""
    return make_harness(database_url, outbox=Outbox(backoff=SHORT), **env)


def outcomes(slack: LocalSlack, mail: str) -> list[str]:
    """Every outcome for `mail` Slack took, by any way."""
    return [
        blocks_text(c.payload)
        for c in slack.calls
        if "failed" not in c.response and f"`{mail}` is cancelled" in blocks_text(c.payload)
    ]


def thread_prompts(harness: Harness, count: int) -> list[tuple[dict, str, str]]:
    """`count` thread prompts for mails m0000…, each in its own thread: (prompt, its ts, the thread)."""
    made = []
    for i in range(count):
        _, thread = harness.mention(f"<@U0BOT00000> cancel m{i:04d}")
        harness.settle()
        made.append((*harness.thread_prompt(), thread))
    return made


@pytest.fixture
def mailpartner():
    fake = FakeMailPartner(extra_mails=40).start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("how", ["503", "drop", "hang"])
def test_every_outcome_arrives_once_after_an_outage(make_harness, slack: LocalSlack, mailpartner, how) -> None:
    harness = quick(make_harness)
    prompts = thread_prompts(harness, 20)
    slack.outage(5.0, how)
    for prompt, ts, thread in prompts:
        harness.click(prompt, user=BOB, message_ts=ts, thread_ts=thread)
    # the cancels answer, and their outcomes are owed
    eventually(lambda: (harness.run(harness.bot.store.owed_summary()) or (0,))[0] >= 20, what="20 outcomes owed")
    assert harness.bot.service.replier.ledger.wait_idle(0.5) is False  # Slack is down: they stay owed
    harness.settle(30)
    for i in range(20):
        assert len(outcomes(slack, f"m{i:04d}")) == 1, f"m{i:04d}"
        assert mailpartner.cancels[f"m{i:04d}"] == 1
    assert slack.refused_in_outage > 0
    assert harness.run(harness.bot.store.owed_summary()) == (0, None)  # every one settled


def test_a_drain_in_an_outage_hands_the_outcomes_to_the_next_process(
    make_harness, slack: LocalSlack, mailpartner, tmp_path, audit_lines
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first = quick(make_harness, url)
    prompts = thread_prompts(first, 5)
    slack.outage(60, "503")
    for prompt, ts, thread in prompts:
        first.click(prompt, user=BOB, message_ts=ts, thread_ts=thread)
    assert not first.bot.service.wait_idle(1.0)  # owed, not delivered
    started = time.monotonic()
    assert first.bot.shutdown(30.0) is False  # drained with messages still owed: handed back
    assert time.monotonic() - started < 10  # Slack is down: the drain does not wait out its 30 s
    assert [m for m in (f"m{i:04d}" for i in range(5)) if mailpartner.cancels[m] != 1] == []

    slack.down_until = 0.0  # Slack is back (a bot signs in to Slack as it starts)
    second = quick(make_harness, url)
    second.run(sweeper_of(second).sweep())
    second.settle(20)
    for i in range(5):
        (text,) = outcomes(slack, f"m{i:04d}")
        assert "Recovered" not in text  # posted as it was rendered: MailPartner was not asked again
        assert mailpartner.cancels[f"m{i:04d}"] == 1
    assert len([r for r in mailpartner.requests if r["messageId"] == "m0000"]) == 1
    assert not [line for line in audit_lines() if line["action"] == "post_failed"]


def test_two_replicas_on_postgresql_deliver_each_owed_message_once(make_harness, slack, mailpartner, postgres) -> None:
    first, second = quick(make_harness, postgres), quick(make_harness, postgres)
    prompts = thread_prompts(first, 6)
    slack.outage(60, "503")
    for prompt, ts, thread in prompts:
        first.click(prompt, user=BOB, message_ts=ts, thread_ts=thread)
    assert not first.bot.service.wait_idle(1.0)
    second.run(sweeper_of(second).sweep())  # the first replica holds their lease: nothing to take over
    assert second.bot.service.replier.ledger.owed_here == 0
    first.bot.shutdown(1.0)
    second.run(sweeper_of(second).sweep())
    assert second.bot.service.replier.ledger.owed_here == 6
    second.run(sweeper_of(second).sweep())  # a second pass takes nothing twice
    assert second.bot.service.replier.ledger.owed_here == 6
    slack.down_until = 0.0
    second.settle(20)
    for i in range(6):
        assert len(outcomes(slack, f"m{i:04d}")) == 1


def test_a_spent_response_url_gives_way_to_the_channel_then_to_a_direct_message(harness: Harness, slack) -> None:
    _, prompt = harness.command("300")
    slack.fail("response_url", times=10, status=404, error="expired_url")
    harness.click(prompt)
    harness.settle()
    (posted,) = [c for c in slack.delivered("chat.postMessage") if "`300` is cancelled" in blocks_text(c.payload)]
    assert posted.payload["channel"] == ONCALL

    _, prompt = harness.command("301")
    slack.fail("response_url", times=10, status=404, error="used_url")
    slack.fail("chat.postMessage", times=1, error="not_in_channel")
    harness.click(prompt)
    harness.settle()
    (dm,) = [c for c in slack.delivered("chat.postMessage") if "`301` is cancelled" in blocks_text(c.payload)]
    assert dm.payload["channel"] == ALICE  # the confirmer, privately


def test_a_response_url_used_five_times_is_not_tried_a_sixth(harness: Harness, slack) -> None:
    ledger = harness.bot.service.replier.ledger
    url = slack.new_response_url()
    for _ in range(6):
        way = ledger.url_way(url, {"text": "hello"})
        ways = [way, {"via": "web", "method": "chat.postMessage", "payload": {"channel": ONCALL}}]
        assert harness.bot.loop.run(ledger.deliver_ways(ways, {"text": "hello"})).ok
    assert len(slack.of("response_url")) == 5 and len(slack.of("chat.postMessage")) == 1


def test_a_response_url_older_than_thirty_minutes_is_not_tried(harness: Harness, slack) -> None:
    ledger = harness.bot.service.replier.ledger
    way = ledger.url_way(slack.new_response_url(), {"text": "late"})
    way["since"] -= 31 * 60
    post = {"via": "web", "method": "chat.postMessage", "payload": {"channel": ONCALL, "text": "late"}}
    assert harness.bot.loop.run(ledger.deliver_ways([way, post], {})).via == "web_api"
    assert slack.of("response_url") == []


def test_one_conversation_keeps_its_order_through_an_outage(make_harness, slack) -> None:
    harness = quick(make_harness)
    replier = harness.bot.service.replier
    slack.outage(1.5, "503")
    for n in range(5):
        replier.post(ONCALL, {"text": f"message {n}"}, thread_ts="1800000000.000001")
    replier.post("C0OTHER000", {"text": "elsewhere"})
    harness.settle(20)
    texts = [c.payload["text"] for c in slack.delivered("chat.postMessage")]
    assert [t for t in texts if t.startswith("message")] == [f"message {n}" for n in range(5)]
    assert "elsewhere" in texts


def test_an_outcome_update_waits_behind_owed_outcomes_after_an_outage(make_harness, slack) -> None:
    harness = quick(make_harness)
    ((prompt, ts, thread),) = thread_prompts(harness, 1)
    slack.outage(1.5, "503")
    harness.click(prompt, user=BOB, message_ts=ts, thread_ts=thread)
    harness.settle(20)
    delivered = [
        c for c in slack.calls if "failed" not in c.response and c.method in ("chat.postMessage", "chat.update")
    ]
    kinds = [c.method for c in delivered if "`m0000`" in blocks_text(c.payload)]
    assert kinds[-2:] == ["chat.postMessage", "chat.update"] or kinds == ["chat.postMessage"]


def test_the_owed_count_is_in_healthz_check_and_metrics(make_harness, slack, tmp_path) -> None:
    from bot.ops.check import check_store
    from bot.ops.server import health

    harness = quick(make_harness)
    metrics = harness.bot.metrics.registry
    assert metrics.get_sample_value("cancel_mail_slack_owed") == 0  # there from the start
    assert metrics.get_sample_value("cancel_mail_slack_delivery_seconds_count") == 0
    slack.outage(60, "503")
    harness.bot.service.replier.post(ONCALL, {"text": "owed"})
    eventually(lambda: harness.bot.service.replier.ledger.owed_here, what="a message owed")
    ok, text = health(harness.bot)
    assert ok and "1 message(s) owed" in text
    harness.run(sweeper_of(harness).sweep())
    assert metrics.get_sample_value("cancel_mail_slack_owed") == 1
    findings = [f.text for f in check_store(harness.settings)]
    assert any("Owed messages: 1 not yet taken by Slack" in text for text in findings), findings
    slack.down_until = 0.0
    harness.settle(40)
    assert metrics.get_sample_value("cancel_mail_slack_delivery_seconds_count") == 1
    assert any("none" in f.text for f in check_store(harness.settings) if f.text.startswith("Owed"))


def test_a_message_slack_never_takes_is_audited_with_its_text(make_harness, slack, audit_lines) -> None:
    harness = quick(make_harness, CANCEL_MAIL_DELIVERY_DEADLINE="1")
    slack.outage(30, "503")
    harness.bot.service.replier.tell(Conversation(ONCALL), ALICE, {"text": "note"})
    harness.settle(10)
    (failed,) = [line for line in audit_lines() if line["action"] == "post_failed"]
    assert failed["text"] == "note" and failed["kind"] == "note" and failed["actor"] == ALICE
    assert harness.run(harness.bot.store.owed_summary()) == (0, None)


def sweeper_of(harness: Harness) -> Sweeper:
    return Sweeper(
        harness.bot.store,
        harness.bot.service,
        lang="en",
        sandbox=False,
        history_days=365,
        metrics=harness.bot.metrics,
    )


@pytest.mark.anyio
async def test_store_owed_rows_on_both_engines(any_database: str) -> None:
    clock = [1_800_000_000.0]
    store = await open_store(any_database, clock=lambda: clock[0])
    other = await open_store(any_database, clock=lambda: clock[0], migrated=True)
    try:
        record = OwedRecord(
            "a" * 32, "outcome", ONCALL, "k", [{"via": "web"}], "text", {"actor": ALICE}, clock[0], clock[0] + 60
        )
        assert await store.owe([Owe((record,))], lease=10) == [(True, None)]
        assert await other.take_over_owed(lease=10) == []  # leased
        await lapse(store, 11)
        assert await store.heartbeat(lease=10)
        assert await other.take_over_owed(lease=10) == []  # its process beats
        await lapse(store, 11)
        (taken,) = await other.take_over_owed(lease=10)
        assert taken.ways == [{"via": "web"}] and taken.meta == {"actor": ALICE} and taken.takeovers == 1
        assert await store.take_over_owed(lease=10) == []
        assert await other.release_owed([taken.id]) == 1
        (again,) = await store.take_over_owed(lease=10)  # handed back: taken at once
        store.settle(again.id)
        assert await store.flush()
        assert await store.owed_summary() == (0, None)
    finally:
        await other.close()
        await store.close()
