"""Slack's rate limits: the outbox on its own (layer 1), then the real App against a LocalSlack that
enforces Slack's limits (layer 2). No message a person waits for is lost; one busy channel never slows
another; outcomes go before cosmetic updates, and a superseded update is dropped."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest

from bot.console.wire import JSON, app_mention, blocks_text, buttons
from bot.http import RetryPolicy
from bot.loop import LoopThread
from bot.outbound.outbox import Delivery, Outbox, Priority
from bot.outbound.webapi import RateLimited, SlackUnavailable
from tests.conftest import ALICE, BOB, MALLORY, ONCALL, Harness
from tests.waiting import eventually, holds_for

OTHER = "C0OTHER000"


# -- the outbox on its own -------------------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    """The event loop an outbox works on, as the bot's; a send that must wait for the test does it in a
    thread (`asyncio.to_thread`), so the loop goes on meanwhile."""
    running = LoopThread()
    yield running
    running.close()


class Sends:
    """Sends that record their order and fail as told."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.limits: dict[str, list[float]] = {}  # name → Retry-After of the next tries
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a worker took a message: it is in its send
        self.went: defaultdict[str, threading.Event] = defaultdict(threading.Event)  # name → Slack took it
        self.lock = threading.Lock()

    def __call__(self, name: str):
        async def send() -> Delivery:
            self.entered.set()
            await asyncio.to_thread(self.gate.wait, 15)
            with self.lock:
                waits = self.limits.get(name)
                if waits:
                    raise RateLimited(name.split(":")[0], waits.pop(0))
                self.sent.append(name)
            self.went[name].set()
            return Delivery(ok=True, via="web_api", ts=name)

        return send


def test_outbox_urgent_first_and_a_superseded_update_is_dropped(loop: LoopThread) -> None:
    outbox, sends, done = Outbox(workers=1).bind(loop), Sends(), []
    sends.gate.clear()  # hold the worker on the first message while the others queue
    outbox.submit(sends("chat.postMessage:first"), lane="C1", key="a", method="chat.postMessage")
    assert sends.entered.wait(15)
    outbox.submit(
        sends("chat.update:older"),
        lane="C1",
        key="b",
        method="chat.update",
        priority=Priority.COSMETIC,
        supersede="prompt:b",
        on_done=done.append,
    )
    outbox.submit(sends("chat.postMessage:outcome"), lane="C1", key="b", method="chat.postMessage")
    outbox.submit(
        sends("chat.update:newer"),
        lane="C1",
        key="b",
        method="chat.update",
        priority=Priority.COSMETIC,
        supersede="prompt:b",
    )
    sends.gate.set()
    assert outbox.wait_idle(5)
    assert sends.sent == ["chat.postMessage:first", "chat.postMessage:outcome", "chat.update:newer"]
    assert done == [Delivery(ok=False, via="superseded")]


def test_outbox_sends_few_prompt_updates_at_once_and_outcomes_go_past_them(loop: LoopThread) -> None:
    outbox, updating, release, outcome_saw = Outbox(workers=4, cosmetic_workers=1).bind(loop), [], threading.Event(), []

    def update(n: int):
        async def send() -> Delivery:
            updating.append(n)
            await asyncio.to_thread(release.wait, 15)  # Slack is slow to answer: the update holds its worker
            return Delivery(ok=True, via="web_api")

        return send

    async def outcome() -> Delivery:
        outcome_saw.append(list(updating))
        return Delivery(ok=True, via="web_api")

    for n in range(3):
        outbox.submit(update(n), lane="C1", key=f"k{n}", method="chat.update", priority=Priority.COSMETIC)
    eventually(lambda: updating, what="the first update under way")
    holds_for(lambda: updating == [0], 0.3, what="one update at a time, with three workers idle")
    outbox.submit(outcome, lane="C1", key="k3", method="chat.postMessage")
    eventually(lambda: outcome_saw, what="the outcome going past the waiting updates")
    release.set()
    assert outbox.wait_idle(15)
    assert outcome_saw == [[0]] and updating == [0, 1, 2]


def test_outbox_a_paused_channel_holds_no_other_channel(loop: LoopThread) -> None:
    outbox, sends = Outbox(workers=2).bind(loop), Sends()
    sends.limits["chat.postMessage:a1"] = [3.0]
    outbox.submit(sends("chat.postMessage:a1"), lane="A", key="a1", method="chat.postMessage")
    eventually(lambda: not sends.limits["chat.postMessage:a1"], what="a1 meeting the limit")
    outbox.submit(sends("chat.postMessage:a2"), lane="A", key="a2", method="chat.postMessage")
    for n in range(5):
        outbox.submit(sends(f"chat.postMessage:b{n}"), lane="B", key=f"b{n}", method="chat.postMessage")
    eventually(lambda: len([s for s in sends.sent if ":b" in s]) == 5, what="channel B sent")
    # Channel B all went while channel A sat out its 3 s pause.
    assert "chat.postMessage:a1" not in sends.sent and "chat.postMessage:a2" not in sends.sent
    assert outbox.wait_idle(30)
    assert sends.sent[-2:] == ["chat.postMessage:a1", "chat.postMessage:a2"]


def test_outbox_a_workspace_limit_pauses_the_method_not_the_channel(loop: LoopThread) -> None:
    outbox, sends = Outbox(workers=2).bind(loop), Sends()
    sends.limits["chat.update:u1"] = [3.0]
    outbox.submit(sends("chat.update:u1"), lane="A", key="k1", method="chat.update", priority=Priority.COSMETIC)
    eventually(lambda: not sends.limits["chat.update:u1"], what="u1 meeting the workspace's limit")
    outbox.submit(sends("chat.update:u2"), lane="B", key="k2", method="chat.update", priority=Priority.COSMETIC)
    outbox.submit(sends("chat.postMessage:p"), lane="A", key="k3", method="chat.postMessage")
    eventually(lambda: sends.sent, what="a message sent")
    assert sends.sent == ["chat.postMessage:p"]  # chat.update waits everywhere (3 s); postMessage in A goes
    assert outbox.wait_idle(30)
    assert sorted(sends.sent) == ["chat.postMessage:p", "chat.update:u1", "chat.update:u2"]


def test_outbox_after_a_429_sends_one_message_of_the_channel_at_a_time(loop: LoopThread) -> None:
    # Slack allows one message a channel every 0.1 s here. The first burst of 8 is held until all 8 are
    # under way, then each meets a 429: from then on the channel's messages go one by one; sent all at once
    # when the pause ends, all but one would meet another 429, each time. Whatever the machine's load, the
    # first burst is under way before Slack says anything, and only what follows the 429 is counted.
    outbox, lock, done = Outbox(workers=8).bind(loop), threading.Lock(), []
    first_burst = asyncio.Barrier(8)
    tries: Counter[int] = Counter()
    state = {"next_free": 0.0, "limited": 0, "retrying": 0, "most_retrying": 0}

    def sender(i: int):
        async def send() -> Delivery:
            with lock:
                tries[i] += 1
                first = tries[i] == 1
            if first:
                await asyncio.wait_for(first_burst.wait(), 60)
                with lock:
                    state["limited"] += 1
                    state["next_free"] = time.monotonic() + 0.05
                raise RateLimited("chat.postMessage", 0.05)
            with lock:
                state["retrying"] += 1
                state["most_retrying"] = max(state["most_retrying"], state["retrying"])
            try:
                await asyncio.sleep(0.01)  # Slack takes a moment to answer: long enough for a second send to overlap
                with lock:
                    now = time.monotonic()
                    if now < state["next_free"]:
                        state["limited"] += 1
                        raise RateLimited("chat.postMessage", state["next_free"] - now)
                    state["next_free"] = now + 0.1
                return Delivery(ok=True, via="web_api")
            finally:
                with lock:
                    state["retrying"] -= 1

        return send

    for i in range(8):
        outbox.submit(sender(i), lane="A", key=f"thread-{i}", method="chat.postMessage", on_done=done.append)
    assert outbox.wait_idle(60)
    assert [d.ok for d in done] == [True] * 8
    assert state["most_retrying"] == 1
    assert state["limited"] <= 8 + 7  # the first burst's, then at most one a message; all at once made 28


def test_outbox_gives_up_after_its_limit_and_says_so(loop: LoopThread) -> None:
    outbox, sends, done = Outbox(workers=1, give_up_after=0.5).bind(loop), Sends(), []
    sends.limits["chat.postMessage:x"] = [0.3, 0.3, 0.3]
    outbox.submit(sends("chat.postMessage:x"), lane="A", key="x", method="chat.postMessage", on_done=done.append)
    assert outbox.wait_idle(5)
    assert done == [Delivery(ok=False, via="undelivered")] and sends.sent == []


def test_outbox_a_pause_that_ends_while_workers_are_busy_or_asleep_is_served(loop: LoopThread) -> None:
    # Workers are woken one at a time: whoever takes a message must leave another worker watching the
    # clock for the paused one, or it would wait for the next unrelated message to finish.
    outbox, sends, saw_a = Outbox(workers=4).bind(loop), Sends(), {}
    sends.limits["chat.postMessage:a"] = [0.3]

    def busy(name: str):
        async def send() -> Delivery:  # holds its worker until `a` went, or 15 s when `a` waits for it
            saw_a[name] = await asyncio.to_thread(sends.went["chat.postMessage:a"].wait, 15)
            return Delivery(ok=True, via="web_api")

        return send

    outbox.submit(sends("chat.postMessage:a"), lane="A", key="a", method="chat.postMessage")
    eventually(lambda: not sends.limits["chat.postMessage:a"], what="a's 429")  # it waits out its pause
    for lane in "BC":
        outbox.submit(busy(lane), lane=lane, key=lane, method="chat.postMessage")
    assert outbox.wait_idle(30)
    assert saw_a == {"B": True, "C": True}, "the paused message waited for busy workers"


def test_outbox_is_idle_only_once_every_callback_has_run(loop: LoopThread) -> None:
    # A drain waits on wait_idle(): returning before a callback ran would let the process exit before a
    # posted job is marked finished, and another replica would post its outcome again. One worker: it is
    # still in `a`'s slow callback when both updates of `b` arrive, so the first is always superseded.
    outbox, sends, done = Outbox(workers=1).bind(loop), Sends(), []

    def slow_callback(delivery: Delivery) -> None:
        time.sleep(0.3)
        done.append(delivery)

    async def submit_all() -> None:  # at once, on the loop: no worker runs between them, however busy the machine
        outbox.submit(sends("chat.postMessage:a"), lane="A", key="a", method="chat.postMessage", on_done=slow_callback)
        outbox.submit(
            sends("chat.update:u1"),
            lane="A",
            key="b",
            method="chat.update",
            priority=Priority.COSMETIC,
            supersede="prompt:b",
            on_done=slow_callback,
        )
        outbox.submit(sends("chat.update:u2"), lane="A", key="b", method="chat.update", supersede="prompt:b")

    loop.run(submit_all())
    assert outbox.wait_idle(5)
    assert sorted(d.via for d in done) == ["superseded", "web_api"]


# -- the App against a Slack that enforces its limits ----------------------------------------------------


def prompts_in(harness: Harness, channel: str) -> list:
    return [
        c for c in harness.slack.delivered("chat.postMessage") if buttons(c.payload) and c.payload["channel"] == channel
    ]


def test_a_burst_of_mentions_in_two_channels_gets_every_prompt(harness: Harness) -> None:
    harness.slack.limit("chat.postMessage", every=0.1)  # Slack: about one a second per channel, scaled down
    for n in range(30):
        for channel in (ONCALL, OTHER):
            ts = f"1800000{n:03d}.{1 if channel == ONCALL else 2:06d}"
            body = app_mention("<@U0BOT00000> cancel 300", user=ALICE, channel=channel, ts=ts)
            assert harness.dispatch(body, JSON).status == 200
    harness.settle(30)
    assert len(prompts_in(harness, ONCALL)) == 30 and len(prompts_in(harness, OTHER)) == 30
    assert harness.slack.rate_limited > 0  # the limit was met, and lived with


def test_one_rate_limited_channel_does_not_slow_another(harness: Harness) -> None:
    harness.slack.limit("chat.postMessage", every=0.5)
    for n in range(10):  # ONCALL: ten prompts, about five seconds of Slack's patience
        harness.dispatch(
            app_mention("<@U0BOT00000> cancel 300", user=ALICE, channel=ONCALL, ts=f"1800000{n:03d}.000001"), JSON
        )
    started = time.monotonic()
    harness.dispatch(app_mention("<@U0BOT00000> cancel 301", user=ALICE, channel=OTHER, ts="1800000999.000002"), JSON)
    (prompt,) = harness.slack.wait_for(lambda c: c.method == "chat.postMessage" and c.payload.get("channel") == OTHER)
    assert prompt.time - started < 1.0 and len(prompts_in(harness, ONCALL)) < 10
    harness.settle(30)
    oncall = prompts_in(harness, ONCALL)
    assert len(oncall) == 10
    assert prompt.time < oncall[-1].time  # OTHER's prompt did not wait for ONCALL's limit to be lived out


def test_outcome_goes_before_the_cosmetic_update_and_the_prompt_is_updated_once(harness: Harness, mailpartner) -> None:
    _, thread = harness.mention("<@U0BOT00000> cancel 300")
    harness.settle()
    prompt, prompt_ts = harness.thread_prompt()
    harness.slack.limit("chat.update", every=2.0, per_channel=False)  # Tier 3: per workspace
    harness.slack.calls.clear()
    harness.slack.fail("chat.update", times=1, status=429, headers={"Retry-After": "1"})
    harness.click(prompt, user=BOB, message_ts=prompt_ts, thread_ts=thread)
    harness.settle(15)
    delivered = [c for c in harness.slack.calls if "failed" not in c.response]
    kinds = [("update" if c.method == "chat.update" else "post") for c in delivered]
    assert kinds == ["post", "update"], [(c.method, blocks_text(c.payload)[:40]) for c in delivered]
    assert "`300` is cancelled" in blocks_text(delivered[0].payload)
    assert "confirmed cancelling" in blocks_text(delivered[1].payload)


def test_refusal_notes_and_outcomes_survive_a_long_limit(make_harness) -> None:
    harness = make_harness(CANCEL_MAIL_ALLOWED_USERS=f"{ALICE},{BOB}")
    harness.slack.limit("chat.postEphemeral", every=0.3, per_channel=False)  # Tier 4: per workspace
    for _ in range(5):
        harness.mention("<@U0BOT00000> cancel 300", user=MALLORY)
    harness.settle(20)
    notes = [c for c in harness.slack.delivered("chat.postEphemeral") if "not allowed" in blocks_text(c.payload)]
    assert len(notes) == 5


def test_an_outcome_slack_never_takes_is_audited_after_the_give_up(make_harness, audit_lines) -> None:
    # CANCEL_MAIL_DELIVERY_DEADLINE is a day by default; the prompt's cosmetic update gives up after 5 minutes.
    harness = make_harness(outbox=Outbox(give_up_after=1.0), CANCEL_MAIL_DELIVERY_DEADLINE="1")
    _, prompt = harness.command("300")
    harness.slack.fail("response_url", times=1000, status=429, headers={"Retry-After": "0.3"})
    harness.slack.fail("chat.postMessage", times=1000, status=429, headers={"Retry-After": "0.3"})
    harness.click(prompt)
    harness.settle(10)
    (failed,) = [line for line in audit_lines() if line["action"] == "post_failed"]
    assert failed["mail_ids"] == ["300"] and failed["results"] == ["code 200"]
    counted = harness.bot.metrics.registry.get_sample_value(
        "cancel_mail_slack_post_failures_total", {"method": "response_url"}
    )
    assert counted and counted >= 1


def test_nothing_is_sent_once_the_outbox_is_closed(loop: LoopThread) -> None:
    """A drain hands the owed messages left to the next process: one more try here would post them twice."""
    tries: list[float] = []

    async def down() -> Delivery:
        await asyncio.sleep(0.005)  # a call takes a moment: others come due meanwhile
        tries.append(time.monotonic())
        raise SlackUnavailable("chat.postMessage", "HTTP 503", 503)

    outbox = Outbox(workers=2, backoff=RetryPolicy(first=0.001, cap=0.002)).bind(loop)
    done: list[Delivery] = []
    for n in range(20):
        outbox.submit(down, lane="A", key=f"k{n}", method="chat.postMessage", on_done=done.append)
    eventually(lambda: len(tries) > 2, what="tries again and again while Slack is down")
    assert loop.run(outbox.aclose(0.0)) is False
    closed_at = time.monotonic()
    holds_for(
        lambda: [t for t in tries if t > closed_at + 0.01] == [] and done == [],
        0.2,
        what="neither sent again nor given up",
    )
