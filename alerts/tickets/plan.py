"""Which ticket operations a notification calls for, in the built-in store and in
every configured external system (one outbox row each, so each is delivered,
retried and kept in order on its own).

| notification | the incident has a ticket there      | it has none                         |
| ------------ | ------------------------------------ | ----------------------------------- |
| trigger      | comment (a ticket linked by hand)    | open, if the policy tickets it      |
| reopen       | reopen (the same ticket)             | open, if the policy tickets it      |
| update       | comment                              | open, if it is ticketed now (P4→P2) |
| acknowledge  | comment                              | -                                   |
| resolve      | resolve / close / comment (policy)   | -                                   |

"Has a ticket there" means an earlier outbox row of the incident for that system,
or a ticket reference (one linked by hand). The payload carries the whole text of
the operation (facts, evidence, a link to the incident), fixed when it is decided,
so a retry an hour later says what was true then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, exists, select

from alerts.notify import note_payload
from alerts.outbox import put
from alerts.tickets.health import own_incident_fingerprints
from correlator.model import Notification
from monitord.config.model import AlertingConfig
from monitord.config.tickets import TicketPolicy
from monitord.model import Status
from monitord.storage.schema import incident_log, incident_members, incidents, outbox, ticket_refs

EVIDENCE_LINES = 12  # newest timeline entries quoted in a new ticket
MEMBER_LINES = 20  # affected devices listed in a new ticket


def ticket_key(prefix: str, incident_id: int, opened_at: float) -> str:
    """The dedup key of an incident's tickets, in every system."""
    return f"{prefix}-{incident_id}-{int(opened_at)}"


def incident_link(public_url: str | None, incident_id: int) -> str | None:
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/api/v1/incidents/{incident_id}"


def has_ticket(conn: Connection, target: str, incident_id: int, key: str) -> bool:
    planned = exists().where(
        outbox.c.kind == "ticket", outbox.c.target == target, outbox.c.incident_id == incident_id
    )
    linked = exists().where(ticket_refs.c.system == target, ticket_refs.c.dedup_key == key)
    return bool(conn.execute(select(planned | linked)).scalar())


def decide(action: str, has: bool, ticketed: bool, recovery: str) -> str | None:
    """The operation for one system (see the module's table), or None."""
    if action == "resolve":
        return None if not has else ("comment" if recovery == "comment" else "resolve")
    if action == "acknowledge":
        return "comment" if has else None
    if has:
        return {"trigger": "comment", "reopen": "reopen", "update": "comment"}.get(action)
    if action in ("trigger", "reopen", "update") and ticketed:
        return "open"
    return None


class TicketPlanner:
    def __init__(
        self,
        alerting: Callable[[], AlertingConfig],
        public_url: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.alerting = alerting  # read per batch: a reload may change it
        self.public_url = public_url

    def plan(self, conn: Connection, note: Notification, now: float) -> None:
        if note.action not in ("trigger", "reopen", "update", "acknowledge", "resolve"):
            return
        row = conn.execute(select(incidents).where(incidents.c.id == note.incident)).first()
        if row is None:
            return
        alerting = self.alerting()
        policy = alerting.ticket_policy
        key = ticket_key(policy.key_prefix, note.incident, row.opened_at)
        targets = ["builtin"] if alerting.tickets else []
        targets += [
            s.name
            for s in alerting.ticket_systems
            if row.fingerprint not in own_incident_fingerprints(s.name)
        ]
        ticketed = policy.ticketed(note.customer, note.priority)
        recovery = policy.recovery(note.customer)
        payload: dict[str, Any] | None = None
        for target in targets:
            has = has_ticket(conn, target, note.incident, key)
            op = decide(note.action, has, ticketed, recovery)
            if op is None:
                continue
            if payload is None:
                payload = build_payload(conn, note, row, key, policy, self.public_url())
            digest = hashlib.sha256(
                f"{note.action}|{note.changes}|{note.message}".encode()
            ).hexdigest()[:10]
            op_key = f"ticket:{target}:{note.incident}:{op}:{note.ts}:{digest}"
            if conn.execute(select(outbox.c.id).where(outbox.c.op_key == op_key)).first():
                continue  # this very decision is queued already
            put(
                conn,
                kind="ticket",
                target=target,
                op=op,
                incident_id=note.incident,
                op_key=op_key,
                payload=payload,
                now=now,
            )


def build_payload(
    conn: Connection,
    note: Notification,
    row: Any,
    key: str,
    policy: TicketPolicy,
    public_url: str | None,
) -> dict[str, Any]:
    """The outbox payload of a ticket operation about incident `row` (whole texts)."""
    payload = note_payload(note)
    facts = [
        ("Customer", row.customer or "-"),
        ("Site", row.site or "-"),
        ("Device", row.device_id or "-"),
        ("Priority", row.priority),
        ("Why", row.reason),
        ("Severity", Status(row.severity).label),
        ("Opened", _iso(row.opened_at)),
        ("Incident", f"#{row.id} ({row.kind})"),
    ]
    if row.check_id:
        facts.insert(3, ("Check", row.check_id))
    if row.acked_by:
        facts.append(("Acknowledged by", row.acked_by))
    if note.changes:
        facts.append(("Changed", ", ".join(note.changes)))
    evidence: list[str] = []
    if note.action in ("trigger", "reopen", "update", "link"):
        evidence = _evidence(conn, row.id)
    payload.update(
        dedup_key=key,
        event=note.action,
        facts=facts,
        evidence=evidence,
        link=incident_link(public_url, row.id),
        close=policy.recovery(note.customer) == "close",
        changes=list(note.changes),
    )
    return payload


def _evidence(conn: Connection, incident_id: int) -> list[str]:
    """What the desk needs to start: the newest timeline entries, the devices."""
    entries = conn.execute(
        select(incident_log.c.ts, incident_log.c.action, incident_log.c.detail)
        .where(incident_log.c.incident_id == incident_id)
        .order_by(incident_log.c.id.desc())
        .limit(EVIDENCE_LINES)
    ).all()
    lines = [f"{_iso(e.ts)} {e.action}: {e.detail}" for e in reversed(entries)]
    members = conn.execute(
        select(incident_members.c.member, incident_members.c.state, incident_members.c.message)
        .where(
            incident_members.c.incident_id == incident_id,
            incident_members.c.state != "recovered",
        )
        .order_by(incident_members.c.member)
        .limit(MEMBER_LINES + 1)
    ).all()
    lines += [f"affected: {m.member} ({m.state}) {m.message}" for m in members[:MEMBER_LINES]]
    if len(members) > MEMBER_LINES:
        lines.append("... and more affected (see the incident)")
    return lines


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
