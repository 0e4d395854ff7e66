"""Running it as operators do: secrets from files, the state directory, a check that changes nothing,
backups of a running store, and migrations that let replicas be upgraded one at a time."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import SECRET_SETTINGS, Settings, SettingsError
from bot.store import backup_sqlite, create_engine, database_url, head_revision, migrate, open_store
from bot.store.backup import BackupError
from tests.fakes import API_KEY, BOT_TOKEN, SIGNING_SECRET, run_bot

# -- secrets from files ----------------------------------------------------------------------------


def test_every_secret_reads_from_a_file(tmp_path: Path) -> None:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-from-a-file",
        "SLACK_SIGNING_SECRET": "signing-from-a-file",
        "SLACK_APP_TOKEN": "xapp-from-a-file",
        "MAILPARTNER_API_KEY": "key-from-a-file",
        "DATABASE_URL": f"sqlite:///{tmp_path}/from-a-file.db",
    }
    assert set(values) == set(SECRET_SETTINGS)
    env = {}
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")  # as `echo` and most secret stores write it
        env[f"{name}_FILE"] = str(tmp_path / name)
    settings = Settings.from_env(env)
    assert settings.slack_bot_token == "xoxb-from-a-file" and settings.slack_signing_secret == "signing-from-a-file"
    assert settings.slack_app_token == "xapp-from-a-file" and settings.mailpartner_api_key == "key-from-a-file"
    assert settings.database_url == values["DATABASE_URL"]


def test_a_secret_set_both_ways_or_unreadable_is_named(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k")
    with pytest.raises(SettingsError) as both:
        Settings.from_env({"MAILPARTNER_API_KEY": "k", "MAILPARTNER_API_KEY_FILE": str(tmp_path / "key")}, console=True)
    assert both.value.problems == ["MAILPARTNER_API_KEY and MAILPARTNER_API_KEY_FILE are both set: keep one"]
    with pytest.raises(SettingsError) as missing:
        Settings.from_env({"SLACK_BOT_TOKEN_FILE": str(tmp_path / "nope")}, console=True)
    assert missing.value.problems == [
        f"SLACK_BOT_TOKEN_FILE: cannot read {tmp_path / 'nope'}: No such file or directory"
    ]


def test_a_secret_file_never_reaches_the_log(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("mp-secret-from-file-9876")
    result = run_bot(
        ["cancel", "300", "--yes"],
        tmp_path,
        MAILPARTNER_API_KEY_FILE=str(tmp_path / "key"),
        MAILPARTNER_BASE_URL="http://127.0.0.1:9/v1",  # nothing listens: the error paths log the most
        MAILPARTNER_DEADLINE="1",
        CANCEL_MAIL_STATE_DIR=str(tmp_path / "state"),
    )
    assert result.returncode == 1  # never reached: not cancelled
    assert "mp-secret-from-file-9876" not in result.stdout + result.stderr


# -- the state directory ---------------------------------------------------------------------------


def test_the_default_store_does_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    home = Settings.from_env({"HOME": str(tmp_path)}, console=True)
    assert home.database_url == f"sqlite:///{tmp_path}/.local/state/cancel-mail-bot/cancel-mail.db"
    systemd = Settings.from_env({"STATE_DIRECTORY": "/var/lib/cancel-mail-bot"}, console=True)
    assert systemd.database_url == "sqlite:////var/lib/cancel-mail-bot/cancel-mail.db"
    image = Settings.from_env({"CANCEL_MAIL_STATE_DIR": "/data", "STATE_DIRECTORY": "/elsewhere"}, console=True)
    assert image.database_url == "sqlite:////data/cancel-mail.db"
    with pytest.raises(SettingsError, match="CANCEL_MAIL_STATE_DIR must be an absolute path"):
        Settings.from_env({"CANCEL_MAIL_STATE_DIR": "data"}, console=True)


def test_first_start_creates_the_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state" / "deeper"
    result = run_bot(["migrate"], tmp_path, CANCEL_MAIL_STATE_DIR=str(state))
    assert result.returncode == 0, result.stderr
    assert (state / "cancel-mail.db").is_file() and not list(tmp_path.glob("*.db"))


# -- check changes nothing -------------------------------------------------------------------------


def test_a_port_already_taken_is_one_line_and_the_process_ends(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot(
            [],
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL="http://127.0.0.1:9/api/",  # Slack unreachable: the bot starts anyway
            MAILPARTNER_SANDBOX="true",
            PORT=str(port),
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on port {port} (PORT)" in result.stderr and "Traceback" not in result.stderr


def test_check_never_creates_a_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run_bot(["check"], tmp_path, MAILPARTNER_SANDBOX="true", CANCEL_MAIL_STATE_DIR=str(state))
    assert "no database yet at" in result.stdout and "first start creates it" in result.stdout
    assert result.returncode == 0, result.stdout
    assert not state.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_check_never_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(database_url(f"sqlite:///{path}"))
    await migrate(engine, "0001")
    await engine.dispose()
    result = run_bot(["check"], tmp_path, MAILPARTNER_SANDBOX="true", DATABASE_URL=f"sqlite:///{path}")
    assert result.returncode == 1 and "is at revision 0001, not" in result.stdout
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]


@pytest.mark.anyio
async def test_check_accepts_a_store_a_newer_release_migrated(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await (await open_store(f"sqlite:///{path}")).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    result = run_bot(["check"], tmp_path, MAILPARTNER_SANDBOX="true", DATABASE_URL=f"sqlite:///{path}")
    assert "newer than this release's" in result.stdout and result.returncode == 0, result.stdout
    # And this release starts on it, leaving it as it is, rather than refusing to start mid-rollout.
    await (await open_store(f"sqlite:///{path}")).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]


# -- backups ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_backup_copies_a_store_that_is_being_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    store = await open_store(url)
    try:
        for i in range(200):
            store.record({"action": "request", "actor": "U0ALICE000", "channel": "C0ONCALL00", "mail_ids": [f"{i}"]})
        assert await store.flush(10)
        size = backup_sqlite(tmp_path / "live.db", tmp_path / "copy.db")
        store.record({"action": "keep", "actor": "U0ALICE000", "channel": "C0ONCALL00", "mail_ids": ["x1"]})
        assert await store.flush(10)
    finally:
        await store.close()
    assert size > 0
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("SELECT count(*) FROM events").fetchone() == (200,)
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
    with pytest.raises(BackupError, match="exists already"):
        backup_sqlite(tmp_path / "live.db", tmp_path / "copy.db")
    with pytest.raises(BackupError, match="nothing to back up"):
        backup_sqlite(tmp_path / "none.db", tmp_path / "other.db")
    (tmp_path / "not-a-store.db").write_text("not SQLite at all " * 100)
    with pytest.raises(BackupError, match="cannot copy"):
        backup_sqlite(tmp_path / "not-a-store.db", tmp_path / "half.db")
    assert not (tmp_path / "half.db").exists()  # no broken copy left to be restored one day


@pytest.mark.anyio
async def test_backup_command(tmp_path: Path) -> None:
    await (await open_store(f"sqlite:///{tmp_path}/bot.db")).close()
    result = run_bot(["backup", str(tmp_path / "copy.db")], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
    assert result.returncode == 0 and "copied to" in result.stdout, result.stderr
    again = run_bot(["backup", str(tmp_path / "copy.db")], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
    assert again.returncode == 2 and "exists already" in again.stderr
    postgres = run_bot(
        ["backup", str(tmp_path / "pg.dump")], tmp_path, DATABASE_URL="postgresql://bot:pw@127.0.0.1:9/db"
    )
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr and "pw" not in postgres.stderr
    assert API_KEY not in result.stdout


# -- rolling upgrades ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_newest_migration_keeps_the_previous_schema_working(any_database: str) -> None:
    """The rule for rolling upgrades: a replica still on the previous release works on the new schema.

    So the newest migration only adds: every table and column of the revision before it is still there,
    of the same type, and every column it adds to an existing table can be left out of an INSERT.
    """
    from alembic.script import ScriptDirectory

    from bot.store.engine import _alembic_config

    newest = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    previous = ScriptDirectory.from_config(_alembic_config()).get_revision(newest).down_revision
    assert previous, "the newest migration is the first: nothing to be compatible with"
    engine = create_engine(database_url(any_database))
    try:
        await migrate(engine, str(previous))
        before = await _columns(engine)
        await migrate(engine)
        after = await _columns(engine)
    finally:
        await engine.dispose()
    for table, columns in before.items():
        assert table in after, f"{newest} drops table {table}"
        for name, (kind, _required) in columns.items():
            assert name in after[table], f"{newest} drops {table}.{name}"
            assert after[table][name][0] == kind, f"{newest} changes the type of {table}.{name}"
        for name, (_kind, required) in after[table].items():
            if name not in columns:
                assert not required, f"{newest} adds {table}.{name} NOT NULL without a default"


async def _columns(engine: AsyncEngine) -> dict[str, dict[str, tuple[str, bool]]]:
    """Each table's columns: type, and whether an INSERT must give it (NOT NULL, no default)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_columns_of)


def _columns_of(connection: sa.Connection) -> dict[str, dict[str, tuple[str, bool]]]:
    inspector = sa.inspect(connection)
    return {
        table: {
            column["name"]: (
                str(column["type"]),
                not column["nullable"] and column.get("default") is None and column.get("autoincrement") is not True,
            )
            for column in inspector.get_columns(table)
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }
