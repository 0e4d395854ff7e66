"""Every table the bot keeps, declared once. Each schema change is a migration in `migrations/versions`.

    events, event_mails   the audit trail as rows: history you can ask for (`/cancel-mail history`)
    slack_events          Slack event ids already handled, shared by every replica
    jobs, claims          cancels under way: a lease each, and one claim per mail so one replica sends it
    steps                 Workflow Builder runs waiting on a prompt, ended exactly once
    owed                  messages owed to people, kept until Slack takes them; a lease each
    processes             one heartbeat row per running process: its jobs and owed rows are its own while
                          the row says it is alive (liveness.py)

Times are seconds since the epoch (UTC) in double precision: one type that compares the same way on
SQLite and PostgreSQL. Leases and heartbeats are on the database's clock (clock.py), never a process's.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
    }
)

Time = sa.Double

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Time, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("thread", sa.String(32), nullable=False),
    sa.Column("via", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("result", sa.String(32)),
    sa.Column("detail", sa.Text, nullable=False),  # the rest of the audit line, as JSON
    sa.Index("ix_events_at", "at"),
    sa.Index("ix_events_channel_at", "channel", "at"),
)

event_mails = sa.Table(
    "event_mails",
    metadata,
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("mail_id", sa.String(64), primary_key=True),
    sa.Index("ix_event_mails_mail_id", "mail_id"),
)

slack_events = sa.Table(
    "slack_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("seen_at", Time, nullable=False),
    sa.Index("ix_slack_events_seen_at", "seen_at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("state", sa.String(12), nullable=False),  # running, done
    sa.Column("ticket", sa.Text, nullable=False),  # the prompt's encoded ticket: ids, requester, reason…
    sa.Column("confirmer", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("prompt_ts", sa.String(32), nullable=False),
    sa.Column("response_url", sa.Text, nullable=False),
    sa.Column("execution_id", sa.String(64)),  # the Workflow Builder run waiting on this cancel, if any
    sa.Column("step_token", sa.Text),  # that run's own short-lived token, to end it after a takeover
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("lease_until", Time, nullable=False),
    sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("finished_at", Time),
    sa.Index("ix_jobs_state_lease_until", "state", "lease_until"),
)

claims = sa.Table(
    "claims",
    metadata,
    sa.Column("mail_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("confirmer", sa.String(32), nullable=False),
    sa.Column("claimed_at", Time, nullable=False),
    sa.Index("ix_claims_job_id", "job_id"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("execution_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(12), nullable=False),  # waiting, ended
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("prompt_ts", sa.String(32), nullable=False, server_default=""),
    sa.Column("ticket", sa.Text, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("result", sa.String(20)),
    sa.Column("ended_at", Time),
    sa.Index("ix_steps_state_expires_at", "state", "expires_at"),
)

owed = sa.Table(
    "owed",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # outcome, prompt, note, audit_copy, step_end…
    sa.Column("lane", sa.String(64), nullable=False),  # the channel: rate limits and order
    sa.Column("conversation", sa.Text, nullable=False),  # messages of one conversation go in order
    sa.Column("message", sa.Text, nullable=False),  # JSON: the message as rendered, text and blocks
    sa.Column("ways", sa.Text, nullable=False),  # JSON: the ways to deliver it, first to last resort
    sa.Column("text", sa.Text, nullable=False),  # its plain text, for the audit line if Slack never takes it
    sa.Column("meta", sa.Text, nullable=False),  # JSON: who and which mails, for that audit line
    sa.Column("created_at", Time, nullable=False),
    sa.Column("deadline", Time, nullable=False),  # given up then (CANCEL_MAIL_DELIVERY_DEADLINE)
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("lease_until", Time, nullable=False),
    sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_owed_lease_until", "lease_until"),
)

processes = sa.Table(
    "processes",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),  # as jobs.owner and owed.owner name it
    sa.Column("started_at", Time, nullable=False),
    sa.Column("alive_until", Time, nullable=False),  # on the database's clock
)
