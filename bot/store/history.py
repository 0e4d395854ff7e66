"""Queries on `events` and `event_mails`: audit lines in, history out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.tables import event_mails, events

# Audit fields that have a column of their own; the rest go to `detail` as JSON.
_COLUMNS = ("action", "actor", "channel", "thread", "via", "reason", "result")


@dataclass(frozen=True)
class HistoryEvent:
    at: float
    action: str
    actor: str
    channel: str
    thread: str
    mail_ids: tuple[str, ...]
    via: str | None = None
    reason: str | None = None
    result: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "action": self.action,
            "actor": self.actor,
            "channel": self.channel,
            "thread": self.thread,
            "mail_ids": list(self.mail_ids),
            "via": self.via,
            "reason": self.reason,
            "result": self.result,
            **self.detail,
        }


def insert_events(connection: Connection, records: Sequence[tuple[float, dict[str, Any]]]) -> int:
    """Write audit records (time, audit line) in two statements, whatever their number; return how many."""
    if not records:
        return 0
    rows = []
    for at, record in records:
        row = {name: _text(record.get(name)) for name in _COLUMNS}
        for name in ("actor", "channel", "thread"):
            row[name] = row[name] or ""
        detail = {k: v for k, v in record.items() if k not in (*_COLUMNS, "time", "mail_ids")}
        rows.append({**row, "at": at, "detail": json.dumps(detail, default=str)})
    # One INSERT … RETURNING for the batch (SQLAlchemy's "insertmanyvalues"), ids in the rows' order.
    ids = connection.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True), rows).scalars()
    mails = [
        {"event_id": event_id, "mail_id": mail}
        for event_id, (_, record) in zip(ids, records, strict=True)
        for mail in dict.fromkeys(str(m) for m in record.get("mail_ids") or ())
    ]
    if mails:
        connection.execute(event_mails.insert(), mails)
    return len(rows)


def recent_events(
    connection: Connection,
    *,
    channel: str | None = None,
    mail_id: str | None = None,
    since: float | None = None,
    actor: str | None = None,
    actions: Sequence[str] = (),
    limit: int = 20,
) -> list[HistoryEvent]:
    """Newest first: in a conversation, about one mail, by one person (of some `actions`), or everywhere."""
    query = sa.select(events).order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)
    if channel is not None:
        query = query.where(events.c.channel == channel)
    if mail_id is not None:
        # A bare id is that mail in any account (`301` finds `brand-b:301` too); a reference, that one mail.
        same = event_mails.c.mail_id == mail_id
        if ":" not in mail_id:
            escaped = mail_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            same = sa.or_(same, event_mails.c.mail_id.like(f"%:{escaped}", escape="\\"))
        query = query.where(events.c.id.in_(sa.select(event_mails.c.event_id).where(same)))
    if since is not None:
        query = query.where(events.c.at >= since)
    if actor is not None:
        query = query.where(events.c.actor == actor)
    if actions:
        query = query.where(events.c.action.in_(actions))
    rows = connection.execute(query).mappings().all()
    mails = _mails_of(connection, [row["id"] for row in rows])
    return [
        HistoryEvent(
            at=row["at"],
            action=row["action"],
            actor=row["actor"],
            channel=row["channel"],
            thread=row["thread"],
            mail_ids=mails.get(row["id"], ()),
            via=row["via"],
            reason=row["reason"],
            result=row["result"],
            detail=json.loads(row["detail"] or "{}"),
        )
        for row in rows
    ]


def prune_events(connection: Connection, before: float) -> int:
    old = sa.select(events.c.id).where(events.c.at < before)
    # Deleted explicitly: SQLite enforces ON DELETE CASCADE only with foreign keys switched on.
    connection.execute(sa.delete(event_mails).where(event_mails.c.event_id.in_(old)))
    return connection.execute(sa.delete(events).where(events.c.at < before)).rowcount


def _mails_of(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    query = sa.select(event_mails.c.event_id, event_mails.c.mail_id).where(event_mails.c.event_id.in_(ids))
    for event_id, mail_id in connection.execute(query):
        found.setdefault(event_id, []).append(mail_id)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
