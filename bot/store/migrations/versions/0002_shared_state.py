"""Shared state for several replicas: handled Slack events, cancel jobs and claims, workflow steps.

Slack events already handled, cancel jobs with leases and their claims, and Workflow Builder steps waiting
on a prompt (the first paragraph is Alembic's one log line for this revision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("seen_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_slack_events"),
    )
    op.create_index("ix_slack_events_seen_at", "slack_events", ["seen_at"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("ticket", sa.Text, nullable=False),
        sa.Column("confirmer", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("prompt_ts", sa.String(32), nullable=False),
        sa.Column("response_url", sa.Text, nullable=False),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("step_token", sa.Text),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_state_lease_until", "jobs", ["state", "lease_until"])
    op.create_table(
        "claims",
        sa.Column("mail_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("confirmer", sa.String(32), nullable=False),
        sa.Column("claimed_at", sa.Double, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_claims_job_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mail_id", name="pk_claims"),
    )
    op.create_index("ix_claims_job_id", "claims", ["job_id"])
    op.create_table(
        "steps",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("prompt_ts", sa.String(32), nullable=False, server_default=""),
        sa.Column("ticket", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("result", sa.String(20)),
        sa.Column("ended_at", sa.Double),
        sa.PrimaryKeyConstraint("execution_id", name="pk_steps"),
    )
    op.create_index("ix_steps_state_expires_at", "steps", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_table("steps")
    op.drop_table("claims")
    op.drop_table("jobs")
    op.drop_table("slack_events")
