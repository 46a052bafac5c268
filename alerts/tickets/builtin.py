"""The built-in ticket store: tickets, their history and work log in monitord's own
database (read and edited by people through `alerts.tickets.desk`, the API and CLI).

Exactly once, twice over: a ticket is found by its dedup key (`ticket_refs` with
system "builtin", which is also where a ticket linked by hand is recorded; the
creating key is unique on `tickets`), and every operation writes its history entry
with its outbox item's id (unique), in the same transaction as its effect: a
redelivered operation finds its entry and changes nothing.

Statuses: open, resolved, closed. A recovery resolves (or closes, per the ticket
policy); a ticket closed by hand is not resolved over; a return reopens any.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from alerts.outbox import OutboxItem
from alerts.tickets.base import TicketOp
from alerts.tickets.refs import put_ref
from alerts.tickets.texts import flat, heading
from monitord.errors import DeliveryError, Reason
from monitord.storage.schema import ticket_comments, ticket_refs, tickets

SYSTEM = "builtin"
AUTHOR = "monitord"


class BuiltinTickets:
    name = SYSTEM

    def __init__(self, engine: Engine, now: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.now = now

    async def deliver(self, item: OutboxItem) -> None:
        op = TicketOp.from_item(item)
        try:
            await asyncio.to_thread(self._apply, op)
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DeliveryError(
                f"builtin: ticket store write failed: {first}"[:500],
                permanent=False,
                reason=Reason.SERVER_ERROR,
            ) from exc

    def _apply(self, op: TicketOp) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                select(ticket_comments.c.id).where(ticket_comments.c.outbox_id == op.item_id)
            ).first()
            if done is not None:
                return  # delivered before; the mark was lost
            ticket = find(conn, op.dedup_key)
            if ticket is None:
                if op.op not in ("open", "reopen"):
                    raise DeliveryError(
                        f"builtin: no ticket for {op.dedup_key!r} to {op.op}",
                        permanent=True,
                        reason=Reason.CLIENT_ERROR,
                    )
                self._open(conn, op)
            elif op.op == "comment":
                self._touch(conn, ticket.id, op, {})
            elif op.op == "resolve":
                self._resolve(conn, ticket, op)
            elif op.op == "reopen":
                values: dict[str, Any] = {}
                if ticket.status != "open":
                    values = {
                        "status": "open",
                        "resolved_at": None,
                        "closed_at": None,
                        "resolution": None,
                        "resolved_by": None,
                        "reopened": ticket.reopened + 1,
                    }
                self._touch(conn, ticket.id, op, values)
            # "open" of a ticket that exists (linked by hand, or a replay): nothing to do

    def _open(self, conn: Connection, op: TicketOp) -> None:
        ticket_id = conn.execute(
            insert(tickets)
            .values(
                dedup_key=op.dedup_key,
                incident_id=op.incident_id,
                system=SYSTEM,
                status="open",
                subject=flat(op.subject, 500),
                customer=op.customer or None,
                device_id=op.device_id or None,
                priority=op.priority[:2],
                created_at=op.ts,
                updated_at=op.ts,
            )
            .returning(tickets.c.id)
        ).scalar_one()
        put_ref(conn, SYSTEM, op.dedup_key, str(ticket_id), op.incident_id, self.now())
        _entry(conn, ticket_id, op)

    def _resolve(self, conn: Connection, ticket: Any, op: TicketOp) -> None:
        values: dict[str, Any] = {}
        if ticket.status == "open":
            values = {
                "status": "closed" if op.close else "resolved",
                "resolved_at": op.ts,
                "resolved_by": AUTHOR,
                "resolution": flat(f"recovered: {op.message}", 1000),
            }
            if op.close:
                values["closed_at"] = op.ts
        elif ticket.status == "resolved" and op.close:
            values = {"status": "closed", "closed_at": op.ts}
        self._touch(conn, ticket.id, op, values)

    def _touch(
        self, conn: Connection, ticket_id: int, op: TicketOp, values: dict[str, Any]
    ) -> None:
        own = conn.execute(
            select(tickets.c.id).where(
                tickets.c.id == ticket_id, tickets.c.dedup_key == op.dedup_key
            )
        ).first()
        if own is not None:  # its own incident's priority and title stay current on it
            values = {"priority": op.priority[:2], "subject": flat(op.subject, 500), **values}
        conn.execute(
            update(tickets).where(tickets.c.id == ticket_id).values(updated_at=op.ts, **values)
        )
        _entry(conn, ticket_id, op)


def find(conn: Connection, dedup_key: str) -> Any:
    """The built-in ticket recorded for `dedup_key`, or None."""
    ref = conn.execute(
        select(ticket_refs.c.external_id).where(
            ticket_refs.c.system == SYSTEM, ticket_refs.c.dedup_key == dedup_key
        )
    ).scalar_one_or_none()
    query = select(tickets)
    if ref is not None and ref.isdigit():
        query = query.where(tickets.c.id == int(ref))
    else:
        query = query.where(tickets.c.dedup_key == dedup_key)
    return conn.execute(query).first()


def _entry(conn: Connection, ticket_id: int, op: TicketOp) -> None:
    """The history entry of `op` (plain text; the API renders it as text, never markup)."""
    lines = [f"{heading(op)}: {flat(op.message)}"]
    if op.event in ("trigger", "reopen", "link") or op.op == "open":
        lines += [f"{k}: {v}" for k, v in op.facts]
        lines += [f"- {flat(line, 400)}" for line in op.evidence]
        if op.link:
            lines.append(f"Details: {op.link}")
    conn.execute(
        insert(ticket_comments).values(
            ticket_id=ticket_id,
            ts=op.ts,
            author=AUTHOR,
            body="\n".join(lines)[:20000],
            kind=op.event or op.op,
            outbox_id=op.item_id,
        )
    )
