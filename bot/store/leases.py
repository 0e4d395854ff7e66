"""Leases: a row worked on by one process at a time (a cancel job, an owed message), taken over by another
once its process stops renewing it."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping


def take_over_expired(
    connection: Connection,
    table: sa.Table,
    *,
    where: Sequence[sa.ColumnElement[bool]],
    order_by: Sequence[sa.ColumnElement[object]],
    owner: str,
    now: float,
    lease: float,
    limit: int,
) -> list[RowMapping]:
    """Rows of `table` (with `owner`, `lease_until` and `takeovers`) whose lease ran out, now `owner`'s; each
    returned as it was read, before the takeover.

    PostgreSQL skips rows another replica is taking over at this moment (SKIP LOCKED); the conditional
    UPDATE (the row's lease and owner as read) makes the takeover single-winner on SQLite too, which has
    no row locks.
    """
    query = (
        sa.select(table)
        .where(table.c.lease_until < now, *where)
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = []
    for row in connection.execute(query).mappings().all():
        won = connection.execute(
            sa.update(table)
            .where(
                table.c.id == row["id"],
                table.c.owner == row["owner"],
                table.c.lease_until == row["lease_until"],
                *where,
            )
            .values(owner=owner, lease_until=now + lease, takeovers=table.c.takeovers + 1)
        ).rowcount
        if won:
            taken.append(row)
    return taken
