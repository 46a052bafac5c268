"""paging: paging: routing decisions, escalations, acknowledgements

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # pages now also records "acknowledge" (11 characters) sent to those paged
    with op.batch_alter_table("pages") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=10), type_=sa.String(length=15))
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("schedule", sa.String(length=100), nullable=False),
        sa.Column("layer", sa.String(length=100), nullable=False),
        sa.Column("engineer", sa.String(length=100), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("deleted_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oncall_overrides_layer", "oncall_overrides", ["schedule", "layer"])
    op.create_table(
        "page_escalations",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("loop", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("customer", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("acked_by", sa.String(length=100), nullable=True),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.Column("acked_via", sa.String(length=30), nullable=True),
        sa.Column("ack_expires_at", sa.Float(), nullable=True),
        sa.Column("acked_layer", sa.String(length=201), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_page_escalations_incident_id", "page_escalations", ["incident_id"])
    op.create_index("ix_page_escalations_state", "page_escalations", ["state"])
    op.create_table(
        "page_recipients",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("engineer", sa.String(length=100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("loop", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=201), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_page_recipients_escalation_id", "page_recipients", ["escalation_id"])
    op.create_index("ix_page_recipients_incident_id", "page_recipients", ["incident_id"])
    op.create_index("ix_page_recipients_outbox_id", "page_recipients", ["outbox_id"])
    op.create_index("ix_page_recipients_engineer", "page_recipients", ["engineer", "created_at"])
    op.create_table(
        "page_deliveries",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("channel_index", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.Float(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("remote_id", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("outbox_id"),
    )
    op.create_index(
        "ix_page_deliveries_remote", "page_deliveries", ["channel", "recipient", "remote_id"]
    )
    op.create_table(
        "page_channels",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("raised", sa.Boolean(), nullable=False),
        sa.Column("last_ok_at", sa.Float(), nullable=True),
        sa.Column("update_offset", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "page_acks",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=30), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_page_acks_incident_id", "page_acks", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_page_acks_incident_id", table_name="page_acks")
    op.drop_table("page_acks")
    op.drop_table("page_channels")
    op.drop_index("ix_page_deliveries_remote", table_name="page_deliveries")
    op.drop_table("page_deliveries")
    for name in ("engineer", "outbox_id", "incident_id", "escalation_id"):
        op.drop_index(f"ix_page_recipients_{name}", table_name="page_recipients")
    op.drop_table("page_recipients")
    op.drop_index("ix_page_escalations_state", table_name="page_escalations")
    op.drop_index("ix_page_escalations_incident_id", table_name="page_escalations")
    op.drop_table("page_escalations")
    op.drop_index("ix_oncall_overrides_layer", table_name="oncall_overrides")
    op.drop_table("oncall_overrides")
    with op.batch_alter_table("pages") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=15), type_=sa.String(length=10))
