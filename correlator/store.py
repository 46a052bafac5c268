"""Load the correlator's incidents at start; write a batch of its changes.

`persist` runs inside the writer's transaction, so incident rows, members,
timeline entries, the events that caused them and the outbox rows for their
notifications commit together: after a crash either all of a decision is in
the database or none of it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select

from correlator.model import RESOLVED, Changes, Incident, Member, Notification
from monitord.storage.schema import events, incident_log, incident_members, incidents
from monitord.storage.upsert import upsert

_FIELDS = (
    "fingerprint",
    "kind",
    "state",
    "priority",
    "severity",
    "title",
    "customer",
    "site",
    "device_id",
    "check_id",
    "category",
    "opened_at",
    "updated_at",
    "resolved_at",
    "notify_at",
    "wait_started",
    "notified",
    "ever_notified",
    "told_members",
    "told_at",
    "parent_id",
    "muted_by",
    "flapping",
    "reason",
    "acked_by",
    "acked_at",
)


def load(conn: Connection, now: float, reopen_window: float) -> tuple[list[Incident], int]:
    """Open incidents and those resolved within the reopen window; and the next id."""
    rows = conn.execute(
        select(incidents).where(
            or_(
                incidents.c.state != RESOLVED,
                incidents.c.resolved_at >= now - reopen_window,
            )
        )
    ).all()
    loaded = {r.id: Incident(id=r.id, **{f: getattr(r, f) for f in _FIELDS}) for r in rows}
    if loaded:
        for m in conn.execute(
            select(incident_members).where(incident_members.c.incident_id.in_(list(loaded)))
        ):
            loaded[m.incident_id].members[m.member] = Member(
                m.member, m.device_id, m.state, m.since, m.message
            )
    next_id = (conn.execute(select(func.max(incidents.c.id))).scalar() or 0) + 1
    return list(loaded.values()), int(next_id)


def _row(inc: Incident) -> dict[str, Any]:
    return {"id": inc.id, **{f: getattr(inc, f) for f in _FIELDS}}


def persist(
    conn: Connection, changes: Changes, enqueue: Callable[[Connection, Notification], None]
) -> None:
    """Write one batch of correlator changes (inside the caller's transaction)."""
    upsert(conn, incidents, [_row(i) for i in changes.incidents.values()], "id")
    members = {(iid, m.key): m for iid, m in changes.members}  # last state wins
    upsert(
        conn,
        incident_members,
        [
            {
                "incident_id": iid,
                "member": m.key,
                "device_id": m.device_id,
                "state": m.state,
                "since": m.since,
                "message": m.message[:1000],
            }
            for (iid, _), m in members.items()
        ],
        ("incident_id", "member"),
    )
    if changes.log:
        conn.execute(
            insert(incident_log),
            [
                {
                    "incident_id": e.incident_id,
                    "ts": e.ts,
                    "actor": e.actor,
                    "action": e.action,
                    "detail": e.detail[:2000],
                }
                for e in changes.log
            ],
        )
    if changes.events:
        conn.execute(
            insert(events),
            [
                {
                    "ts": e.ts,
                    "source": e.source,
                    "kind": e.kind.value,
                    "fingerprint": e.fingerprint,
                    "customer": e.customer,
                    "device_id": e.device_id,
                    "check_id": e.check_id,
                    "status": int(e.status),
                    "message": e.message[:2000],
                    "category": e.category,
                    "incident_id": incident_id,
                }
                for e, incident_id in changes.events
            ],
        )
    for note in changes.notifications:
        enqueue(conn, note)
