"""`python -m bot backup FILE`: a consistent copy of a running SQLite store.

SQLite's online backup API copies the database page by page under its own locks, so the bot may go on
writing while the copy is taken: the copy is the database as of one moment, WAL included. PostgreSQL has
its own tools (pg_dump); the README says how.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class BackupError(Exception):
    """The copy was not taken; the message says why in one line."""


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy `source` to `target` (which must not exist yet); return the copy's size in bytes."""
    if not source.is_file():
        raise BackupError(f"no store at {source}: nothing to back up")
    if target.exists():
        raise BackupError(f"{target} exists already: name a new file")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")
    # Read-only: a backup must never create or change the store it copies.
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer, pages=1024)  # in steps, so the bot's writers are never held up for long
        (check,) = writer.execute("PRAGMA integrity_check").fetchone()
        problem = "" if check == "ok" else f"the copy failed its integrity check: {check}"
    except sqlite3.Error as error:
        problem = f"cannot copy {source}: {error}"
    finally:
        reader.close()
        writer.close()
    if problem:  # no half-made or broken copy is left behind to be restored one day
        target.unlink(missing_ok=True)
        raise BackupError(problem)
    return target.stat().st_size
