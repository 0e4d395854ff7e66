"""Queries on `jobs` and `claims`: a cancel is recorded with a lease before MailPartner is called, each of
its mails claimed once across every replica, and taken over by another process once its process is gone.

Claims never deadlock and never fail open: every claimer inserts its mail ids in one order (sorted), with
`ON CONFLICT DO NOTHING`, so two transactions claiming the same mails wait on each other in the same order
and the second learns, once the first commits, that the mail is held. A claim's answer is one of three:
mine, held by someone (who, since when), or unrecorded (the store did not answer; `Store.claim`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store import leases
from bot.store.sql import db_now, insert
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


class Claimed(enum.Enum):
    MINE = "mine"  # recorded: every replica sees this job hold its mails
    HELD = "held"  # another cancel holds one of them
    UNRECORDED = "unrecorded"  # the store did not answer: only this process's own guard holds


@dataclass(frozen=True)
class ClaimAnswer:
    state: Claimed
    holder: str = ""  # HELD: who confirmed the cancel that holds a mail ("?" when it finished meanwhile)
    since: float | None = None  # HELD: when they claimed it


MINE = ClaimAnswer(Claimed.MINE)
UNRECORDED = ClaimAnswer(Claimed.UNRECORDED)


def claim_jobs(
    connection: Connection,
    batch: Sequence[tuple[JobRecord, Sequence[str]]],
    *,
    owner: str,
    now: float,
    lease: float,
) -> list[ClaimAnswer]:
    """Record each job with a lease on the database's clock and claim its mails: four statements, whatever
    the batch's size. A job one of whose mails is held is not kept (its other claims are undone)."""
    if not batch:
        return []
    connection.execute(
        jobs.insert().values(lease_until=db_now() + lease),
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
                "created_at": now,
            }
            for job, _ in batch
        ],
    )
    # One order for every claimer: two replicas claiming `a b` and `b a` both wait on `a` first.
    wanted = sorted(((mail, job) for job, mail_ids in batch for mail in dict.fromkeys(mail_ids)), key=_by_mail)
    rows = [{"mail_id": mail, "job_id": job.id, "confirmer": job.confirmer, "claimed_at": now} for mail, job in wanted]
    inserted = (
        insert(connection, claims)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["mail_id"])
        .returning(claims.c.mail_id, claims.c.job_id)
    )
    mine = {(row.mail_id, row.job_id) for row in connection.execute(inserted)}
    lost = [(job, ids) for job, ids in batch if any((mail, job.id) not in mine for mail in ids)]
    if not lost:
        return [MINE] * len(batch)
    lost_ids = [job.id for job, _ in lost]
    connection.execute(sa.delete(claims).where(claims.c.job_id.in_(lost_ids)))
    connection.execute(sa.delete(jobs).where(jobs.c.id.in_(lost_ids)))
    wanted_by_lost = sorted({mail for _, ids in lost for mail in ids})
    holders = {
        row.mail_id: ClaimAnswer(Claimed.HELD, row.confirmer, row.claimed_at)
        for row in connection.execute(
            sa.select(claims.c.mail_id, claims.c.confirmer, claims.c.claimed_at).where(
                claims.c.mail_id.in_(wanted_by_lost)
            )
        )
    }
    lost_jobs = {job.id: ids for job, ids in lost}
    return [
        MINE
        if job.id not in lost_jobs
        else next((holders[m] for m in lost_jobs[job.id] if m in holders), ClaimAnswer(Claimed.HELD, "?"))
        for job, _ in batch
    ]


def _by_mail(wanted: tuple[str, JobRecord]) -> tuple[str, str]:
    return wanted[0], wanted[1].id


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


def take_over_expired(connection: Connection, *, owner: str, lease: float, limit: int) -> list[JobRecord]:
    """Running jobs whose process is gone (leases.py), now owned by `owner`, oldest first."""
    rows = leases.take_over(connection, jobs, where=[jobs.c.state == "running"], owner=owner, lease=lease, limit=limit)
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
            takeovers=row["takeovers"],
        )
        for row in rows
    ]


def prune_jobs(connection: Connection, before: float) -> int:
    old = sa.select(jobs.c.id).where(jobs.c.state == "done", jobs.c.finished_at < before)
    connection.execute(sa.delete(claims).where(claims.c.job_id.in_(old)))
    return connection.execute(sa.delete(jobs).where(jobs.c.state == "done", jobs.c.finished_at < before)).rowcount
