"""Real databases for the tests: SQLite files always, PostgreSQL where one answers.

PostgreSQL is found at CANCEL_MAIL_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
Each test gets a schema of its own, dropped afterwards, so tests never see each other's rows and leave
nothing behind. Where no server answers, those tests skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_reachable: dict[str, str] = {}  # url → "" when it answers, else why not


def postgres_url() -> str:
    return os.environ.get("CANCEL_MAIL_TEST_DATABASE_URL", "").strip() or DEFAULT_TEST_POSTGRES


def postgres_problem(url: str) -> str:
    """Empty when PostgreSQL answers at `url`, else a reason to skip (asked once per run)."""
    if url not in _reachable:
        import psycopg

        from bot.store import database_url, masked

        conninfo = database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(conninfo, connect_timeout=3):
                _reachable[url] = ""
        except Exception as error:
            _reachable[url] = (
                f"no PostgreSQL answers at {masked(url)} ({type(error).__name__}); set CANCEL_MAIL_TEST_DATABASE_URL"
            )
    return _reachable[url]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own; the schema is dropped on exit."""
    import psycopg

    from bot.store import database_url

    url = postgres_url()
    if problem := postgres_problem(url):
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of an empty database, once per engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


async def lapse(store, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Leases and heartbeats live on the database's clock: let `seconds` pass for them, as the database sees it."""
    import sqlalchemy as sa

    from bot.store.tables import jobs, owed, processes

    async with store.engine.begin() as connection:
        for column in (jobs.c.lease_until, owed.c.lease_until, processes.c.alive_until):
            await connection.execute(sa.update(column.table).values({column: column - seconds}))


def slow_inserts(url: str, table: str, seconds: float) -> None:
    """Every row inserted into `table` takes `seconds` more, as on a busy database: a race between two
    transactions then shows every run, not by luck. The trigger lives in the test's schema, dropped with it."""
    import psycopg

    from bot.store import database_url

    conninfo = database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NEW; END $$"
        )
        connection.execute(
            f"CREATE TRIGGER slow_insert BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION slow_insert()"
        )
