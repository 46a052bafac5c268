"""ticket_refs: the external ticket id per (ticket system, incident dedup key)

Revision ID: 0004
Revises: 0003
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
        "ticket_refs",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("dedup_key", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("system", "dedup_key"),
    )


def downgrade() -> None:
    op.drop_table("ticket_refs")
