"""Layer 1: the store's queries and migrations on the real engines, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.store import (
    MINE,
    UNRECORDED,
    Claimed,
    JobRecord,
    Store,
    StoreError,
    current_revision,
    database_url,
    head_revision,
    masked,
    migrate,
    open_store,
)
from bot.store.engine import HEAD, create_engine
from bot.store.store import Owe
from tests.conftest import Clock
from tests.databases import lapse, slow_inserts

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stores(any_database: str, clock: Clock) -> AsyncIterator[tuple[Store, Store]]:
    """Two replicas' stores on one database."""
    first, second = await open_store(any_database, clock=clock), await open_store(any_database, clock=clock)
    yield first, second
    await first.close()
    await second.close()


def line(action: str, mails: list[str], **extra: object) -> dict[str, object]:
    return {"action": action, "actor": "U0ALICE000", "channel": "C0ONCALL00", "thread": "", "mail_ids": mails, **extra}


# -- URLs and migrations ---------------------------------------------------------------------------------


def test_urls_as_operators_write_them() -> None:
    assert database_url("postgres://u:secret@db:5432/bot").drivername == "postgresql+psycopg"
    assert database_url("postgresql://u:secret@db/bot").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///cancel-mail.db").database == "cancel-mail.db"
    assert masked("postgresql://u:secret@db/bot") == "postgresql://u:***@db/bot"
    for bad in ("mysql://u@db/bot", "not a url", ""):
        with pytest.raises(ValueError) as caught:
            database_url(bad)
        assert "DATABASE_URL" in str(caught.value)


async def test_migration_from_an_empty_database(any_database: str) -> None:
    engine = create_engine(database_url(any_database))
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        assert await current_revision(engine) == head_revision() == HEAD == "0004"
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: sa.inspect(c).get_table_names()))
        assert {"events", "event_mails", "slack_events", "jobs", "claims", "steps", "owed", "processes"} <= names
        await migrate(engine)  # again: nothing to do
    finally:
        await engine.dispose()


async def test_migration_from_the_previous_revision_keeps_history(any_database: str, clock: Clock) -> None:
    engine = create_engine(database_url(any_database))
    await migrate(engine, "0001")
    store = Store(engine, clock=clock).start()
    store.record(line("request", ["300"], reason="wrong segment", via="command"))
    assert await store.flush()
    await migrate(engine)
    assert await current_revision(engine) == HEAD
    (event,) = await store.history(mail_id="300") or []
    assert (event.action, event.reason, event.via) == ("request", "wrong segment", "command")
    assert await store.first_delivery("Ev1") is True  # the new tables work
    await store.close()


async def test_unreachable_store_is_one_readable_error() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store("postgresql://bot:hunter2-secret@127.0.0.1:9/bot")
    assert "127.0.0.1:9" in str(caught.value) and "hunter2-secret" not in str(caught.value)


# -- history ---------------------------------------------------------------------------------------------


async def test_history_newest_first_by_conversation_mail_and_time(stores: tuple[Store, Store], clock: Clock) -> None:
    store, _ = stores
    store.record(line("request", ["300", "301"], reason="wrong segment", via="command"))
    assert await store.flush()
    clock.now += 60
    store.record(line("confirm", ["300", "301"], actor="U0BOB00000"))
    store.record({**line("outcome", ["300"], result="code 200", code=200, cancelled=True), "channel": "C0OTHER000"})
    assert await store.flush()
    here = await store.history(channel="C0ONCALL00") or []
    assert [e.action for e in here] == ["confirm", "request"]
    assert here[1].reason == "wrong segment" and here[1].mail_ids == ("300", "301")
    about = await store.history(mail_id="300") or []
    assert [e.action for e in about] == ["outcome", "confirm", "request"]
    assert about[0].detail["code"] == 200 and about[0].result == "code 200"
    assert [e.action for e in await store.history(mail_id="301") or []] == ["confirm", "request"]
    assert [e.action for e in await store.history(since=clock.now - 10) or []] == ["outcome", "confirm"]
    assert len(await store.history(limit=1) or []) == 1


async def test_prune_drops_old_history_only(stores: tuple[Store, Store], clock: Clock) -> None:
    store, _ = stores
    store.record(line("request", ["300"]))
    assert await store.flush()
    clock.now += 10 * 86400
    store.record(line("request", ["301"]))
    assert await store.flush()
    await store.prune(history_days=5)
    assert [e.mail_ids for e in await store.history() or []] == [("301",)]


# -- several replicas ------------------------------------------------------------------------------------


async def test_an_event_is_handled_by_one_replica_without_a_database_error(stores: tuple[Store, Store]) -> None:
    first, second = stores
    errors: list[BaseException] = []  # every error the database raised, caught or not (a failed INSERT too)
    for store in stores:
        sa.event.listen(
            store.engine.sync_engine, "handle_error", lambda context: errors.append(context.original_exception)
        )
    assert await first.first_delivery("Ev0001") is True
    assert await second.first_delivery("Ev0001") is False
    assert await first.first_delivery("Ev0001") is False
    assert errors == [] and not first.problem and not second.problem


def job(job_id: str, confirmer: str) -> JobRecord:
    return JobRecord(id=job_id, ticket="{}", confirmer=confirmer, channel="C0ONCALL00", response_url="https://x/1")


async def test_a_mail_is_claimed_by_one_job_at_a_time(stores: tuple[Store, Store], clock: Clock) -> None:
    first, second = stores
    assert await first.claim(job("a", "U0ALICE000"), ["300", "301"], lease=30) == MINE
    held = await second.claim(job("b", "U0BOB00000"), ["301", "302"], lease=30)
    assert (held.state, held.holder, held.since) == (Claimed.HELD, "U0ALICE000", clock.now)
    assert await second.claim(job("c", "U0BOB00000"), ["302"], lease=30) == MINE  # the failed claim left nothing
    await first.finish("a")
    assert await second.claim(job("d", "U0BOB00000"), ["300"], lease=30) == MINE


async def test_claims_in_one_batch_are_answered_each(stores: tuple[Store, Store]) -> None:
    first, second = stores
    assert await first.claim(job("a", "U0ALICE000"), ["301"], lease=30) == MINE
    answers = await asyncio.gather(  # one writer batch: two statements when nobody holds a mail, more when one does
        second.claim(job("b", "U0BOB00000"), ["303", "302"], lease=30),
        second.claim(job("c", "U0BOB00000"), ["304", "301"], lease=30),
        second.claim(job("d", "U0BOB00000"), ["305"], lease=30),
    )
    assert [a.state for a in answers] == [Claimed.MINE, Claimed.HELD, Claimed.MINE]
    assert answers[1].holder == "U0ALICE000"
    assert await first.claim(job("e", "U0ALICE000"), ["304"], lease=30) == MINE  # c's other claim was undone


async def test_a_bug_in_the_writer_still_answers_whoever_waits(stores: tuple[Store, Store], mocker) -> None:
    first, _ = stores
    mocker.patch.object(first, "_claim_all", return_value=[])  # an answer short of its claims: a bug
    assert await first.claim(job("a", "U0ALICE000"), ["300"], lease=30) == UNRECORDED  # answered, not left waiting
    mocker.patch.object(first, "owe", side_effect=RuntimeError("bug"))
    told: list[tuple[bool, bool | None]] = []
    first.owe_later(Owe(()), lease=30, then=lambda kept, step: told.append((kept, step)))
    assert await first.flush(10) and told == [(False, None)]  # not kept: delivered from memory


async def test_claims_raced_from_many_confirms_admit_one(stores: tuple[Store, Store]) -> None:
    first, second = stores
    confirms = [(first if n % 2 else second).claim(job(f"j{n}", f"U{n:09d}"), ["300"], lease=30) for n in range(8)]
    results = await asyncio.gather(*confirms)
    assert [r.state for r in results].count(Claimed.MINE) == 1


async def test_opposite_order_claims_on_a_busy_database_never_deadlock_nor_fail_open(
    postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two replicas confirm 10 pairs of bulk cancels naming the same two mails in opposite orders, at once,
    while every claim insert takes 20 ms more (far more than the two writers' start apart): each mail is
    claimed once, and every other confirm is told who holds it. Inserted in arrival order, the two batches
    deadlocked and both went ahead."""
    first, second = await open_store(postgres), await open_store(postgres, migrated=True)
    slow_inserts(postgres, "claims", 0.02)
    try:
        for _ in range(3):
            pairs = [(f"{n}-{uuid.uuid4().hex[:6]}a", f"{n}-{uuid.uuid4().hex[:6]}b") for n in range(10)]
            answers = await asyncio.gather(
                *(first.claim(job(f"j{a}", "U0ALICE000"), [a, b], lease=30) for a, b in pairs),
                *(second.claim(job(f"j{b}", "U0BOB00000"), [b, a], lease=30) for a, b in pairs),
            )
            left, right = answers[:10], answers[10:]
            assert [sorted((x.state.value, y.state.value)) for x, y in zip(left, right, strict=True)] == [
                ["held", "mine"]
            ] * 10
            assert {x.holder for x, y in zip(left, right, strict=True) if x.state is Claimed.HELD} <= {"U0BOB00000"}
            assert {y.holder for x, y in zip(left, right, strict=True) if y.state is Claimed.HELD} <= {"U0ALICE000"}
        assert not first.problem and not second.problem
        assert "claim failed" not in caplog.text and "conflict" not in caplog.text  # no deadlock to retry
    finally:
        await first.close()
        await second.close()


async def test_a_job_is_taken_over_once_its_process_stops_beating(stores: tuple[Store, Store]) -> None:
    first, second = stores
    assert await first.heartbeat(lease=30) and await second.heartbeat(lease=30)
    assert await first.claim(job("a", "U0ALICE000"), ["300"], lease=30) == MINE
    await lapse(first, 20)
    assert await first.heartbeat(lease=30)  # the owner is alive: one row, not one per job
    await lapse(first, 20)  # the job's own lease has run out, but its owner beats
    assert await second.take_over(lease=30) == []
    await lapse(first, 31)  # the owner stopped beating
    assert await second.heartbeat(lease=30)
    taken = await second.take_over(lease=30)
    assert [(j.id, j.confirmer, j.response_url, j.takeovers) for j in taken] == [("a", "U0ALICE000", "https://x/1", 1)]
    assert await first.take_over(lease=30) == [] and await second.take_over(lease=30) == []
    await lapse(first, 31)  # the new owner stopped beating too
    assert await first.heartbeat(lease=30)
    (again,) = await first.take_over(lease=30)
    assert (again.id, again.takeovers) == ("a", 2)
    await first.finish("a")
    await lapse(first, 100)
    assert await second.take_over(lease=30) == []


async def test_a_process_that_stops_leaves_its_jobs_to_the_others_at_once(any_database: str) -> None:
    first, second = await open_store(any_database), await open_store(any_database)
    try:
        assert await first.heartbeat(lease=30) and await second.heartbeat(lease=30)
        assert await first.claim(job("a", "U0ALICE000"), ["300"], lease=0) == MINE  # its own lease already over
        assert await second.take_over(lease=30) == []  # its process beats
        await first.close()  # a drain that could not finish it: the heartbeat goes with the process
        assert [j.id for j in await second.take_over(lease=30)] == ["a"]
    finally:
        await second.close()


async def test_leases_are_on_the_database_clock_not_the_process_clock(any_database: str, clock: Clock) -> None:
    """A replica whose clock runs a day ahead takes nothing over early; one a day behind, nothing late."""
    ahead, behind = Clock(clock.now + 86400), Clock(clock.now - 86400)
    early, late = await open_store(any_database, clock=ahead), await open_store(any_database, clock=behind)
    try:
        assert await late.claim(job("a", "U0ALICE000"), ["300"], lease=30) == MINE  # no beat: its lease alone
        assert await early.heartbeat(lease=30)
        assert await early.take_over(lease=30) == []
        await lapse(early, 31)
        assert [j.id for j in await early.take_over(lease=30)] == ["a"]
        async with early.engine.connect() as connection:
            from bot.store.sql import db_now

            now = (await connection.execute(sa.select(db_now()))).scalar_one()
            leases = (await connection.execute(sa.text("SELECT lease_until FROM jobs"))).scalars().all()
        assert abs(now - time.time()) < 60 and [round(x - now) for x in leases] == [30]
    finally:
        await early.close()
        await late.close()


async def test_a_workflow_step_ends_once(stores: tuple[Store, Store], clock: Clock) -> None:
    first, second = stores
    await first.register_step("Fx1", channel="C0ONCALL00", ticket="{}", token="xwfp-1", expires_at=clock.now + 60)
    await first.set_step_prompt("Fx1", "1800000000.000100")
    assert await second.expired_steps() == []
    clock.now += 61
    (waiting,) = await second.expired_steps()
    assert (waiting.execution_id, waiting.prompt_ts, waiting.token) == ("Fx1", "1800000000.000100", "xwfp-1")
    assert await end_step(second, "Fx1", "expired") is True
    assert await end_step(first, "Fx1", "cancelled") is False
    assert await second.expired_steps() == []
    assert (
        await end_step(first, "Fx-never-seen", "kept") is True
        and await end_step(second, "Fx-never-seen", "kept") is False
    )


async def end_step(store: Store, execution_id: str, result: str) -> bool | None:
    """Whether this store's call ended the step: its end is owed with it, in one transaction."""
    ((_kept, first),) = await store.owe([Owe((), end_step=(execution_id, result))], lease=30)
    return first


# -- when the database goes away -------------------------------------------------------------------------


async def test_a_store_that_goes_away_degrades_then_heals(
    any_database: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(any_database, clock=clock)
    good = store.engine
    store.engine = create_engine(database_url("postgresql://nobody:pw@127.0.0.1:9/none"))
    caplog.set_level(logging.WARNING)
    try:
        assert await store.first_delivery("Ev1") is None
        assert await store.claim(job("a", "U0A"), ["300"], lease=30) == UNRECORDED  # the cancel goes ahead
        assert await end_step(store, "Fx1", "kept") is None and await store.history() is None
        store.record(line("request", ["300"]))
        assert await store.flush()
        assert store.problem and not await store.ping()
        assert any("history row lost" in r.getMessage() and "request" in r.getMessage() for r in caplog.records)
    finally:
        await store.engine.dispose()
        store.engine = good
    assert await store.ping() and store.problem == ""
    await store.close()


async def test_the_migrations_build_exactly_the_declared_tables(any_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from bot.store.tables import metadata

    engine = create_engine(database_url(any_database))
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            differences = await connection.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        assert differences == []
    finally:
        await engine.dispose()


async def test_a_finish_written_while_the_store_is_away_is_written_when_it_is_back(
    any_database: str, clock: Clock
) -> None:
    store = await open_store(any_database, clock=clock)
    assert await store.claim(job("a", "U0ALICE000"), ["300"], lease=30) == MINE
    good = store.engine
    store.engine = create_engine(database_url("postgresql://nobody:pw@127.0.0.1:9/none"))
    try:
        await store.finish("a")
        await store.retry_unfinished()  # still away: kept
        assert store.problem
    finally:
        await store.engine.dispose()
        store.engine = good
    assert (await store.claim(job("b", "U0BOB00000"), ["300"], lease=30)).holder == "U0ALICE000"
    await store.retry_unfinished()  # the sweeper's next pass
    assert await store.claim(job("c", "U0BOB00000"), ["300"], lease=30) == MINE
    await store.close()


def test_each_migration_logs_one_line() -> None:
    """Alembic logs a revision's first docstring paragraph as it runs it: one line, or text logs break."""
    from alembic.script import ScriptDirectory

    from bot.store.engine import _alembic_config

    for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions():
        assert "\n" not in (script.doc or "").strip(), script.revision
