"""Alembic environment: run against the connection the daemon hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitord.storage.schema import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("monitord migrations run through monitord.storage.migrate only")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
