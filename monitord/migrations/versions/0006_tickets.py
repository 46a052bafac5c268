"""tickets: ticket lifecycle: work log, parked operations, manual links

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Incidents: notified once (a return is a reopen), members told of, when.
    op.add_column(
        "incidents",
        sa.Column("ever_notified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "incidents", sa.Column("told_members", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("incidents", sa.Column("told_at", sa.Float(), nullable=True))
    op.execute("UPDATE incidents SET ever_notified = notified")

    # Built-in tickets: what the monthly report needs.
    op.add_column("tickets", sa.Column("resolution", sa.Text(), nullable=True))
    op.add_column("tickets", sa.Column("resolved_by", sa.String(length=100), nullable=True))
    op.add_column("tickets", sa.Column("closed_at", sa.Float(), nullable=True))
    op.add_column(
        "tickets", sa.Column("reopened", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "ticket_comments",
        sa.Column("kind", sa.String(length=15), nullable=False, server_default="note"),
    )
    op.add_column("ticket_comments", sa.Column("outbox_id", sa.Integer(), nullable=True))
    op.create_index("ux_ticket_comments_outbox_id", "ticket_comments", ["outbox_id"], unique=True)
    op.create_table(
        "ticket_worklog",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_worklog_ticket_id", "ticket_worklog", ["ticket_id"])

    # Refs: which incident, and who linked it by hand.
    op.add_column("ticket_refs", sa.Column("incident_id", sa.Integer(), nullable=True))
    op.add_column("ticket_refs", sa.Column("linked_by", sa.String(length=100), nullable=True))
    op.create_index("ix_ticket_refs_incident_id", "ticket_refs", ["incident_id"])

    op.create_table(
        "ticket_attempts",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("attempted_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("outbox_id"),
    )
    op.create_index("ix_ticket_attempts_attempted_at", "ticket_attempts", ["attempted_at"])
    op.create_table(
        "ticket_systems",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_ok_at", sa.Float(), nullable=True),
        sa.Column("unreachable_raised", sa.Boolean(), nullable=False),
        sa.Column("blocked", sa.Text(), nullable=False),
        sa.Column("parked_raised", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("ticket_systems")
    op.drop_index("ix_ticket_attempts_attempted_at", table_name="ticket_attempts")
    op.drop_table("ticket_attempts")
    with op.batch_alter_table("ticket_refs") as batch:
        batch.drop_index("ix_ticket_refs_incident_id")
        batch.drop_column("linked_by")
        batch.drop_column("incident_id")
    op.drop_index("ix_ticket_worklog_ticket_id", table_name="ticket_worklog")
    op.drop_table("ticket_worklog")
    with op.batch_alter_table("ticket_comments") as batch:
        batch.drop_index("ux_ticket_comments_outbox_id")
        batch.drop_column("outbox_id")
        batch.drop_column("kind")
    with op.batch_alter_table("tickets") as batch:
        for column in ("reopened", "closed_at", "resolved_by", "resolution"):
            batch.drop_column(column)
    with op.batch_alter_table("incidents") as batch:
        for column in ("told_at", "told_members", "ever_notified"):
            batch.drop_column(column)
