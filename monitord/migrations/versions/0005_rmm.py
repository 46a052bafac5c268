"""rmm: RMM sources: device mapping, observations, verdicts, logged-on users

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rmm_devices',
        sa.Column('source', sa.String(length=30), nullable=False),
        sa.Column('rmm_id', sa.String(length=100), nullable=False),
        sa.Column('device_id', sa.String(length=200), nullable=True),
        sa.Column('linked', sa.Boolean(), nullable=False),
        sa.Column('state', sa.String(length=15), nullable=False),
        sa.Column('customer', sa.String(length=100), nullable=True),
        sa.Column('site', sa.String(length=100), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('client_name', sa.Text(), nullable=False),
        sa.Column('site_id', sa.String(length=100), nullable=False),
        sa.Column('site_name', sa.Text(), nullable=False),
        sa.Column('address', sa.String(length=255), nullable=False),
        sa.Column('external_ip', sa.String(length=64), nullable=False),
        sa.Column('os', sa.Text(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('last_seen', sa.Float(), nullable=True),
        sa.Column('logged_on', sa.Text(), nullable=False),
        sa.Column('first_synced', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.Column('missing_since', sa.Float(), nullable=True),
        sa.Column('retired_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('source', 'rmm_id'),
    )
    op.create_index('ix_rmm_devices_device_id', 'rmm_devices', ['device_id'])
    op.create_table(
        'rmm_logons',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('source', sa.String(length=30), nullable=False),
        sa.Column('rmm_id', sa.String(length=100), nullable=False),
        sa.Column('device_id', sa.String(length=200), nullable=True),
        sa.Column('user', sa.Text(), nullable=False),
        sa.Column('username', sa.String(length=200), nullable=False),
        sa.Column('first_seen', sa.Float(), nullable=False),
        sa.Column('last_seen', sa.Float(), nullable=False),
        sa.Column('ended_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rmm_logons_device', 'rmm_logons', ['source', 'rmm_id', 'ended_at'])
    op.create_index('ix_rmm_logons_username', 'rmm_logons', ['username'])
    op.create_table(
        'rmm_observations',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('source', sa.String(length=30), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('origin', sa.String(length=10), nullable=False),
        sa.Column('rmm_device_id', sa.String(length=100), nullable=False),
        sa.Column('device_id', sa.String(length=200), nullable=True),
        sa.Column('customer', sa.String(length=100), nullable=True),
        sa.Column('kind', sa.String(length=15), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('check_type', sa.String(length=50), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('output', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=True),
        sa.Column('consecutive_fails', sa.Integer(), nullable=False),
        sa.Column('first_seen', sa.Float(), nullable=False),
        sa.Column('last_seen', sa.Float(), nullable=False),
        sa.Column('cleared_at', sa.Float(), nullable=True),
        sa.Column('verdict', sa.String(length=20), nullable=True),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('rule', sa.Text(), nullable=False),
        sa.Column('decided_at', sa.Float(), nullable=True),
        sa.Column('verified_at', sa.Float(), nullable=True),
        sa.Column('check_id', sa.String(length=300), nullable=True),
        sa.Column('fingerprint', sa.String(length=64), nullable=True),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('escalated_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rmm_observations_cleared_at', 'rmm_observations', ['cleared_at'])
    op.create_index('ix_rmm_observations_device_id', 'rmm_observations', ['device_id'])
    op.create_index('ix_rmm_observations_fingerprint', 'rmm_observations', ['fingerprint'])
    op.create_index('ix_rmm_observations_incident_id', 'rmm_observations', ['incident_id'])
    op.create_index('ix_rmm_observations_key', 'rmm_observations', ['source', 'key'])
    op.create_table(
        'rmm_verdict_log',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('observation_id', sa.Integer(), nullable=False),
        sa.Column('ts', sa.Float(), nullable=False),
        sa.Column('verdict', sa.String(length=20), nullable=False),
        sa.Column('rule', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rmm_verdict_log_observation_id', 'rmm_verdict_log', ['observation_id'])
    op.create_table(
        'rmm_feeds',
        sa.Column('source', sa.String(length=30), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('last_poll_at', sa.Float(), nullable=True),
        sa.Column('last_good_at', sa.Float(), nullable=True),
        sa.Column('failing_since', sa.Float(), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('error_reason', sa.String(length=20), nullable=False),
        sa.Column('stale_since', sa.Float(), nullable=True),
        sa.Column('stale_raised', sa.Boolean(), nullable=False),
        sa.Column('last_sync_at', sa.Float(), nullable=True),
        sa.Column('last_good_sync_at', sa.Float(), nullable=True),
        sa.Column('sync_error', sa.Text(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('source'),
    )
    op.create_table(
        'rmm_conflicts',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('source', sa.String(length=30), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('customer', sa.String(length=100), nullable=True),
        sa.Column('other', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('first_seen', sa.Float(), nullable=False),
        sa.Column('last_seen', sa.Float(), nullable=False),
        sa.Column('resolved_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rmm_conflicts_subject', 'rmm_conflicts', ['source', 'kind', 'subject'])


def downgrade() -> None:
    op.drop_table('rmm_conflicts')
    op.drop_table('rmm_feeds')
    op.drop_table('rmm_verdict_log')
    op.drop_table('rmm_observations')
    op.drop_table('rmm_logons')
    op.drop_table('rmm_devices')
