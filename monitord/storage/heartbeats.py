"""Heartbeat persistence: one row of newest signals per check, plus a short history.

Blocking calls (SQLAlchemy Core); the heartbeat book runs them in a worker
thread. The stored row is the whole `HeartbeatRecord`, written in the same
transaction as the ping's history row, so a restart resumes exactly where
the book was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from checks.heartbeat import HeartbeatRecord, Ping, PingKind
from monitord.storage.schema import heartbeat_pings, heartbeats
from monitord.storage.upsert import upsert

# Pings kept per check (healthchecks.io keeps the last 100 by default).
HISTORY = 100


def _ping(kind: str | None, at: float | None, body: str) -> Ping | None:
    return None if kind is None or at is None else Ping(PingKind(kind), at, body)


def load_heartbeats(conn: Connection, check_ids: Iterable[str]) -> dict[str, HeartbeatRecord]:
    """check id → stored record, for those of `check_ids` that have a row."""
    wanted = set(check_ids)
    out: dict[str, HeartbeatRecord] = {}
    for row in conn.execute(select(heartbeats)):
        if row.check_id not in wanted:
            continue
        out[row.check_id] = HeartbeatRecord(
            created_at=row.created_at,
            last=_ping(row.last_kind, row.last_at, row.last_body),
            outcome=_ping(row.outcome_kind, row.outcome_at, row.outcome_body),
            last_success_at=row.last_success_at,
            started_at=row.started_at,
        )
    return out


def register_heartbeats(conn: Connection, check_ids: Iterable[str], now: float) -> None:
    """Give each check without a row one created at `now` (its first grace
    starts there); existing rows are left alone."""
    rows = [
        {"check_id": c, "created_at": now, "last_body": "", "outcome_body": ""} for c in check_ids
    ]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(heartbeats).on_conflict_do_nothing(), rows)


def record_row(check_id: str, record: HeartbeatRecord) -> dict[str, Any]:
    last, outcome = record.last, record.outcome
    return {
        "check_id": check_id,
        "created_at": record.created_at,
        "last_kind": last.kind.value if last else None,
        "last_at": last.at if last else None,
        "last_body": last.body if last else "",
        "outcome_kind": outcome.kind.value if outcome else None,
        "outcome_at": outcome.at if outcome else None,
        "outcome_body": outcome.body if outcome else "",
        "last_success_at": record.last_success_at,
        "started_at": record.started_at,
    }


def save_ping(conn: Connection, check_id: str, record: HeartbeatRecord, ping: Ping) -> None:
    """Store the record after `ping`, append `ping` to the history and drop the
    check's history beyond the newest HISTORY entries."""
    upsert(conn, heartbeats, [record_row(check_id, record)], "check_id")
    conn.execute(
        insert(heartbeat_pings).values(
            check_id=check_id, kind=ping.kind.value, ts=ping.at, body=ping.body
        )
    )
    oldest_kept = (
        select(heartbeat_pings.c.id)
        .where(heartbeat_pings.c.check_id == check_id)
        .order_by(heartbeat_pings.c.id.desc())
        .limit(1)
        .offset(HISTORY - 1)
        .scalar_subquery()
    )
    conn.execute(
        delete(heartbeat_pings).where(
            heartbeat_pings.c.check_id == check_id, heartbeat_pings.c.id < oldest_kept
        )
    )


def ping_history(conn: Connection, check_id: str) -> list[Ping]:
    """The check's stored pings, newest first."""
    rows = conn.execute(
        select(heartbeat_pings)
        .where(heartbeat_pings.c.check_id == check_id)
        .order_by(heartbeat_pings.c.id.desc())
    )
    return [Ping(PingKind(r.kind), r.ts, r.body) for r in rows]
