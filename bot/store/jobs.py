"""Queries on `jobs` and `claims`: a cancel is recorded with a lease before MailPartner is called, each of
its mails claimed once across every replica, and taken over by another process when its lease runs out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

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
            # Plain statements with parameters: compiled once, cached, cheap on the confirm path.
            connection.execute(
                jobs.insert(),
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
                },
            )
            connection.execute(
                claims.insert(),
                [{"mail_id": m, "job_id": job.id, "confirmer": job.confirmer, "claimed_at": now} for m in mail_ids],
            )
    except IntegrityError:
        holder = connection.execute(
            sa.select(claims.c.confirmer).where(claims.c.mail_id.in_(list(mail_ids))).limit(1)
        ).scalar()
        return str(holder or "?")
    return None


def finish_job(connection: Connection, job_id: str, *, now: float) -> None:
    connection.execute(sa.delete(claims).where(claims.c.job_id == job_id))
    connection.execute(
        sa.update(jobs).where(jobs.c.id == job_id).values(state="done", finished_at=now, step_token=None)
    )


def renew_leases(connection: Connection, job_ids: Sequence[str], *, owner: str, until: float) -> int:
    if not job_ids:
        return 0
    query = sa.update(jobs).where(jobs.c.id.in_(list(job_ids)), jobs.c.owner == owner, jobs.c.state == "running")
    return connection.execute(query.values(lease_until=until)).rowcount


def take_over_expired(
    connection: Connection, *, owner: str, now: float, lease: float, limit: int = 20
) -> list[JobRecord]:
    """Jobs whose process stopped renewing their lease, now owned by `owner`.

    PostgreSQL skips rows another replica is taking over at this moment (SKIP LOCKED); the conditional
    UPDATE makes the takeover single-winner on SQLite too, which has no row locks.
    """
    query = (
        sa.select(jobs)
        .where(jobs.c.state == "running", jobs.c.lease_until < now)
        .order_by(jobs.c.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = []
    for row in connection.execute(query).mappings().all():
        won = connection.execute(
            sa.update(jobs)
            .where(jobs.c.id == row["id"], jobs.c.state == "running", jobs.c.lease_until == row["lease_until"])
            .values(owner=owner, lease_until=now + lease, takeovers=jobs.c.takeovers + 1)
        ).rowcount
        if won:
            taken.append(
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
            )
    return taken


def prune_jobs(connection: Connection, before: float) -> int:
    old = sa.select(jobs.c.id).where(jobs.c.state == "done", jobs.c.finished_at < before)
    connection.execute(sa.delete(claims).where(claims.c.job_id.in_(old)))
    return connection.execute(sa.delete(jobs).where(jobs.c.state == "done", jobs.c.finished_at < before)).rowcount
