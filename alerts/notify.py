"""The notify stage: a correlator notification becomes outbox rows, one planner per kind.

Each planner (tickets, pages) decides, inside the transaction that records the
incident change, which operations a notification calls for and writes them to the
outbox (plus any state of its own, such as a pending escalation), so a crash never
separates a decision from its effects. Planners never do I/O outside `conn`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from correlator.model import Notification

log = logging.getLogger(__name__)


def note_payload(note: Notification) -> dict[str, Any]:
    """The part of every outbox payload that describes the incident."""
    return {
        "dedup_key": f"monitord-incident-{note.incident}",
        "subject": f"[{note.priority}] {note.title}",
        "customer": note.customer,
        "device_id": note.device_id,
        "priority": note.priority,
        "message": note.message,
        "ts": note.ts,
    }


class Planner(Protocol):
    def plan(self, conn: Connection, note: Notification, now: float) -> None:
        """Write the outbox rows (and own state) `note` calls for, in `conn`'s transaction."""
        ...


class Notifier:
    """Runs every planner on each notification of a committed batch.

    Each planner runs in a savepoint of the batch's transaction: a planner that
    raises (a bug, a row it cannot write) loses only what it would have written
    for that notification, reported through `failed(planner name, error)`, instead
    of failing the batch, which the writer would retry for ever while no result,
    incident or other notification got stored.
    """

    def __init__(
        self,
        planners: Sequence[Planner],
        failed: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.planners = tuple(planners)
        self.failed = failed

    def __call__(self, conn: Connection, note: Notification, now: float) -> None:
        for planner in self.planners:
            try:
                with conn.begin_nested():
                    planner.plan(conn, note, now)
            except Exception as exc:
                name = type(planner).__name__
                log.exception("%s failed on incident %s (%s)", name, note.incident, note.action)
                if self.failed is not None:
                    self.failed(name, exc)
