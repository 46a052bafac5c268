"""The console channel: a page is a log line and a row in the pages table.

Used by `monitord demo` and as the last-resort channel; the pages table's
unique outbox id makes a redelivered page a no-op.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine, insert, select

from alerts.outbox import OutboxItem
from monitord.storage.schema import pages

log = logging.getLogger("monitord.page")


class ConsoleChannel:
    def __init__(self, engine: Engine, name: str = "console") -> None:
        self.engine = engine
        self.name = name

    async def deliver(self, item: OutboxItem) -> None:
        if await asyncio.to_thread(self._record, item):
            p = item.payload
            verb = "PAGE" if item.op == "trigger" else "RESOLVED"
            log.warning("%s %s (incident %s)", verb, p["subject"], item.incident_id)

    def _record(self, item: OutboxItem) -> bool:
        p = item.payload
        with self.engine.begin() as conn:
            if conn.execute(select(pages.c.id).where(pages.c.outbox_id == item.id)).first():
                return False
            conn.execute(
                insert(pages).values(
                    outbox_id=item.id,
                    incident_id=item.incident_id,
                    channel=self.name,
                    recipient="on-call",
                    kind=item.op,
                    ts=p["ts"],
                    text=p["subject"],
                )
            )
        return True
