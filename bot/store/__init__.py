"""The store: SQLite by default, PostgreSQL for several replicas; one code path (SQLAlchemy Core) for both.

Store          the facade the bot uses; survives the database going away
open_store     connect and migrate (`DATABASE_URL`)
StoreError     the store cannot be reached or migrated
"""

from bot.store.engine import StoreError, current_revision, database_url, head_revision, masked, migrate
from bot.store.history import HistoryEvent
from bot.store.jobs import JobRecord
from bot.store.steps import WaitingStep
from bot.store.store import Store, open_store

__all__ = [
    "HistoryEvent",
    "JobRecord",
    "Store",
    "StoreError",
    "WaitingStep",
    "current_revision",
    "database_url",
    "head_revision",
    "masked",
    "migrate",
    "open_store",
]
