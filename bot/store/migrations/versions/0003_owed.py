"""Messages owed to people: kept until Slack takes them, delivered by whichever process holds the lease.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owed",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lane", sa.String(64), nullable=False),
        sa.Column("conversation", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("ways", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("deadline", sa.Double, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_owed"),
    )
    op.create_index("ix_owed_lease_until", "owed", ["lease_until"])


def downgrade() -> None:
    op.drop_table("owed")
