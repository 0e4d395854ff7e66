"""Leases: a row worked on by one process at a time (a cancel job, an owed message), taken over by another
once its process is gone.

A row is its owner's while either holds:
- its own `lease_until` has not passed: written once, when the row is (a job's covers MailPartner's deadline,
  so a call the owner may still have in flight is answered before anyone asks again);
- its owner's heartbeat (`processes`, liveness.py) is fresh: one write per process every few seconds, however
  many rows it holds, instead of a renewal of every row.
A drained process hands its rows back (owner "", lease 0) and deletes its heartbeat; a killed one stops
beating, and its rows are taken once its heartbeat and their leases have run out. Both on the database's
clock (sql.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from bot.store.sql import db_now
from bot.store.tables import processes


def take_over(
    connection: Connection,
    table: sa.Table,
    *,
    where: Sequence[sa.ColumnElement[bool]],
    owner: str,
    lease: float,
    limit: int,
) -> list[RowMapping]:
    """Rows of `table` (with `owner`, `lease_until`, `takeovers` and `created_at`) whose process is gone, now
    `owner`'s, oldest first: one `UPDATE … RETURNING` over the rows it locks.

    PostgreSQL skips rows another replica is taking over at this moment (`FOR UPDATE SKIP LOCKED`), and
    checks each locked row's conditions again; SQLite has one writer, so its UPDATE is single-winner as it is.
    """
    now = db_now()
    alive = sa.exists().where(processes.c.owner == table.c.owner, processes.c.alive_until >= now)
    gone = (
        sa.select(table.c.id)
        .where(table.c.lease_until < now, ~alive, *where)
        .order_by(table.c.created_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = connection.execute(
        sa.update(table)
        .where(table.c.id.in_(gone.scalar_subquery()))
        .values(owner=owner, lease_until=now + lease, takeovers=table.c.takeovers + 1)
        .returning(*table.c)
    )
    return sorted(taken.mappings().all(), key=lambda row: (row["created_at"], row["id"]))
