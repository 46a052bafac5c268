"""What people do with tickets (the API and the CLI call these; blocking calls).

- the built-in store: list, show (history, work log, the tickets its incidents have
  in external systems, their pending and parked operations), assign, comment, log
  work, resolve/close/reopen with a resolution;
- linking an incident to an existing ticket, in the built-in store or an external
  system: recorded in `ticket_refs`, so the lifecycle continues on that ticket and
  no new one is opened; a note saying so goes to the ticket through the outbox;
- parked operations: list them and retry them after a fix (which also lifts a
  system's block after it refused our credentials).

Who did what is recorded with every change: the monthly per-customer report reads
assignee, work log (who, minutes, what), resolution and resolved_by, timestamps.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, cast, func, insert, select, update

from alerts.outbox import put
from alerts.tickets.builtin import SYSTEM
from alerts.tickets.plan import build_payload, ticket_key
from alerts.tickets.refs import put_ref
from correlator.model import Notification
from monitord.config.tickets import TicketPolicy
from monitord.storage.schema import (
    incident_log,
    incidents,
    outbox,
    ticket_comments,
    ticket_refs,
    ticket_systems,
    ticket_worklog,
    tickets,
)

STATUSES = ("open", "resolved", "closed")
MAX_MINUTES = 24 * 60 * 7


class Refused(Exception):
    """A request the desk cannot carry out: HTTP-like status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


# -- reading ---------------------------------------------------------------------------


def _ticket(row: Any, minutes: int = 0) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "subject": row.subject,
        "customer": row.customer,
        "device": row.device_id,
        "priority": row.priority,
        "incident": row.incident_id,
        "assignee": row.assignee,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "resolved_at": iso(row.resolved_at),
        "closed_at": iso(row.closed_at),
        "resolved_by": row.resolved_by,
        "resolution": row.resolution,
        "reopened": row.reopened,
        "minutes_spent": minutes,
    }


def list_tickets(
    engine: Engine,
    *,
    status: str | None = None,
    customer: str | None = None,
    incident: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Built-in tickets, newest first; `status` "active" means open."""
    spent = (
        select(ticket_worklog.c.ticket_id, func.sum(ticket_worklog.c.minutes).label("minutes"))
        .group_by(ticket_worklog.c.ticket_id)
        .subquery()
    )
    q = (
        select(tickets, spent.c.minutes)
        .outerjoin(spent, spent.c.ticket_id == tickets.c.id)
        .order_by(tickets.c.id.desc())
        .limit(limit)
    )
    if status:
        q = q.where(tickets.c.status == ("open" if status == "active" else status))
    if customer:
        q = q.where(tickets.c.customer == customer)
    if incident is not None:
        linked = select(ticket_refs.c.external_id).where(
            ticket_refs.c.system == SYSTEM, ticket_refs.c.incident_id == incident
        )
        q = q.where((tickets.c.incident_id == incident) | (tickets.c.id.in_(_ints(linked))))
    with engine.connect() as conn:
        return [_ticket(r, int(r.minutes or 0)) for r in conn.execute(q)]


def _ints(q: Any) -> Any:
    """The built-in ticket ids a `ticket_refs.external_id` select names (text → int)."""
    return select(cast(q.subquery().c.external_id, Integer))


def get_ticket(engine: Engine, ticket_id: int) -> dict[str, Any] | None:
    """A built-in ticket with its history, work log, incidents and their tickets elsewhere."""
    with engine.connect() as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
        if row is None:
            return None
        worklog = [
            {"ts": iso(w.ts), "by": w.author, "minutes": w.minutes, "note": w.note}
            for w in conn.execute(
                select(ticket_worklog)
                .where(ticket_worklog.c.ticket_id == ticket_id)
                .order_by(ticket_worklog.c.id)
            )
        ]
        out = _ticket(row, sum(w["minutes"] for w in worklog))
        out["history"] = [
            {"ts": iso(c.ts), "by": c.author, "kind": c.kind, "text": c.body}
            for c in conn.execute(
                select(ticket_comments)
                .where(ticket_comments.c.ticket_id == ticket_id)
                .order_by(ticket_comments.c.id)
            )
        ]
        out["worklog"] = worklog
        refs = conn.execute(
            select(ticket_refs.c.incident_id).where(
                ticket_refs.c.system == SYSTEM, ticket_refs.c.external_id == str(ticket_id)
            )
        ).scalars()
        incident_ids = sorted({i for i in refs if i is not None} | {row.incident_id} - {None})
        out["incidents"] = incident_ids
        out["elsewhere"] = [
            ref
            for incident_id in incident_ids
            for ref in _refs(conn, incident_id)
            if ref["system"] != SYSTEM
        ]
        return out


def _refs(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    return [
        {
            "system": r.system,
            "ticket": r.external_id,
            "key": r.dedup_key,
            "linked_by": r.linked_by,
            "since": iso(r.created_at),
        }
        for r in conn.execute(
            select(ticket_refs)
            .where(ticket_refs.c.incident_id == incident_id)
            .order_by(ticket_refs.c.system)
        )
    ]


def _op(r: Any) -> dict[str, Any]:
    state = "delivered" if r.delivered_at else ("parked" if r.parked else "pending")
    return {
        "id": r.id,
        "system": r.target,
        "op": r.op,
        "incident": r.incident_id,
        "state": state,
        "attempts": r.attempts,
        "created_at": iso(r.created_at),
        "delivered_at": iso(r.delivered_at),
        "next_attempt_at": None if r.delivered_at or r.parked else iso(r.next_attempt_at),
        "error": r.last_error,
    }


def incident_tickets(engine: Engine, incident_id: int) -> dict[str, Any] | None:
    """An incident's tickets in every system and every ticket operation for it."""
    with engine.connect() as conn:
        if (
            conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id)).first()
            is None
        ):
            return None
        ops = conn.execute(
            select(outbox)
            .where(outbox.c.kind == "ticket", outbox.c.incident_id == incident_id)
            .order_by(outbox.c.id)
        ).all()
        return {
            "incident": incident_id,
            "tickets": _refs(conn, incident_id),
            "operations": [_op(r) for r in ops],
        }


def operations(
    engine: Engine, state: str = "parked", system: str | None = None
) -> list[dict[str, Any]]:
    """Ticket operations not delivered: "parked", "pending" or "waiting" (both)."""
    q = select(outbox).where(outbox.c.kind == "ticket", outbox.c.delivered_at.is_(None))
    if state == "parked":
        q = q.where(outbox.c.parked.is_(True))
    elif state == "pending":
        q = q.where(outbox.c.parked.is_(False))
    if system:
        q = q.where(outbox.c.target == system)
    with engine.connect() as conn:
        return [_op(r) for r in conn.execute(q.order_by(outbox.c.id).limit(1000))]


def systems(engine: Engine, names: list[str]) -> list[dict[str, Any]]:
    """Health of each configured external system, with its waiting operations."""
    with engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(ticket_systems))}
        counts = {
            (r.target, bool(r.parked)): int(r.n)
            for r in conn.execute(
                select(outbox.c.target, outbox.c.parked, func.count().label("n"))
                .where(outbox.c.kind == "ticket", outbox.c.delivered_at.is_(None))
                .group_by(outbox.c.target, outbox.c.parked)
            )
        }
    out = []
    for name in names:
        r = rows.get(name)
        out.append(
            {
                "name": name,
                "state": "blocked"
                if r is not None and r.blocked
                else ("failing" if r is not None and r.failing_since else "ok"),
                "failing_since": iso(r.failing_since) if r is not None else None,
                "last_ok_at": iso(r.last_ok_at) if r is not None else None,
                "last_error": r.last_error if r is not None else "",
                "blocked": r.blocked if r is not None else "",
                "pending": counts.get((name, False), 0),
                "parked": counts.get((name, True), 0),
            }
        )
    return out


# -- the built-in store, by hand -------------------------------------------------------


def _existing(conn: Connection, ticket_id: int) -> Any:
    row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
    if row is None:
        raise Refused(404, f"no ticket #{ticket_id}")
    return row


def _who(by: object) -> str:
    if not isinstance(by, str) or not 0 < len(by.strip()) <= 100:
        raise Refused(422, "'by' must name who does it (1-100 characters)")
    return by.strip()


def _note(conn: Connection, ticket_id: int, now: float, by: str, kind: str, text: str) -> None:
    conn.execute(
        insert(ticket_comments).values(ticket_id=ticket_id, ts=now, author=by, body=text, kind=kind)
    )
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(updated_at=now))


def assign(
    engine: Engine, ticket_id: int, assignee: object, by: object, now: float
) -> dict[str, Any]:
    who = _who(by)
    if assignee is not None and (not isinstance(assignee, str) or not 0 < len(assignee) <= 100):
        raise Refused(422, "'assignee' must be a name (1-100 characters) or null to unassign")
    with engine.begin() as conn:
        _existing(conn, ticket_id)
        conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(assignee=assignee))
        text = f"assigned to {assignee}" if assignee else "unassigned"
        _note(conn, ticket_id, now, who, "assign", text)
    return _after(engine, ticket_id)


def comment(engine: Engine, ticket_id: int, body: object, by: object, now: float) -> dict[str, Any]:
    who = _who(by)
    if not isinstance(body, str) or not 0 < len(body.strip()) <= 20000:
        raise Refused(422, "'text' must be the comment (1-20000 characters)")
    with engine.begin() as conn:
        _existing(conn, ticket_id)
        _note(conn, ticket_id, now, who, "note", body.strip())
    return _after(engine, ticket_id)


def log_work(
    engine: Engine, ticket_id: int, minutes: object, note: object, by: object, now: float
) -> dict[str, Any]:
    who = _who(by)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 < minutes <= MAX_MINUTES:
        raise Refused(422, f"'minutes' must be a whole number from 1 to {MAX_MINUTES}")
    if not isinstance(note, str) or not 0 < len(note.strip()) <= 5000:
        raise Refused(422, "'note' must say what was done (1-5000 characters)")
    with engine.begin() as conn:
        _existing(conn, ticket_id)
        conn.execute(
            insert(ticket_worklog).values(
                ticket_id=ticket_id, ts=now, author=who, minutes=minutes, note=note.strip()
            )
        )
        _note(conn, ticket_id, now, who, "work", f"{minutes} min: {note.strip()}")
    return _after(engine, ticket_id)


def set_status(
    engine: Engine, ticket_id: int, status: object, resolution: object, by: object, now: float
) -> dict[str, Any]:
    who = _who(by)
    if status not in STATUSES:
        raise Refused(422, f"'status' must be one of {', '.join(STATUSES)}")
    if resolution is not None and (not isinstance(resolution, str) or len(resolution) > 5000):
        raise Refused(422, "'resolution' must be text (up to 5000 characters)")
    with engine.begin() as conn:
        row = _existing(conn, ticket_id)
        values: dict[str, Any] = {"status": status}
        if status == "open":
            values |= {"resolved_at": None, "closed_at": None, "resolved_by": None}
            if row.status != "open":
                values["reopened"] = row.reopened + 1
        else:
            if row.status == "open":
                values |= {"resolved_at": now, "resolved_by": who}
            if status == "closed":
                values["closed_at"] = now
            if resolution:
                values["resolution"] = resolution.strip()
        conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
        text = f"status {row.status} -> {status}" + (f": {resolution}" if resolution else "")
        _note(conn, ticket_id, now, who, "status", text)
    return _after(engine, ticket_id)


def _after(engine: Engine, ticket_id: int) -> dict[str, Any]:
    out = get_ticket(engine, ticket_id)
    assert out is not None
    return out


# -- links and retries -----------------------------------------------------------------


def link(
    engine: Engine,
    incident_id: int,
    system: object,
    ticket: object,
    by: object,
    now: float,
    *,
    policy: TicketPolicy,
    known: set[str],
    public_url: str | None,
) -> dict[str, Any]:
    """Link incident `incident_id` to an existing `ticket` of `system` (a configured
    name, or "builtin"): the lifecycle continues on it, and it gets a note saying so."""
    who = _who(by)
    if system not in known:
        raise Refused(422, f"unknown ticket system {system!r} (known: {', '.join(sorted(known))})")
    if not isinstance(ticket, str | int) or not 0 < len(str(ticket).strip()) <= 100:
        raise Refused(422, "'ticket' must be the ticket's id in that system")
    external = str(ticket).strip()
    assert isinstance(system, str)
    with engine.begin() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise Refused(404, f"no incident #{incident_id}")
        if system == SYSTEM:
            if not external.isdigit():
                raise Refused(422, "a built-in ticket id is a number")
            _existing(conn, int(external))
        key = ticket_key(policy.key_prefix, incident_id, row.opened_at)
        put_ref(conn, system, key, external, incident_id, now, linked_by=who)
        message = f"incident #{incident_id} linked to this ticket by {who}: {row.title}"
        note = Notification(
            incident_id, "link", now, row.priority, row.title, row.customer, row.device_id, message
        )
        payload = build_payload(conn, note, row, key, policy, public_url)
        digest = hashlib.sha256(f"{system}|{external}|{who}".encode()).hexdigest()[:10]
        put(
            conn,
            kind="ticket",
            target=system,
            op="comment",
            incident_id=incident_id,
            op_key=f"ticket:{system}:{incident_id}:link:{now}:{digest}",
            payload=payload,
            now=now,
        )
        conn.execute(
            insert(incident_log).values(
                incident_id=incident_id,
                ts=now,
                actor=who,
                action="ticket-linked",
                detail=f"linked to {system} ticket {external}",
            )
        )
    out = incident_tickets(engine, incident_id)
    assert out is not None
    return out


def retry(
    engine: Engine,
    now: float,
    by: object,
    *,
    system: str | None = None,
    incident: int | None = None,
    ident: int | None = None,
) -> dict[str, Any]:
    """Put parked ticket operations back in line (after the cause is fixed); a system
    blocked by refused credentials is unblocked. Returns what was retried."""
    who = _who(by)
    where = [outbox.c.kind == "ticket", outbox.c.parked.is_(True), outbox.c.delivered_at.is_(None)]
    if system:
        where.append(outbox.c.target == system)
    if incident is not None:
        where.append(outbox.c.incident_id == incident)
    if ident is not None:
        where.append(outbox.c.id == ident)
    with engine.begin() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.target, outbox.c.incident_id).where(*where)
        ).all()
        if not rows:
            return {"retried": 0, "operations": [], "systems": []}
        ids = [r.id for r in rows]
        conn.execute(
            update(outbox).where(outbox.c.id.in_(ids)).values(parked=False, next_attempt_at=now)
        )
        targets = sorted({r.target for r in rows})
        conn.execute(
            update(ticket_systems)
            .where(ticket_systems.c.name.in_(targets))
            .values(blocked="", updated_at=now)
        )
        for incident_id in sorted({r.incident_id for r in rows if r.incident_id is not None}):
            mine = [r.id for r in rows if r.incident_id == incident_id]
            conn.execute(
                insert(incident_log).values(
                    incident_id=incident_id,
                    ts=now,
                    actor=who,
                    action="ticket-retry",
                    detail=f"parked ticket operations {', '.join(f'#{i}' for i in mine)} retried",
                )
            )
    return {"retried": len(ids), "operations": ids, "systems": targets}
