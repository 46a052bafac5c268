"""Zammad adapter against the Zammad emulator: exact requests, dedup, errors, escaping."""

from __future__ import annotations

import pytest

from alerts.tickets.base import MemoryTicketMap, TicketOp
from monitord.errors import DeliveryError, Reason
from tests.tickets.conftest import Harness, item

KEY = "monitord-incident-7"


async def test_lifecycle_sends_exactly_these_requests(zammad: Harness) -> None:
    emu, d = zammad.emulator, zammad.deliverer()
    for n, op in enumerate(("open", "comment", "resolve", "reopen"), start=1):
        await d.deliver(item(op, ident=n))
    assert emu.calls() == [
        ("GET", "/api/v1/tickets/search"),  # tag search
        ("GET", "/api/v1/tickets/search"),  # full-text fallback
        ("POST", "/api/v1/tickets"),
        ("POST", "/api/v1/ticket_articles"),
        ("PUT", "/api/v1/tickets/1"),
        ("PUT", "/api/v1/tickets/1"),
    ]
    first = emu.requests[0]
    assert first.query == {"query": f'tags:"{KEY}"', "expand": "true", "limit": "50"}
    assert first.headers["Authorization"] == f"Token token={emu.token}"
    assert emu.requests[1].query["query"] == KEY
    create = emu.requests[2].body
    assert create["title"] == f"[P2] acme-srv-db01: ping down [{KEY}]"
    assert create["group"] == "NOC"
    assert create["customer_id"] == "guess:alerts@acme.example"
    assert create["priority"] == "3 high"
    assert create["tags"] == f"monitord,{KEY}"
    assert create["article"]["type"] == "note"
    assert create["article"]["internal"] is True
    assert create["article"]["content_type"] == "text/html"
    assert emu.requests[3].body["ticket_id"] == 1
    assert emu.requests[4].body["state"] == "closed"
    assert emu.requests[5].body["state"] == "open"
    ticket = emu.tickets[1]
    assert ticket["tags"] == ["monitord", KEY]
    assert ticket["state"] == "open"
    assert len(ticket["articles"]) == 4
    assert zammad.tickets.rows == {("helpdesk", KEY): "1"}


@pytest.mark.parametrize("elasticsearch", [True, False])
async def test_open_after_crash_adopts_the_existing_ticket(
    zammad: Harness, elasticsearch: bool
) -> None:
    zammad.emulator.elasticsearch = elasticsearch
    await zammad.deliverer().deliver(item("open"))
    # crash: the external id never reached the local map, the outbox redelivers "open"
    fresh = MemoryTicketMap()
    await zammad.deliverer(fresh).deliver(item("open"))
    assert len(zammad.emulator.tickets) == 1
    assert fresh.rows == {("helpdesk", KEY): "1"}
    assert ("POST", "/api/v1/tickets") not in zammad.emulator.calls()[3:]


async def test_ids_search_shape_is_understood(zammad: Harness) -> None:
    zammad.emulator.ids_shape = True
    await zammad.deliverer().deliver(item("open"))
    assert await zammad.system.find(KEY) == "1"
    assert await zammad.system.find("monitord-incident-70") is None


async def test_lost_create_reply_is_retried_without_a_duplicate(zammad: Harness) -> None:
    zammad.emulator.lose_reply = True
    with pytest.raises(DeliveryError) as err:
        await zammad.deliverer().deliver(item("open"))
    assert err.value.permanent is False
    await zammad.deliverer().deliver(item("open"))
    assert len(zammad.emulator.tickets) == 1
    assert zammad.tickets.rows == {("helpdesk", KEY): "1"}


async def test_validation_error_is_permanent_with_zammad_text(zammad: Harness) -> None:
    zammad.emulator.groups = ("Other",)
    with pytest.raises(DeliveryError) as err:
        await zammad.deliverer().deliver(item("open"))
    assert err.value.permanent is True
    assert err.value.reason is Reason.CLIENT_ERROR
    assert "HTTP 422" in str(err.value)
    assert "No lookup value found for 'group'" in str(err.value)


async def test_unknown_ticket_is_permanent(zammad: Harness) -> None:
    with pytest.raises(DeliveryError) as err:
        await zammad.system.resolve("99", TicketOp.from_item(item("resolve")))
    assert err.value.permanent is True
    assert "Couldn't find Ticket with 'id'=99" in str(err.value)


async def test_markup_in_device_names_and_messages_is_escaped(zammad: Harness) -> None:
    device = '<img src=x onerror="alert(1)">'
    await zammad.deliverer().deliver(item("open", device=device, message="<b>&</b>"))
    body = zammad.emulator.tickets[1]["articles"][0]["body"]
    assert "<img" not in body and "<b>&" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in body
