"""Read models for the API and CLI: plain dicts from the stores (blocking calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from monitord.inventory import Inventory
from monitord.model import Status
from monitord.state import CheckState, StateType
from monitord.storage.schema import (
    incident_log,
    incident_members,
    incidents,
    pages,
    tickets,
)


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


_rank = {s.label: int(s) for s in Status}


def problems(
    inventory: Inventory, states: dict[str, CheckState], outputs: dict[str, str]
) -> list[dict[str, Any]]:
    """Checks whose latest status is not OK, worst first."""
    out: list[dict[str, Any]] = []
    for spec in inventory.checks:
        st = states.get(spec.id)
        if st is None or st.status == Status.OK:
            continue
        device = inventory.devices[spec.device_id]
        out.append(
            {
                "check": spec.id,
                "customer": device.customer,
                "site": device.site,
                "device": device.name,
                "address": device.address,
                "name": spec.name,
                "kind": spec.kind,
                "status": st.status.label,
                "state_type": "hard" if st.state_type == StateType.HARD else "soft",
                "attempt": st.attempt,
                "max_attempts": spec.max_attempts,
                "flapping": st.flapping,
                "since": iso(st.last_change),
                "output": outputs.get(spec.id, ""),
            }
        )
    out.sort(key=lambda p: (p["state_type"] != "hard", -_rank[p["status"]], p["check"]))
    return out


def _incident(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        "priority": row.priority,
        "severity": Status(row.severity).label,
        "title": row.title,
        "customer": row.customer,
        "site": row.site,
        "device": row.device_id,
        "check": row.check_id,
        "category": row.category,
        "flapping": bool(row.flapping),
        "notified": bool(row.notified),
        "muted_by": row.muted_by or None,
        "part_of": row.parent_id,
        "opened_at": iso(row.opened_at),
        "updated_at": iso(row.updated_at),
        "resolved_at": iso(row.resolved_at),
        "acked_by": row.acked_by,
        "reason": row.reason,
    }


def list_incidents(
    engine: Engine, state: str = "open", limit: int = 500, *, top_level: bool = True
) -> list[dict[str, Any]]:
    """Incidents, newest first; by default without those folded into another
    (an outage or a storm), which the desk sees through their parent."""
    q = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if top_level:
        q = q.where(incidents.c.parent_id.is_(None))
    if state == "open":
        q = q.where(incidents.c.state != "resolved")
    elif state != "all":
        q = q.where(incidents.c.state == state)
    with engine.connect() as conn:
        return [_incident(r) for r in conn.execute(q)]


def get_incident(engine: Engine, incident_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            return None
        out = _incident(row)
        out["timeline"] = [
            {"ts": iso(r.ts), "actor": r.actor, "action": r.action, "detail": r.detail}
            for r in conn.execute(
                select(incident_log)
                .where(incident_log.c.incident_id == incident_id)
                .order_by(incident_log.c.id)
            )
        ]
        out["tickets"] = [
            r.id
            for r in conn.execute(select(tickets.c.id).where(tickets.c.incident_id == incident_id))
        ]
        out["members"] = [
            {
                "member": r.member,
                "device": r.device_id,
                "state": r.state,
                "since": iso(r.since),
                "message": r.message,
            }
            for r in conn.execute(
                select(incident_members)
                .where(incident_members.c.incident_id == incident_id)
                .order_by(incident_members.c.member)
            )
        ]
        out["folded"] = [
            {"id": r.id, "title": r.title, "state": r.state}
            for r in conn.execute(
                select(incidents.c.id, incidents.c.title, incidents.c.state).where(
                    incidents.c.parent_id == incident_id
                )
            )
        ]
        out["affected_devices"] = sorted(_affected(conn, incident_id, row.device_id))
        # The RMM's failures that fed it, with monitord's verdicts (imported here:
        # monitord.rmm.views imports this module).
        from monitord.rmm.views import for_incident

        out["rmm"] = for_incident(conn, incident_id, row.fingerprint)
        return out


def _affected(conn: Any, incident_id: int, device_id: str | None) -> set[str]:
    """Every device an incident covers: its own, its members', and recursively
    those of incidents folded into it (a switch's outage inside a site's)."""
    out = {device_id} if device_id else set()
    out |= {
        r.device_id
        for r in conn.execute(
            select(incident_members.c.device_id).where(
                incident_members.c.incident_id == incident_id
            )
        )
        if r.device_id
    }
    for child in conn.execute(
        select(incidents.c.id, incidents.c.device_id).where(incidents.c.parent_id == incident_id)
    ).all():
        out |= _affected(conn, child.id, child.device_id)
    return out


def list_pages(engine: Engine, limit: int = 200) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            {
                "id": r.id,
                "incident": r.incident_id,
                "channel": r.channel,
                "recipient": r.recipient,
                "kind": r.kind,
                "ts": iso(r.ts),
                "text": r.text,
            }
            for r in conn.execute(select(pages).order_by(pages.c.id.desc()).limit(limit))
        ]
