"""`DbTicketMap`: the durable `TicketMap`, the `ticket_refs` table in monitord's database,
and its intent log `ticket_attempts`.

Blocking database calls run in a worker thread; any storage failure becomes a
retryable DeliveryError (the Dispatcher catches nothing else), so a database
outage delays a ticket operation instead of losing it or opening a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitord.errors import DeliveryError, Reason
from monitord.storage.schema import ticket_attempts, ticket_refs


class DbTicketMap:
    """`TicketMap` over `ticket_refs` (primary key: system, dedup key)."""

    def __init__(self, engine: Engine, now: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.now = now

    async def get(self, system: str, dedup_key: str) -> str | None:
        try:
            return await asyncio.to_thread(self._get, system, dedup_key)
        except SQLAlchemyError as exc:
            raise _storage_error("read", system, exc) from exc

    async def put(
        self, system: str, dedup_key: str, external_id: str, incident_id: int | None = None
    ) -> None:
        try:
            await asyncio.to_thread(self._put, system, dedup_key, external_id, incident_id)
        except SQLAlchemyError as exc:
            raise _storage_error("write", system, exc) from exc

    async def attempted(self, system: str, item_id: int) -> bool:
        try:
            return await asyncio.to_thread(self._attempted, system, item_id)
        except SQLAlchemyError as exc:
            raise _storage_error("write", system, exc) from exc

    def _attempted(self, system: str, item_id: int) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(ticket_attempts).values(
                        outbox_id=item_id, system=system, attempted_at=self.now()
                    )
                )
        except IntegrityError:
            return True
        return False

    def _get(self, system: str, dedup_key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(ticket_refs.c.external_id).where(
                    ticket_refs.c.system == system, ticket_refs.c.dedup_key == dedup_key
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def _put(self, system: str, dedup_key: str, external_id: str, incident_id: int | None) -> None:
        with self.engine.begin() as conn:
            put_ref(conn, system, dedup_key, external_id, incident_id, self.now())


def put_ref(
    conn: Connection,
    system: str,
    dedup_key: str,
    external_id: str,
    incident_id: int | None,
    now: float,
    linked_by: str | None = None,
) -> None:
    """Record (or replace) which ticket `system` holds for `dedup_key`, in `conn`."""
    values: dict[str, object] = {"external_id": external_id}
    if incident_id is not None:
        values["incident_id"] = incident_id
    if linked_by is not None:
        values["linked_by"] = linked_by
    changed = conn.execute(
        update(ticket_refs)
        .where(ticket_refs.c.system == system, ticket_refs.c.dedup_key == dedup_key)
        .values(**values)
    ).rowcount
    if not changed:
        conn.execute(
            insert(ticket_refs).values(system=system, dedup_key=dedup_key, created_at=now, **values)
        )


def _storage_error(what: str, system: str, exc: SQLAlchemyError) -> DeliveryError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DeliveryError(
        f"{system}: ticket map {what} failed: {first}"[:500],
        permanent=False,
        reason=Reason.SERVER_ERROR,
    )
