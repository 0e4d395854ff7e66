"""Layer 2: what the store gives the bot, through the real App: history in Slack, replicas that behave as
one, cancels taken over after a crash, workflow runs that expire, and cancels that go on without a database."""

from __future__ import annotations

from bot.cancels.engine import LEASE_MARGIN
from bot.cancels.recovery import Sweeper
from bot.console.wire import JSON, app_mention, blocks_text, buttons
from bot.ops.server import health
from bot.requests.ticket import PromptTicket
from bot.store import MINE, ClaimAnswer, JobRecord
from bot.store.engine import create_engine, database_url
from tests.conftest import ALICE, BOB, ONCALL, Harness
from tests.databases import lapse
from tests.fakes import Fault
from tests.test_workflows import STEP_TOKEN, Step, public_posts


def sweeper(harness: Harness) -> Sweeper:
    bot = harness.bot
    return Sweeper(bot.store, bot.service, lang="en", sandbox=False, history_days=365)


def private_notes(harness: Harness) -> list[str]:
    return [
        blocks_text(c.payload)
        for c in harness.slack.delivered("response_url")
        if c.payload.get("response_type") == "ephemeral"
    ]


# -- history ---------------------------------------------------------------------------------------------


def test_history_in_slack_says_who_asked_who_confirmed_why_and_what_mailpartner_said(make_harness) -> None:
    harness = make_harness()
    _, prompt = harness.command("300 -- spring campaign went to the wrong segment", user=ALICE)
    harness.click(prompt, user=BOB)
    harness.settle()
    response, message = harness.command("history 300", user=ALICE)
    assert response.status == 200 and not buttons(message)
    harness.settle()
    (answer,) = [n for n in private_notes(harness) if "History of mail `300`" in n]
    assert f"<@{ALICE}> asked to cancel `300` (command)" in answer
    assert "reason: “spring campaign went to the wrong segment”" in answer
    assert f"<@{BOB}> confirmed the cancel of `300`" in answer
    assert "Mail `300` is cancelled: it will not be sent. `code 200`" in answer
    lines = [x for x in answer.splitlines() if x.startswith("•")]
    assert "is cancelled" in lines[0] and "asked to cancel" in lines[-1]  # newest first


def test_history_of_this_conversation_and_of_an_unknown_mail(harness: Harness) -> None:
    _, prompt = harness.command("301")
    harness.click(prompt, "keep")
    harness.settle()
    harness.command("history")
    harness.command("history 999")
    harness.command("history 1 2")
    harness.settle()
    notes = private_notes(harness)
    assert any("Cancel history in this conversation" in n and "kept `301`" in n for n in notes)
    assert any("Nothing is recorded about mail `999`." in n for n in notes)
    _, usage = harness.command("history 1 2")
    assert "History takes one mail id at most" in usage["text"]


# -- several replicas on one store -----------------------------------------------------------------------


def test_an_event_redelivered_to_another_replica_posts_one_prompt(make_harness, tmp_path) -> None:
    shared = f"sqlite:///{tmp_path}/shared.db"
    first, second = make_harness(database_url=shared), make_harness(database_url=shared)
    body = app_mention("<@U0BOT00000> cancel 300", user=ALICE, channel=ONCALL, ts="1800000000.000100", event_id="Ev01")
    first.dispatch(body, JSON)
    first.settle()
    second.dispatch(body, JSON, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    second.settle()
    assert len([c for c in first.slack.of("chat.postMessage") if buttons(c.payload)]) == 1


def test_confirms_raced_on_two_replicas_call_mailpartner_once(make_harness, mailpartner, tmp_path) -> None:
    shared = f"sqlite:///{tmp_path}/shared.db"
    first, second = make_harness(database_url=shared), make_harness(database_url=shared)
    mailpartner.fault("300", Fault(delay=0.5))
    _, prompt = first.command("300")
    first.click(prompt, user=ALICE)
    second.click(prompt, user=BOB)
    first.settle()
    second.settle()
    assert len([r for r in mailpartner.requests if r["messageId"] == "300"]) == 1
    # Whichever replica claimed first, the other confirmer is told who is cancelling.
    (note,) = [n for n in private_notes(second) if "already under way" in n]
    assert f"<@{ALICE}>" in note or f"<@{BOB}>" in note
    assert len([t for t in public_posts(first) if "`300` is cancelled" in t]) == 1
    assert any(e.action == "duplicate" for e in second.run(second.bot.store.history(mail_id="300")) or [])


# -- no cancel stranded ----------------------------------------------------------------------------------


def strand(harness: Harness, mails: tuple[str, ...], *, execution_id: str | None = None) -> PromptTicket:
    """A cancel left under way by a process that died: recorded and claimed, its lease run out."""
    ticket = PromptTicket(mails, ALICE, ONCALL, harness.clock.now, reason="wrong segment", workflow=bool(execution_id))
    record = JobRecord(
        id="dead-job-1",
        ticket=ticket.encode(),
        confirmer=BOB,
        channel=ONCALL,
        response_url=harness.slack.new_response_url(),
        execution_id=execution_id,
        step_token=STEP_TOKEN if execution_id else None,
    )
    store = harness.bot.store
    owner, store.owner = store.owner, "a-process-that-died"

    async def claim() -> ClaimAnswer:
        return await store.claim(record, mails, lease=harness.bot.service.lease)

    assert harness.run(claim()) == MINE
    store.owner = owner
    harness.run(lapse(store, harness.settings.mailpartner_deadline + LEASE_MARGIN + 1))
    return ticket


def test_a_stranded_cancel_is_taken_over_asked_again_and_posted(harness: Harness, mailpartner) -> None:
    strand(harness, ("300", "305"))
    harness.run(sweeper(harness).sweep())
    harness.settle()
    (outcome,) = [t for t in public_posts(harness) if "Outcome of cancelling 2 mails" in t]
    assert "Recovered after an interruption" in outcome and "2 cancelled" in outcome
    assert "wrong segment" in outcome
    assert sorted(r["messageId"] for r in mailpartner.requests) == ["300", "305"]
    harness.run(sweeper(harness).sweep())  # finished: never taken over twice
    harness.settle()
    assert len(mailpartner.requests) == 2
    actions = [e.action for e in harness.run(harness.bot.store.history(mail_id="300")) or []]
    assert actions[-1] == "recovery" and "outcome" in actions


def test_a_stranded_workflow_cancel_ends_its_run(harness: Harness) -> None:
    strand(harness, ("301",), execution_id="Fx0STRANDED")
    harness.run(sweeper(harness).sweep())
    harness.settle()
    (call,) = [c for c in harness.slack.calls if c.method == "functions.completeSuccess"]
    assert call.token == STEP_TOKEN and call.payload["function_execution_id"] == "Fx0STRANDED"
    assert call.payload["outputs"]["result"] == "cancelled"


def test_a_workflow_prompt_nobody_answers_ends_expired(harness: Harness) -> None:
    step = Step(harness, "300", reason="wrong segment").run()
    _, prompt_ts = step.prompt()
    harness.clock.now += harness.settings.prompt_ttl + 1
    harness.run(sweeper(harness).sweep())
    harness.settle()
    assert step.outputs()["result"] == "expired"
    (update,) = harness.slack.of("chat.update")
    assert update.payload["ts"] == prompt_ts and "expired" in blocks_text(update.payload)
    step.click()  # too late, and already ended: nothing more
    assert len(step.completions()) == 1 and harness.mailpartner.requests == []


# -- without a database ----------------------------------------------------------------------------------


def test_cancels_go_on_when_the_database_goes_away(harness: Harness, mailpartner, caplog) -> None:
    store = harness.bot.store
    good, store.engine = store.engine, create_engine(database_url("postgresql://nobody:pw@127.0.0.1:9/none"))
    try:
        _, prompt = harness.command("300 -- urgent")
        harness.click(prompt, user=BOB)
        harness.settle()
        assert mailpartner.cancels["300"] == 1
        assert any("`300` is cancelled" in t for t in public_posts(harness))
        assert any("history row lost" in r.getMessage() for r in caplog.records)
        healthy, said = health(harness.bot)  # what /healthz answers
        assert healthy and "store degraded" in said
        harness.command("history")
        harness.settle()
        assert any("history is unavailable" in n for n in private_notes(harness))
    finally:
        harness.run(store.engine.dispose())
        store.engine = good
    assert harness.run(store.ping()) and not store.problem
