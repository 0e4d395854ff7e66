"""Queries on `jobs` and `claims`: a cancel is recorded with a lease before MailPartner is called, each of
its mails claimed once across every replica, and taken over by another process when its lease runs out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.store import leases
from bot.store.tables import claims, jobs


@dataclass(frozen=True)
class JobRecord:
    """What a cancel needs to finish anywhere: the ticket and where its outcome goes."""

    id: str
    ticket: str  # the prompt's encoded ticket
    confirmer: str
    channel: str
    thread_ts: str = ""
    prompt_ts: str = ""
    response_url: str = ""
    execution_id: str | None = None
    step_token: str | None = None
    takeovers: int = 0


def claim_job(
    connection: Connection, job: JobRecord, mail_ids: Sequence[str], *, owner: str, now: float, lease: float
) -> str | None:
    """Record `job` and claim its mails; None when done, else who confirmed the cancel already holding one.

    Runs in its own transaction (a savepoint): a mail claimed by someone else undoes the whole claim.
    """
    try:
        with connection.begin_nested():
            _insert(connection, [(job, mail_ids)], owner=owner, now=now, lease=lease)
    except IntegrityError:
        holder = connection.execute(
            sa.select(claims.c.confirmer).where(claims.c.mail_id.in_(list(mail_ids))).limit(1)
        ).scalar()
        return str(holder or "?")
    return None


def claim_jobs(
    connection: Connection,
    batch: Sequence[tuple[JobRecord, Sequence[str]]],
    *,
    owner: str,
    now: float,
    lease: float,
) -> list[str | None]:
    """`claim_job` for many jobs at once: two statements when no mail is taken (the usual case under a
    burst of confirms), then one savepoint per job only when one is."""
    try:
        with connection.begin_nested():
            _insert(connection, batch, owner=owner, now=now, lease=lease)
    except IntegrityError:
        return [claim_job(connection, job, ids, owner=owner, now=now, lease=lease) for job, ids in batch]
    return [None] * len(batch)


def _insert(
    connection: Connection, batch: Sequence[tuple[JobRecord, Sequence[str]]], *, owner: str, now: float, lease: float
) -> None:
    # Plain statements with parameters: compiled once, cached, cheap on the confirm path.
    connection.execute(
        jobs.insert(),
        [
            {
                "id": job.id,
                "state": "running",
                "ticket": job.ticket,
                "confirmer": job.confirmer,
                "channel": job.channel,
                "thread_ts": job.thread_ts,
                "prompt_ts": job.prompt_ts,
                "response_url": job.response_url,
                "execution_id": job.execution_id,
                "step_token": job.step_token,
                "owner": owner,
                "lease_until": now + lease,
                "created_at": now,
            }
            for job, _ in batch
        ],
    )
    connection.execute(
        claims.insert(),
        [
            {"mail_id": m, "job_id": job.id, "confirmer": job.confirmer, "claimed_at": now}
            for job, mail_ids in batch
            for m in mail_ids
        ],
    )


_RELEASE_CLAIMS = sa.delete(claims).where(claims.c.job_id == sa.bindparam("job"))
_MARK_DONE = (
    sa.update(jobs)
    .where(jobs.c.id == sa.bindparam("job"))
    .values(state="done", finished_at=sa.bindparam("now"), step_token=None)
)


def finish_jobs(connection: Connection, job_ids: Sequence[str], *, now: float) -> None:
    """Release the jobs' claims and mark them done: two statements, whatever their number."""
    connection.execute(_RELEASE_CLAIMS, [{"job": job_id} for job_id in job_ids])
    connection.execute(_MARK_DONE, [{"job": job_id, "now": now} for job_id in job_ids])


def renew_leases(connection: Connection, job_ids: Sequence[str], *, owner: str, until: float) -> int:
    if not job_ids:
        return 0
    query = sa.update(jobs).where(jobs.c.id.in_(list(job_ids)), jobs.c.owner == owner, jobs.c.state == "running")
    return connection.execute(query.values(lease_until=until)).rowcount


def take_over_expired(
    connection: Connection, *, owner: str, now: float, lease: float, limit: int = 20
) -> list[JobRecord]:
    """Jobs whose process stopped renewing their lease, now owned by `owner` (leases.py)."""
    rows = leases.take_over_expired(
        connection,
        jobs,
        where=[jobs.c.state == "running"],
        order_by=[jobs.c.lease_until],
        owner=owner,
        now=now,
        lease=lease,
        limit=limit,
    )
    return [
        JobRecord(
            id=row["id"],
            ticket=row["ticket"],
            confirmer=row["confirmer"],
            channel=row["channel"],
            thread_ts=row["thread_ts"],
            prompt_ts=row["prompt_ts"],
            response_url=row["response_url"],
            execution_id=row["execution_id"],
            step_token=row["step_token"],
            takeovers=row["takeovers"] + 1,
        )
        for row in rows
    ]


def prune_jobs(connection: Connection, before: float) -> int:
    old = sa.select(jobs.c.id).where(jobs.c.state == "done", jobs.c.finished_at < before)
    connection.execute(sa.delete(claims).where(claims.c.job_id.in_(old)))
    return connection.execute(sa.delete(jobs).where(jobs.c.state == "done", jobs.c.finished_at < before)).rowcount
