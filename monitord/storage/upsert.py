"""Dialect-aware bulk upsert (SQLite and PostgreSQL share ON CONFLICT syntax)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str | tuple[str, ...]
) -> None:
    """Insert `rows`, updating every non-key column where the key already exists."""
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else key
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    columns = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
    )
    conn.execute(stmt, list(rows))
