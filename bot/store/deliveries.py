"""Queries on `slack_events`: a Slack event redelivered to any replica is handled once."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.store.tables import slack_events


def first_delivery(connection: Connection, event_id: str, *, now: float) -> bool:
    try:
        with connection.begin_nested():
            connection.execute(sa.insert(slack_events).values(event_id=event_id[:128], seen_at=now))
    except IntegrityError:
        return False
    return True


def prune_deliveries(connection: Connection, before: float) -> int:
    return connection.execute(sa.delete(slack_events).where(slack_events.c.seen_at < before)).rowcount
