"""Connecting to the store and bringing its schema to the newest revision.

`DATABASE_URL` is written as operators write it (`sqlite:///cancel-mail.db`, `postgresql://…`,
`postgres://…`); the driver is chosen here (aiosqlite, psycopg 3's async), so one code path serves both.

Every engine is SQLAlchemy's asyncio engine: the store's calls are coroutines on the bot's one event loop.
Alembic and the queries beside each table are plain functions of a `Connection`, run on the async one
with `run_sync` (SQLAlchemy's bridge: the same code on either engine, no thread of its own).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:  # Alembic is imported where migrations run, not by everything that reads a URL
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Two replicas starting together must not both create the tables: one migrates, the other waits.
_MIGRATION_LOCK = 0x63616E63  # "canc"


# The newest migration's revision. A store already there is left alone without loading Alembic, whose
# import costs every start 170 ms and 8 MB; tests/test_store.py checks it against Alembic's own head.
HEAD = "0004"


class StoreError(Exception):
    """The store cannot be reached, or its schema cannot be brought up to date."""


def database_url(raw: str) -> URL:
    """Parse DATABASE_URL; raise ValueError naming what is wrong (never the password)."""
    try:
        url = make_url(raw.strip())
    except Exception as error:  # SQLAlchemy raises ArgumentError with the raw text in it
        raise ValueError("DATABASE_URL is not a database URL (sqlite:///file.db or postgresql://…)") from error
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+aiosqlite"):
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"DATABASE_URL must be sqlite:///… or postgresql://…, not {url.drivername}://")


def masked(url: URL | str) -> str:
    """The URL as it may appear in a log line or an error: the password hidden, the driver as operators write it."""
    parsed = url if isinstance(url, URL) else make_url(url)
    if "+" in parsed.drivername:
        parsed = parsed.set(drivername=parsed.get_backend_name())
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The SQLite file a URL names; None for PostgreSQL or an in-memory database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def create_engine(url: URL, *, pool_size: int = 10) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        # aiosqlite logs every call with its arguments at DEBUG: the rows, with what people wrote, and the
        # messages the bot owes them. Those never belong in a log, whatever its level.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
        # aiosqlite gives each connection a thread of its own, where SQLite's calls block. The store uses
        # one connection at a time (it has one writer), so the pool keeps one and opens a second at most.
        engine = create_async_engine(url, pool_size=1, max_overflow=1, connect_args={"timeout": 30})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLite has one writer: take the write lock when a transaction begins, so two writers queue on
        # busy_timeout instead of failing when one upgrades its read lock (and SAVEPOINTs work).
        sa.event.listen(engine.sync_engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,  # a replica outlives database restarts: test a pooled connection before use
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_pragmas(connection: Any, _record: object) -> None:
    cursor = connection.cursor()
    # WAL lets readers work beside the one writer; NORMAL sync is safe with WAL and much faster.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
    connection.isolation_level = None  # the driver's own implicit BEGIN is replaced by the "begin" hook


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the store records, read without Alembic; None when it records none (a new store)."""
    async with engine.connect() as connection:
        try:
            return (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        except sa.exc.DBAPIError:  # no such table yet
            return None


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every migration up to `revision`; raise StoreError with a readable cause.

    A store already at a revision this release does not know was migrated by a newer release, during a
    rolling upgrade or before a rollback: every migration keeps working with the release before it (README,
    Upgrades), so it is left as it is rather than refused.
    """
    try:
        if revision == "head" and await current_revision(engine) == HEAD:
            return  # the usual start: nothing to do, and no Alembic to load
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    except Exception as error:
        raise StoreError(f"cannot migrate the store at {masked(engine.url)}: {_cause(error)}") from error


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in known_revisions():
        log.warning(
            "store at %s is at revision %s, newer than this release's %s: left as it is",
            masked(connection.engine.url),
            current,
            head_revision(),
        )
        return
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def check_reachable(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        raise StoreError(f"cannot reach the store at {masked(engine.url)}: {_cause(error)}") from error


def _cause(error: BaseException) -> str:
    """One line about what failed: the driver's own first line, which names host and port, not secrets."""
    inner = getattr(error, "orig", None) or error
    first = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {first[:200]}" if first else type(inner).__name__
