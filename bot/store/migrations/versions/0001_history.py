"""History: the audit trail as rows, and the mails each event concerns.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("thread", sa.String(32), nullable=False),
        sa.Column("via", sa.String(16)),
        sa.Column("reason", sa.Text),
        sa.Column("result", sa.String(32)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_channel_at", "events", ["channel", "at"])
    op.create_table(
        "event_mails",
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("mail_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_event_mails_event_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", "mail_id", name="pk_event_mails"),
    )
    op.create_index("ix_event_mails_mail_id", "event_mails", ["mail_id"])


def downgrade() -> None:
    op.drop_table("event_mails")
    op.drop_table("events")
