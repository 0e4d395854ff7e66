"""The store: SQLite by default, PostgreSQL for several replicas; one code path (SQLAlchemy Core) for both.

Store          the facade the bot uses; survives the database going away
open_store     connect and migrate (`DATABASE_URL`)
StoreError     the store cannot be reached or migrated
backup_sqlite  a consistent copy of a running SQLite store
"""

from bot.store.backup import BackupError, backup_sqlite
from bot.store.engine import (
    StoreError,
    check_reachable,
    create_engine,
    current_revision,
    database_url,
    head_revision,
    known_revisions,
    masked,
    migrate,
    sqlite_path,
)
from bot.store.history import HistoryEvent
from bot.store.jobs import MINE, UNRECORDED, ClaimAnswer, Claimed, JobRecord
from bot.store.owed import OwedRecord
from bot.store.steps import WaitingStep
from bot.store.store import Store, open_store

__all__ = [
    "MINE",
    "UNRECORDED",
    "BackupError",
    "ClaimAnswer",
    "Claimed",
    "HistoryEvent",
    "JobRecord",
    "OwedRecord",
    "Store",
    "StoreError",
    "WaitingStep",
    "backup_sqlite",
    "check_reachable",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "known_revisions",
    "masked",
    "migrate",
    "open_store",
    "sqlite_path",
]
