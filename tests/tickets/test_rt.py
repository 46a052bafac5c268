"""Request Tracker 5 (REST2) against the real server on loopback: the lifecycle as RT
stores it, TicketSQL quoting, and RT's traps (errors answered with HTTP 200, custom
fields silently dropped, case-insensitive custom-field matches)."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.tickets.base import MemoryTicketMap, TicketDeliverer
from monitord.errors import DeliveryError, Reason
from tests.tickets.conftest import Harness, make_system

EVIL_DEVICE = 'srv"><script>alert(1)</script> *bold* [x](http://evil.example)'


async def test_the_lifecycle_as_rt_stores_it(rt: Harness) -> None:
    d = rt.deliverer()
    await d.deliver(rt.item("open", ident=1, device=EVIL_DEVICE, priority="P1"))
    ident = rt.tickets.rows[("helpdesk", rt.key())]
    ticket = await rt.real.get(f"/ticket/{ident}")
    assert ticket["Status"] == "new" and ticket["Queue"]["id"] in ("3", 3, "Monitoring")
    assert ticket["Priority"] == "90"  # P1
    (cf,) = [f for f in ticket["CustomFields"] if f["name"] == rt.emulator.env["RT_CF"]]
    assert cf["values"] == [rt.key()]
    await d.deliver(rt.item("comment", ident=2))
    await d.deliver(rt.item("resolve", ident=3))
    assert await rt.real.status(ident) == "resolved"
    await d.deliver(rt.item("reopen", ident=4))
    assert await rt.real.status(ident) == "open"
    assert await rt.real.notes(ident) == ["monitord op 2", "monitord op 3", "monitord op 4"]
    # A crash lost the map: the open finds the ticket by its key and creates nothing.
    await rt.deliverer(MemoryTicketMap()).deliver(rt.item("open", ident=5))
    assert await rt.count() == 1


async def test_ticketsql_is_quoted_and_only_exact_keys_match(rt: Harness) -> None:
    key = f'{rt.prefix}-a\'b\\c|d "e" ж'
    op = rt.item("open", ident=1)
    op.payload["dedup_key"] = key  # type: ignore[index]
    await rt.deliverer().deliver(op)
    ident = rt.tickets.rows[("helpdesk", key)]
    assert await rt.system.find(key) == ident
    assert await rt.system.find(key.upper()) is None  # RT itself matches case-insensitively
    assert await rt.system.find(f"{rt.prefix}' OR 'x' = 'x") is None


async def test_a_status_rt_does_not_know_is_an_error_despite_http_200(rt: Harness) -> None:
    await rt.deliverer().deliver(rt.item("open", ident=1))
    ident = rt.tickets.rows[("helpdesk", rt.key())]
    system = make_system("rt", rt.emulator, resolved_status="closed")
    try:
        with pytest.raises(DeliveryError) as err:
            deliverer = TicketDeliverer("helpdesk", system, rt.tickets)
            await deliverer.deliver(rt.item("resolve", ident=2))
    finally:
        await system.aclose()
    assert err.value.permanent and err.value.reason == Reason.CLIENT_ERROR
    assert "isn't a valid status" in str(err.value) and "left it 'new'" in str(err.value)
    assert await rt.real.status(ident) == "new"
    replies = [s for s in rt.emulator.requests if s.path == f"/REST/2.0/ticket/{ident}/comment"]
    assert len(replies) == 1  # one request, then the read-back; no retries


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"queue": "NoSuchQueue"}, "unknown queue 'NoSuchQueue'"),
        ({"custom_field": "NoSuchField"}, "custom field 'NoSuchField' is not applied"),
    ],
)
async def test_a_queue_without_the_key_field_creates_nothing(
    rt: Harness, override: dict[str, Any], message: str
) -> None:
    system = make_system("rt", rt.emulator, **override)
    try:
        with pytest.raises(DeliveryError) as err:
            await TicketDeliverer("helpdesk", system, MemoryTicketMap()).deliver(rt.item("open"))
    finally:
        await system.aclose()
    assert err.value.permanent and message in str(err.value)
    assert [s.method for s in rt.emulator.requests if s.method == "POST"] == []
    assert await rt.count() == 0
