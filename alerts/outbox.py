"""The durable outbox: every ticket and page operation is a row first.

Rows are written in the same transaction as the incident change that caused
them (so a crash never loses or invents one), then delivered at least once by
`Dispatcher` with exponential backoff. Deliverers make delivery idempotent by
the row's key, so at-least-once delivery has an exactly-once effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, and_, case, false, func, insert, or_, select, update

from monitord.errors import DeliveryError, Reason
from monitord.storage.schema import outbox

log = logging.getLogger(__name__)

MAX_BACKOFF = 600.0
PAGE = 200  # outbox rows fetched per delivery round


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str  # ticket | page
    target: str
    op: str
    incident_id: int | None
    payload: Mapping[str, Any]
    attempts: int


class Deliverer(Protocol):
    """Delivers one outbox item; raises DeliveryError. Must be idempotent by item id."""

    async def deliver(self, item: OutboxItem) -> None: ...


def put(
    conn: Connection,
    *,
    kind: str,
    target: str,
    op: str,
    incident_id: int | None,
    op_key: str,
    payload: Mapping[str, Any],
    now: float,
    due: float | None = None,
) -> None:
    """Write one outbox row in the caller's transaction.

    `op_key` is the operation's identity (unique): a planner that runs twice for the
    same decision writes nothing twice. `due` delays the first attempt (a deferred page).
    """
    conn.execute(
        insert(outbox).values(
            kind=kind,
            target=target,
            op=op,
            incident_id=incident_id,
            op_key=op_key[:150],
            payload=dict(payload),
            created_at=now,
            attempts=0,
            next_attempt_at=now if due is None else due,
            parked=False,
        )
    )


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF, 2 ** min(attempts, 10)))


class Dispatcher:
    """Delivers pending outbox rows in id order, per target: nothing overtakes an
    item of its target that waits for a retry. A parked item (a permanent failure)
    is out of the line; what decides whether later ones wait behind it is the
    deliverer's business (tickets keep each ticket's order)."""

    def __init__(self, engine: Engine, deliverers: Mapping[tuple[str, str], Deliverer]) -> None:
        self.engine = engine
        self.deliverers = deliverers
        self.wake = asyncio.Event()
        self.wake.set()  # the first round at once: rows a previous run left are due now
        self.retrying = False  # some item failed and waits for its next attempt

    def _pending(self, now: float) -> list[OutboxItem]:
        """Due items, oldest first, that no earlier item of their target waits ahead of
        (sets `retrying` when any item waits for a later attempt)."""
        waiting = and_(outbox.c.delivered_at.is_(None), outbox.c.parked.is_(False))
        with self.engine.connect() as conn:
            # The first item of each target that waits for its retry: later ones wait too.
            heads = conn.execute(
                select(outbox.c.kind, outbox.c.target, func.min(outbox.c.id))
                .where(waiting, outbox.c.next_attempt_at > now)
                .group_by(outbox.c.kind, outbox.c.target)
            ).all()
            behind = [
                and_(outbox.c.kind == kind, outbox.c.target == target, outbox.c.id > head)
                for kind, target, head in heads
            ]
            rows = conn.execute(
                select(outbox)
                .where(waiting, outbox.c.next_attempt_at <= now, ~or_(false(), *behind))
                # pages first: a storm's tickets must not hold up the phone call
                # (each target's own order is by id either way)
                .order_by(case((outbox.c.kind == "page", 0), else_=1), outbox.c.id)
                .limit(PAGE)
            ).all()
        self.retrying = self.retrying or bool(heads)
        return [
            OutboxItem(r.id, r.kind, r.target, r.op, r.incident_id, r.payload, r.attempts)
            for r in rows
        ]

    def _mark(self, item: OutboxItem, now: float, error: DeliveryError | None) -> None:
        with self.engine.begin() as conn:
            if error is None:
                values: dict[str, Any] = {"delivered_at": now, "attempts": item.attempts + 1}
            else:
                values = {
                    "attempts": item.attempts + 1,
                    "last_error": str(error)[:2000],
                    "next_attempt_at": now + backoff(item.attempts + 1),
                    "parked": error.permanent,
                }
            conn.execute(update(outbox).where(outbox.c.id == item.id).values(**values))

    async def run_once(self, now: float) -> int:
        """Deliver what is due; returns how many items were delivered."""
        self.retrying = False
        items = await asyncio.to_thread(self._pending, now)  # sets `retrying` if some wait
        self.retrying = self.retrying or len(items) == PAGE  # more are behind this page
        blocked: set[tuple[str, str]] = set()
        delivered = 0
        for item in items:
            key = (item.kind, item.target)
            if key in blocked:  # keep per-target order: nothing overtakes a failed item
                continue
            deliverer = self.deliverers.get(key)
            error: DeliveryError | None = None
            if deliverer is None:
                error = DeliveryError(
                    f"no deliverer for {key!r}", permanent=True, reason=Reason.CLIENT_ERROR
                )
            else:
                try:
                    await deliverer.deliver(item)
                except DeliveryError as exc:
                    error = exc
            if error is not None:
                if not error.permanent:
                    blocked.add(key)  # the rest of its target waits for the retry
                self.retrying = self.retrying or not error.permanent
                log.warning("outbox delivery failed", extra={"item": item.id, "error": str(error)})
            else:
                delivered += 1
            await asyncio.to_thread(self._mark, item, now, error)
        return delivered
