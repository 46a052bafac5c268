"""Persistence of API/CLI-made silences and maintenance windows (blocking calls).

The suppression book runs these in a worker thread. A row is never deleted:
ending one early stamps `ended_at`/`ended_by`, so the history stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from monitord.storage.schema import suppressions


@dataclass(frozen=True, slots=True)
class StoredSuppression:
    id: int
    kind: str  # silence | maintenance
    spec: dict[str, Any]  # the model as model_dump(mode="json")
    created_by: str
    created_at: float
    expires_at: float | None
    ended_at: float | None
    ended_by: str | None


def save_suppression(
    conn: Connection,
    kind: str,
    spec: dict[str, Any],
    created_by: str,
    created_at: float,
    expires_at: float | None,
) -> int:
    """Store a new one; returns its id."""
    result = conn.execute(
        insert(suppressions).values(
            kind=kind,
            spec=spec,
            created_by=created_by,
            created_at=created_at,
            expires_at=expires_at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def end_suppression(conn: Connection, ident: int, kind: str, at: float, by: str | None) -> bool:
    """Mark a live one ended at `at`; False when there is none such (or it already ended)."""
    result = conn.execute(
        update(suppressions)
        .where(
            suppressions.c.id == ident,
            suppressions.c.kind == kind,
            suppressions.c.ended_at.is_(None),
        )
        .values(ended_at=at, ended_by=by)
    )
    return result.rowcount == 1


def load_suppressions(
    conn: Connection, now: float, *, kind: str | None = None, history: bool = False
) -> list[StoredSuppression]:
    """The ones in force or still to come at `now`, oldest first; with `history`,
    also those that ended or ran out."""
    q = select(suppressions).order_by(suppressions.c.id)
    if kind is not None:
        q = q.where(suppressions.c.kind == kind)
    if not history:
        q = q.where(
            suppressions.c.ended_at.is_(None),
            or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > now),
        )
    return [
        StoredSuppression(
            r.id,
            r.kind,
            r.spec,
            r.created_by,
            r.created_at,
            r.expires_at,
            r.ended_at,
            r.ended_by,
        )
        for r in conn.execute(q)
    ]
