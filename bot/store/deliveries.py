"""Queries on `slack_events`: a Slack event redelivered to any replica is handled once.

The first delivery inserts the event's id; a redelivery's insert gives way (`ON CONFLICT DO NOTHING`), an
answer rather than an error in PostgreSQL's log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.sql import insert
from bot.store.tables import slack_events


def first_delivery(connection: Connection, event_id: str, *, now: float) -> bool:
    statement = insert(connection, slack_events).values(event_id=event_id[:128], seen_at=now)
    first = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(slack_events.c.event_id)
    return connection.execute(first).first() is not None


def prune_deliveries(connection: Connection, before: float) -> int:
    return connection.execute(sa.delete(slack_events).where(slack_events.c.seen_at < before)).rowcount
