"""Queries on `steps`: Workflow Builder runs waiting on a prompt, ended exactly once by whoever gets there
first (a click, a keep, an expiry sweep, a takeover), on any replica."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.store.tables import steps


@dataclass(frozen=True)
class WaitingStep:
    execution_id: str
    channel: str
    prompt_ts: str
    ticket: str
    token: str


def register_step(
    connection: Connection, execution_id: str, *, channel: str, ticket: str, token: str, expires_at: float
) -> None:
    connection.execute(
        sa.insert(steps).values(
            execution_id=execution_id,
            state="waiting",
            channel=channel,
            ticket=ticket,
            token=token,
            expires_at=expires_at,
        )
    )


def set_prompt(connection: Connection, execution_id: str, prompt_ts: str) -> None:
    connection.execute(sa.update(steps).where(steps.c.execution_id == execution_id).values(prompt_ts=prompt_ts))


def end_step(connection: Connection, execution_id: str, *, result: str, now: float) -> bool:
    """Mark the step ended; True only for the one caller that ended it."""
    ended = connection.execute(
        sa.update(steps)
        .where(steps.c.execution_id == execution_id, steps.c.state == "waiting")
        .values(state="ended", result=result, ended_at=now, token="")
    ).rowcount
    if ended:
        return True
    exists = connection.execute(sa.select(steps.c.state).where(steps.c.execution_id == execution_id)).scalar()
    if exists is not None:
        return False
    try:  # a step this store never saw start (its start was lost while the store was away)
        with connection.begin_nested():
            connection.execute(
                sa.insert(steps).values(
                    execution_id=execution_id,
                    state="ended",
                    channel="",
                    ticket="",
                    token="",
                    expires_at=now,
                    result=result,
                    ended_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def expired_steps(connection: Connection, *, now: float, limit: int = 50) -> list[WaitingStep]:
    query = (
        sa.select(steps)
        .where(steps.c.state == "waiting", steps.c.expires_at < now)
        .order_by(steps.c.expires_at)
        .limit(limit)
    )
    return [
        WaitingStep(r["execution_id"], r["channel"], r["prompt_ts"], r["ticket"], r["token"])
        for r in connection.execute(query).mappings()
    ]


def prune_steps(connection: Connection, before: float) -> int:
    return connection.execute(sa.delete(steps).where(steps.c.state == "ended", steps.c.ended_at < before)).rowcount
