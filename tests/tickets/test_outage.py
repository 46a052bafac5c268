"""An outage of the ticket system, driven through the real outbox Dispatcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from alerts.outbox import Dispatcher, OutboxItem
from alerts.tickets.base import TicketDeliverer
from monitord.storage.db import scratch_engine
from monitord.storage.schema import metadata, outbox
from tests.tickets.conftest import SYSTEMS, running


class Recording:
    """Wraps a deliverer, recording every attempt and every success in order."""

    def __init__(self, inner: TicketDeliverer) -> None:
        self.inner = inner
        self.attempts: list[int] = []
        self.delivered: list[int] = []

    async def deliver(self, it: OutboxItem) -> None:
        self.attempts.append(it.id)
        await self.inner.deliver(it)
        self.delivered.append(it.id)


def _enqueue(engine: Engine, *items: OutboxItem) -> None:
    with engine.begin() as conn:
        for it in items:
            conn.execute(
                insert(outbox).values(
                    id=it.id,
                    kind="ticket",
                    target="helpdesk",
                    op=it.op,
                    op_key=f"ticket:helpdesk:{it.incident_id}:{it.op}",
                    incident_id=it.incident_id,
                    payload=dict(it.payload),
                    created_at=0.0,
                    attempts=0,
                    next_attempt_at=0.0,
                    parked=False,
                )
            )


@pytest.mark.parametrize("kind", SYSTEMS)
async def test_outage_then_recovery_keeps_order_and_duplicates_nothing(
    kind: str, tmp_path: Path
) -> None:
    engine = scratch_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata.create_all(engine)
    try:
        async with running(kind) as h:
            recording = Recording(h.deliverer())
            dispatcher = Dispatcher(engine, {("ticket", "helpdesk"): recording})
            _enqueue(engine, h.item("open", 7, ident=1))
            assert await dispatcher.run_once(now=1.0) == 1
            _enqueue(engine, h.item("open", 8, ident=2), h.item("resolve", 7, ident=3))
            h.emulator.outage = 4  # the next four requests get 503
            now, rounds = 1.0, 0
            while recording.delivered != [1, 2, 3] and rounds < 10:
                now += 1000.0  # past any backoff
                rounds += 1
                await dispatcher.run_once(now)
            assert recording.delivered == [1, 2, 3]
            assert recording.attempts == sorted(recording.attempts)  # nothing overtook
            assert recording.attempts.count(2) > 1  # it did fail and retry
            assert await h.count() == 2
            with engine.connect() as conn:
                rows = conn.execute(select(outbox.c.delivered_at, outbox.c.parked)).all()
            assert all(r.delivered_at is not None and not r.parked for r in rows)
    finally:
        engine.dispose()


class _Log:
    def __init__(self, seen: list[tuple[str, int]], name: str) -> None:
        self.seen, self.name = seen, name

    async def deliver(self, it: OutboxItem) -> None:
        self.seen.append((self.name, it.id))


async def test_an_item_waiting_for_its_retry_holds_its_target_only(tmp_path: Path) -> None:
    engine = scratch_engine(f"sqlite:///{tmp_path / 'order.db'}")
    metadata.create_all(engine)
    rows = [  # id, target, next attempt, parked
        (1, "helpdesk", 500.0, False),  # failed before: waits for its retry
        (2, "helpdesk", 0.0, False),  # must not overtake #1
        (3, "builtin", 0.0, False),  # another target: goes now
        (4, "other", 0.0, True),  # parked: out of the line
        (5, "other", 0.0, False),  # so this one goes
    ]
    with engine.begin() as conn:
        for ident, target, due, parked in rows:
            conn.execute(
                insert(outbox).values(
                    id=ident,
                    kind="ticket",
                    target=target,
                    op="open",
                    op_key=str(ident),
                    incident_id=ident,
                    payload={},
                    created_at=0.0,
                    attempts=0,
                    next_attempt_at=due,
                    parked=parked,
                )
            )
    seen: list[tuple[str, int]] = []
    deliverers = {("ticket", n): _Log(seen, n) for n in ("helpdesk", "builtin", "other")}
    dispatcher = Dispatcher(engine, deliverers)  # type: ignore[arg-type]
    try:
        assert await dispatcher.run_once(100.0) == 2
        assert seen == [("builtin", 3), ("other", 5)]
        assert dispatcher.retrying  # #1 waits: the loop comes back soon
        assert await dispatcher.run_once(600.0) == 2
        assert seen[2:] == [("helpdesk", 1), ("helpdesk", 2)]
        assert not dispatcher.retrying
    finally:
        engine.dispose()
