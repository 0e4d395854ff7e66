"""Queries on `owed`: a message owed to a person is written before Slack is first tried and deleted once
Slack took it. The process that wrote it holds it while its heartbeat is fresh (leases.py); when it drains it
hands its rows back, and when it dies its heartbeat runs out: either way another process takes them over,
one winner each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store import leases
from bot.store.sql import db_now
from bot.store.tables import owed


@dataclass(frozen=True)
class OwedRecord:
    """One message as it will be posted: rendered once, never rebuilt from anything else."""

    id: str
    kind: str
    lane: str
    conversation: str
    ways: list[dict[str, Any]]
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    deadline: float = 0.0
    takeovers: int = 0
    message: dict[str, Any] = field(default_factory=dict)  # text and blocks, once for every way


def owe(connection: Connection, records: Sequence[OwedRecord], *, owner: str, lease: float) -> None:
    if not records:
        return
    connection.execute(
        owed.insert().values(lease_until=db_now() + lease),
        [
            {
                "id": r.id,
                "kind": r.kind,
                "lane": r.lane[:64],
                "conversation": r.conversation,
                "message": json.dumps(r.message, separators=(",", ":")),
                "ways": json.dumps(r.ways, separators=(",", ":")),
                "text": r.text,
                "meta": json.dumps(r.meta, separators=(",", ":")),
                "created_at": r.created_at,
                "deadline": r.deadline,
                "owner": owner,
            }
            for r in records
        ],
    )


_SETTLE = sa.delete(owed).where(owed.c.id == sa.bindparam("owed_id"))


def settle(connection: Connection, ids: Sequence[str]) -> None:
    """Slack took them (or they were given up and audited): they are owed no more."""
    if ids:
        connection.execute(_SETTLE, [{"owed_id": i} for i in ids])


def release(connection: Connection, ids: Sequence[str], *, owner: str) -> int:
    """Hand rows back at once (a drain): the next process to sweep takes them, without waiting for a lease."""
    if not ids:
        return 0
    query = sa.update(owed).where(owed.c.id.in_(list(ids)), owed.c.owner == owner)
    return connection.execute(query.values(owner="", lease_until=0.0)).rowcount


def take_over(connection: Connection, *, owner: str, lease: float, limit: int) -> list[OwedRecord]:
    """Rows whose process is gone (or handed them back), oldest first, now owned by `owner` (leases.py)."""
    rows = leases.take_over(connection, owed, where=[], owner=owner, lease=lease, limit=limit)
    return [
        OwedRecord(
            id=row["id"],
            kind=row["kind"],
            lane=row["lane"],
            conversation=row["conversation"],
            ways=json.loads(row["ways"]),
            text=row["text"],
            meta=json.loads(row["meta"]),
            created_at=row["created_at"],
            deadline=row["deadline"],
            takeovers=row["takeovers"],
            message=json.loads(row["message"]),
        )
        for row in rows
    ]


def summary(connection: Connection) -> tuple[int, float | None]:
    """How many messages are owed, and when the oldest was written."""
    count, oldest = connection.execute(sa.select(sa.func.count(), sa.func.min(owed.c.created_at))).one()
    return int(count), oldest
