"""Queries on `processes`: one heartbeat row per running process, on the database's clock.

A process beats every few seconds (the sweeper); while its row is fresh, the jobs and owed messages it
owns are its own (leases.py). It deletes its row when it stops, so what it left is taken over at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.sql import db_now, insert
from bot.store.tables import processes

FORGET_AFTER = 86400.0  # seconds: a process gone this long is forgotten (its rows are long taken over)


def beat(connection: Connection, *, owner: str, lease: float) -> None:
    """`owner` is alive for `lease` more seconds: one row written, however many rows it holds."""
    statement = insert(connection, processes).values(owner=owner, started_at=db_now(), alive_until=db_now() + lease)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["owner"], set_={"alive_until": statement.excluded.alive_until})
    )


def retire(connection: Connection, *, owner: str) -> None:
    """`owner` stops: its rows are no longer kept for it."""
    connection.execute(sa.delete(processes).where(processes.c.owner == owner))


def prune_processes(connection: Connection) -> int:
    return connection.execute(sa.delete(processes).where(processes.c.alive_until < db_now() - FORGET_AFTER)).rowcount
