"""One heartbeat row per process, which its jobs and owed messages rest on.

They stay its own while the row is fresh: a process proves it is alive with one write, not one per row it
holds (the first paragraph is Alembic's one log line for this revision).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("alive_until", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_processes"),
    )


def downgrade() -> None:
    op.drop_table("processes")
