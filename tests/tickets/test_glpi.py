"""GLPI adapter against the GLPI emulator: sessions, exact requests, dedup, errors."""

from __future__ import annotations

import pytest

from alerts.tickets.base import MemoryTicketMap, TicketOp
from alerts.tickets.glpi import GlpiTickets
from monitord.errors import DeliveryError, Reason
from tests.tickets.conftest import Harness, item, make_system

KEY = "monitord-incident-7"
API = "/apirest.php"


async def test_lifecycle_sends_exactly_these_requests(glpi: Harness) -> None:
    emu, d = glpi.emulator, glpi.deliverer()
    for n, op in enumerate(("open", "comment", "resolve", "reopen"), start=1):
        await d.deliver(item(op, ident=n))
    assert emu.calls() == [
        ("GET", f"{API}/initSession"),
        ("GET", f"{API}/search/Ticket"),
        ("POST", f"{API}/Ticket/"),
        ("POST", f"{API}/ITILFollowup/"),
        ("POST", f"{API}/ITILFollowup/"),
        ("PUT", f"{API}/Ticket/1234"),
        ("POST", f"{API}/ITILFollowup/"),
        ("PUT", f"{API}/Ticket/1234"),
    ]
    init = emu.requests[0]
    assert init.headers["Authorization"] == f"user_token {emu.user_token}"
    assert init.headers["App-Token"] == emu.app_token
    search = emu.requests[1]
    assert search.body is None  # GLPI refuses GET requests with a body
    assert search.headers["Session-Token"] == "session0001"
    assert search.query["criteria[0][field]"] == "1"
    assert search.query["criteria[0][searchtype]"] == "contains"
    assert search.query["criteria[0][value]"] == f"^[{KEY}]"
    assert emu.requests[2].body == {
        "input": {
            "name": f"[{KEY}] [P2] acme-srv-db01: ping down",
            "content": emu.requests[2].body["input"]["content"],
            "type": 1,
            "urgency": 4,
            "entities_id": 3,
        }
    }
    followup = emu.requests[3].body["input"]
    assert (followup["itemtype"], followup["items_id"], followup["is_private"]) == (
        "Ticket",
        1234,
        1,
    )
    assert emu.requests[5].body == {"input": {"status": 5}}
    assert emu.requests[7].body == {"input": {"status": 2}}
    assert emu.tickets[1234]["status"] == 2
    assert len(emu.followups) == 3
    assert glpi.tickets.rows == {("helpdesk", KEY): "1234"}


async def test_expired_session_is_reopened_once(glpi: Harness) -> None:
    await glpi.deliverer().deliver(item("open"))
    glpi.emulator.expire_sessions()
    await glpi.deliverer().deliver(item("comment", ident=2))
    assert glpi.emulator.calls()[-3:] == [
        ("POST", f"{API}/ITILFollowup/"),
        ("GET", f"{API}/initSession"),
        ("POST", f"{API}/ITILFollowup/"),
    ]
    assert len(glpi.emulator.followups) == 1


async def test_wrong_user_token_is_permanent_auth_without_the_token(glpi: Harness) -> None:
    system = make_system("glpi", glpi.emulator, user_token="wrong-user-token-987654")
    try:
        with pytest.raises(DeliveryError) as err:
            await system.find(KEY)
    finally:
        await system.aclose()
    assert (err.value.permanent, err.value.reason) == (True, Reason.AUTH)
    assert "ERROR_GLPI_LOGIN_USER_TOKEN" in str(err.value)
    assert "wrong-user-token" not in str(err.value)


@pytest.mark.parametrize("indexed", [False, True])
async def test_open_after_crash_adopts_the_existing_ticket(glpi: Harness, indexed: bool) -> None:
    glpi.emulator.indexed = indexed
    await glpi.deliverer().deliver(item("open", 70))  # a key that has key 7 as its prefix
    await glpi.deliverer().deliver(item("open"))
    fresh = MemoryTicketMap()
    await glpi.deliverer(fresh).deliver(item("open"))
    assert len(glpi.emulator.tickets) == 2
    assert fresh.rows == {("helpdesk", KEY): "1235"}


async def test_lost_create_reply_is_retried_without_a_duplicate(glpi: Harness) -> None:
    glpi.emulator.lose_reply = True
    with pytest.raises(DeliveryError) as err:
        await glpi.deliverer().deliver(item("open"))
    assert err.value.permanent is False
    await glpi.deliverer().deliver(item("open"))
    assert len(glpi.emulator.tickets) == 1


async def test_unknown_ticket_is_permanent_with_glpi_text(glpi: Harness) -> None:
    with pytest.raises(DeliveryError) as err:
        await glpi.system.reopen("999", TicketOp.from_item(item("reopen")))
    assert err.value.permanent is True
    assert "ERROR_GLPI_ADD" in str(err.value)
    with pytest.raises(DeliveryError) as err:
        await glpi.system.resolve("1234", TicketOp.from_item(item("resolve")))
    assert "ERROR_GLPI_ADD" in str(err.value)


async def test_unknown_entity_is_permanent(glpi: Harness) -> None:
    system = make_system("glpi", glpi.emulator, entities={"acme": 42})
    try:
        with pytest.raises(DeliveryError) as err:
            await system.open(TicketOp.from_item(item("open")))
    finally:
        await system.aclose()
    assert err.value.permanent is True
    assert "You don't have permission to perform this action." in str(err.value)


async def test_status_update_on_missing_ticket_is_permanent_404(glpi: Harness) -> None:
    system = glpi.system
    assert isinstance(system, GlpiTickets)
    with pytest.raises(DeliveryError) as err:
        await system._status("999", 5)
    assert err.value.permanent is True
    assert "HTTP 404: ERROR_ITEM_NOT_FOUND: Item not found" in str(err.value)


async def test_markup_in_device_names_is_escaped(glpi: Harness) -> None:
    await glpi.deliverer().deliver(item("open", device="<script>x</script>"))
    content = glpi.emulator.tickets[1234]["content"]
    assert "<script>" not in content
    assert "&lt;script&gt;x&lt;/script&gt;" in content


async def test_aclose_kills_the_session(glpi: Harness) -> None:
    await glpi.system.find(KEY)
    assert glpi.emulator.sessions == {"session0001"}
    await glpi.system.aclose()
    assert glpi.emulator.calls()[-1] == ("GET", f"{API}/killSession")
    assert glpi.emulator.sessions == set()


async def test_wrong_app_token_is_permanent_auth(glpi: Harness) -> None:
    system = make_system("glpi", glpi.emulator, app_token="wrong-app-token-987654")
    try:
        with pytest.raises(DeliveryError) as err:
            await system.find(KEY)
    finally:
        await system.aclose()
    assert (err.value.permanent, err.value.reason) == (True, Reason.AUTH)
    assert "ERROR_WRONG_APP_TOKEN_PARAMETER" in str(err.value)
    assert "wrong-app-token" not in str(err.value)


async def test_corrupt_stored_id_is_permanent(glpi: Harness) -> None:
    with pytest.raises(DeliveryError, match="ticket id 'abc' is not a number") as err:
        await glpi.system.comment("abc", TicketOp.from_item(item("comment")))
    assert err.value.permanent is True
