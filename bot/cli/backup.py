"""`python -m bot backup`: a consistent copy of the SQLite store, while the bot runs."""

from __future__ import annotations

import sys

from bot.cli.common import EXIT_USAGE
from bot.settings import Settings


def backup_command(settings: Settings, target: str) -> int:
    from pathlib import Path

    from bot.store import BackupError, backup_sqlite, database_url, sqlite_path

    source = sqlite_path(database_url(settings.database_url))
    if source is None:
        print(
            "backup: the store is PostgreSQL; back it up with its own tools: "
            'pg_dump --format=custom --file=FILE "$DATABASE_URL" (README, Deploying → Backups)',
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        size = backup_sqlite(source, Path(target))
    except BackupError as error:
        print(f"backup: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"backup: {source} copied to {target} ({size} bytes); restore by stopping the bot and putting it back")
    return 0
