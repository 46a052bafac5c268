"""The built-in ticket store as an outbox deliverer: one ticket per dedup key, every
operation written once per outbox item (a redelivery changes nothing), statuses and
the fields the monthly report reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from alerts.outbox import OutboxItem
from alerts.tickets.builtin import BuiltinTickets
from monitord.errors import DeliveryError
from monitord.storage.db import open_database
from monitord.storage.schema import ticket_comments, ticket_refs, tickets

KEY = "monitord-7-1700000000"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """SQLite and PostgreSQL both."""
    engine = open_database(db_url)
    yield engine
    engine.dispose()


def item(op: str, ident: int, key: str = KEY, **extra: Any) -> OutboxItem:
    payload = {
        "dedup_key": key,
        "subject": "[P2] srv: web down",
        "customer": "acme",
        "device_id": "acme/srv",
        "priority": "P2",
        "message": f"{op} #{ident}",
        "ts": 1_700_000_000.0 + ident,
        "facts": [["Device", "acme/srv"], ["Priority", "P2"]],
        "evidence": ["opened: web down"],
        **extra,
    }
    return OutboxItem(ident, "ticket", "builtin", op, 7, payload, 0)


def rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)).all())


async def test_every_operation_takes_effect_once(engine: Engine) -> None:
    store = BuiltinTickets(engine, lambda: 5.0)
    sequence = [
        item("open", 1),
        item("comment", 2, event="update"),
        item("resolve", 3, event="resolve"),
        item("reopen", 4, event="reopen"),
        item("resolve", 5, event="resolve", close=True),
    ]
    for it in sequence:
        await store.deliver(it)
        await store.deliver(it)  # redelivered: the mark of the first was lost
    await store.deliver(item("open", 6))  # a second open of the same key
    (ticket,) = rows(engine, tickets)
    assert ticket.status == "closed" and ticket.reopened == 1
    assert ticket.resolved_by == "monitord" and ticket.resolution == "recovered: resolve #5"
    assert ticket.resolved_at == ticket.closed_at == 1_700_000_005.0
    comments = rows(engine, ticket_comments)
    assert [(c.kind, c.outbox_id) for c in comments] == [
        ("open", 1),
        ("update", 2),
        ("resolve", 3),
        ("reopen", 4),
        ("resolve", 5),
    ]
    assert comments[0].body.startswith("Problem: open #1\nDevice: acme/srv\nPriority: P2\n")
    assert "- opened: web down" in comments[0].body


async def test_an_update_without_a_ticket_is_permanent(engine: Engine) -> None:
    with pytest.raises(DeliveryError) as err:
        await BuiltinTickets(engine).deliver(item("comment", 1))
    assert err.value.permanent and "no ticket for" in str(err.value)
    assert rows(engine, tickets) == []


async def test_a_reopen_without_a_ticket_opens_one(engine: Engine) -> None:
    await BuiltinTickets(engine).deliver(item("reopen", 1, event="reopen"))
    (ticket,) = rows(engine, tickets)
    assert ticket.status == "open" and ticket.reopened == 0


async def test_a_ticket_closed_by_hand_is_not_resolved_over(engine: Engine) -> None:
    store = BuiltinTickets(engine)
    await store.deliver(item("open", 1))
    with engine.begin() as conn:
        conn.execute(
            tickets.update().values(status="closed", resolution="replaced PSU", resolved_by="jan")
        )
    await store.deliver(item("resolve", 2, event="resolve"))
    (ticket,) = rows(engine, tickets)
    assert (ticket.status, ticket.resolution, ticket.resolved_by) == (
        "closed",
        "replaced PSU",
        "jan",
    )
    assert len(rows(engine, ticket_comments)) == 2  # the recovery is noted


async def test_a_key_linked_to_another_ticket_continues_there(engine: Engine) -> None:
    store = BuiltinTickets(engine)
    await store.deliver(item("open", 1))
    other = "monitord-9-1700000500"
    with engine.begin() as conn:
        conn.execute(
            insert(ticket_refs).values(
                system="builtin", dedup_key=other, external_id="1", created_at=0.0, linked_by="jan"
            )
        )
    await store.deliver(item("open", 2, key=other))  # nothing new
    await store.deliver(item("comment", 3, key=other, event="update"))
    assert len(rows(engine, tickets)) == 1
    assert [c.outbox_id for c in rows(engine, ticket_comments)] == [1, 3]


async def test_the_incidents_priority_and_title_stay_current(engine: Engine) -> None:
    store = BuiltinTickets(engine)
    await store.deliver(item("open", 1))
    await store.deliver(item("comment", 2, priority="P1", subject="[P1] srv: web down"))
    with engine.begin() as conn:
        conn.execute(
            insert(ticket_refs).values(
                system="builtin", dedup_key="other-key", external_id="1", created_at=0.0
            )
        )
    await store.deliver(item("comment", 3, key="other-key", priority="P4", subject="[P4] x"))
    (ticket,) = rows(engine, tickets)
    assert (ticket.priority, ticket.subject) == ("P1", "[P1] srv: web down")
