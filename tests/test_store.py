"""Layer 1: the store's queries and migrations on the real engines, SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bot.store import (
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
from bot.store.engine import create_engine
from bot.store.store import Owe
from tests.conftest import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stores(any_database: str, clock: Clock) -> Iterator[tuple[Store, Store]]:
    """Two replicas' stores on one database."""
    first, second = open_store(any_database, clock=clock), open_store(any_database, clock=clock)
    yield first, second
    first.close()
    second.close()


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


def test_migration_from_an_empty_database(any_database: str) -> None:
    engine = create_engine(database_url(any_database))
    try:
        assert current_revision(engine) is None
        migrate(engine)
        assert current_revision(engine) == head_revision() == "0003"
        names = set(sa.inspect(engine).get_table_names())
        assert {"events", "event_mails", "slack_events", "jobs", "claims", "steps", "owed"} <= names
        migrate(engine)  # again: nothing to do
    finally:
        engine.dispose()


def test_migration_from_the_previous_revision_keeps_history(any_database: str, clock: Clock) -> None:
    engine = create_engine(database_url(any_database))
    migrate(engine, "0001")
    store = Store(engine, clock=clock)
    store.record(line("request", ["300"], reason="wrong segment", via="command"))
    assert store.flush()
    migrate(engine)
    assert current_revision(engine) == "0003"
    (event,) = store.history(mail_id="300") or []
    assert (event.action, event.reason, event.via) == ("request", "wrong segment", "command")
    assert store.first_delivery("Ev1") is True  # the new tables work
    store.close()


def test_unreachable_store_is_one_readable_error() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://bot:hunter2-secret@127.0.0.1:9/bot")
    assert "127.0.0.1:9" in str(caught.value) and "hunter2-secret" not in str(caught.value)


# -- history ---------------------------------------------------------------------------------------------


def test_history_newest_first_by_conversation_mail_and_time(stores: tuple[Store, Store], clock: Clock) -> None:
    store, _ = stores
    store.record(line("request", ["300", "301"], reason="wrong segment", via="command"))
    assert store.flush()
    clock.now += 60
    store.record(line("confirm", ["300", "301"], actor="U0BOB00000"))
    store.record({**line("outcome", ["300"], result="code 200", code=200, cancelled=True), "channel": "C0OTHER000"})
    assert store.flush()
    here = store.history(channel="C0ONCALL00") or []
    assert [e.action for e in here] == ["confirm", "request"]
    assert here[1].reason == "wrong segment" and here[1].mail_ids == ("300", "301")
    about = store.history(mail_id="300") or []
    assert [e.action for e in about] == ["outcome", "confirm", "request"]
    assert about[0].detail["code"] == 200 and about[0].result == "code 200"
    assert [e.action for e in store.history(mail_id="301") or []] == ["confirm", "request"]
    assert [e.action for e in store.history(since=clock.now - 10) or []] == ["outcome", "confirm"]
    assert len(store.history(limit=1) or []) == 1


def test_prune_drops_old_history_only(stores: tuple[Store, Store], clock: Clock) -> None:
    store, _ = stores
    store.record(line("request", ["300"]))
    assert store.flush()
    clock.now += 10 * 86400
    store.record(line("request", ["301"]))
    assert store.flush()
    store.prune(history_days=5)
    assert [e.mail_ids for e in store.history() or []] == [("301",)]


# -- several replicas ------------------------------------------------------------------------------------


def test_an_event_is_handled_by_one_replica(stores: tuple[Store, Store]) -> None:
    first, second = stores
    assert first.first_delivery("Ev0001") is True
    assert second.first_delivery("Ev0001") is False
    assert first.first_delivery("Ev0001") is False


def job(job_id: str, confirmer: str) -> JobRecord:
    return JobRecord(id=job_id, ticket="{}", confirmer=confirmer, channel="C0ONCALL00", response_url="https://x/1")


def test_a_mail_is_claimed_by_one_job_at_a_time(stores: tuple[Store, Store]) -> None:
    first, second = stores
    assert first.claim(job("a", "U0ALICE000"), ["300", "301"], lease=30) is None
    assert second.claim(job("b", "U0BOB00000"), ["301", "302"], lease=30) == "U0ALICE000"
    assert second.claim(job("c", "U0BOB00000"), ["302"], lease=30) is None  # the failed claim left nothing
    first.finish("a")
    assert second.claim(job("d", "U0BOB00000"), ["300"], lease=30) is None


def test_a_bug_in_the_writer_still_answers_whoever_waits(stores: tuple[Store, Store], mocker) -> None:
    first, _ = stores
    mocker.patch.object(first, "_claim_all", return_value=[])  # an answer short of its claims: a bug
    assert first.claim(job("a", "U0ALICE000"), ["300"], lease=30) is None  # answered, not left waiting
    mocker.patch.object(first, "owe", side_effect=RuntimeError("bug"))
    told: list[tuple[bool, bool | None]] = []
    first.owe_later(Owe(()), lease=30, then=lambda kept, step: told.append((kept, step)))
    assert first.flush(10) and told == [(False, None)]  # not kept: delivered from memory


def test_claims_raced_from_many_threads_admit_one(stores: tuple[Store, Store]) -> None:
    first, second = stores
    results: list[str | None] = []
    lock = threading.Lock()

    def confirm(n: int) -> None:
        holder = (first if n % 2 else second).claim(job(f"j{n}", f"U{n:09d}"), ["300"], lease=30)
        with lock:
            results.append(holder)

    threads = [threading.Thread(target=confirm, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 1


def test_an_expired_job_is_taken_over_once(stores: tuple[Store, Store], clock: Clock) -> None:
    first, second = stores
    record = job("a", "U0ALICE000")
    assert first.claim(record, ["300"], lease=30) is None
    clock.now += 20
    first.renew(["a"], lease=30)  # the owner is alive: its lease moves on
    clock.now += 20
    assert second.take_over(lease=30) == []
    clock.now += 31  # the owner stopped renewing
    taken = second.take_over(lease=30)
    assert [(j.id, j.confirmer, j.response_url, j.takeovers) for j in taken] == [("a", "U0ALICE000", "https://x/1", 1)]
    assert first.take_over(lease=30) == [] and second.take_over(lease=30) == []
    first.renew(["a"], lease=30)  # the old owner lost it: renewing does nothing
    clock.now += 31
    assert [j.id for j in first.take_over(lease=30)] == ["a"]
    first.finish("a")
    clock.now += 100
    assert second.take_over(lease=30) == []


def test_a_workflow_step_ends_once(stores: tuple[Store, Store], clock: Clock) -> None:
    first, second = stores
    first.register_step("Fx1", channel="C0ONCALL00", ticket="{}", token="xwfp-1", expires_at=clock.now + 60)
    first.set_step_prompt("Fx1", "1800000000.000100")
    assert second.expired_steps() == []
    clock.now += 61
    (waiting,) = second.expired_steps()
    assert (waiting.execution_id, waiting.prompt_ts, waiting.token) == ("Fx1", "1800000000.000100", "xwfp-1")
    assert end_step(second, "Fx1", "expired") is True
    assert end_step(first, "Fx1", "cancelled") is False
    assert second.expired_steps() == []
    assert end_step(first, "Fx-never-seen", "kept") is True and end_step(second, "Fx-never-seen", "kept") is False


def end_step(store: Store, execution_id: str, result: str) -> bool | None:
    """Whether this store's call ended the step: its end is owed with it, in one transaction."""
    ((_kept, first),) = store.owe([Owe((), end_step=(execution_id, result))], lease=30)
    return first


# -- when the database goes away -------------------------------------------------------------------------


def test_a_store_that_goes_away_degrades_then_heals(
    any_database: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(any_database, clock=clock)
    good = store.engine
    store.engine = create_engine(database_url("postgresql://nobody:pw@127.0.0.1:9/none"))
    caplog.set_level(logging.WARNING)
    try:
        assert store.first_delivery("Ev1") is None
        assert store.claim(job("a", "U0A"), ["300"], lease=30) is None  # the cancel goes ahead
        assert end_step(store, "Fx1", "kept") is None and store.history() is None
        store.record(line("request", ["300"]))
        assert store.flush()
        assert store.problem and not store.ping()
        assert any("history row lost" in r.getMessage() and "request" in r.getMessage() for r in caplog.records)
    finally:
        store.engine.dispose()
        store.engine = good
    assert store.ping() and store.problem == ""
    store.close()


def test_the_migrations_build_exactly_the_declared_tables(any_database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from bot.store.tables import metadata

    engine = create_engine(database_url(any_database))
    try:
        migrate(engine)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()


def test_a_finish_written_while_the_store_is_away_is_written_when_it_is_back(any_database: str, clock: Clock) -> None:
    store = open_store(any_database, clock=clock)
    assert store.claim(job("a", "U0ALICE000"), ["300"], lease=30) is None
    good = store.engine
    store.engine = create_engine(database_url("postgresql://nobody:pw@127.0.0.1:9/none"))
    try:
        store.finish("a")
        store.retry_unfinished(lease=30)  # still away: kept
        assert store.problem
    finally:
        store.engine.dispose()
        store.engine = good
    assert store.claim(job("b", "U0BOB00000"), ["300"], lease=30) == "U0ALICE000"
    store.retry_unfinished(lease=30)  # the sweeper's next pass
    assert store.claim(job("c", "U0BOB00000"), ["300"], lease=30) is None
    store.close()
