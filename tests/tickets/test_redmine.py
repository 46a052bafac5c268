"""Redmine against the real server on loopback: the lifecycle as Redmine stores it,
the explicit filter form for keys, Redmine's traps (a status change answered with
204 and ignored, a custom field silently dropped, 422 validation errors) and the
Textile texts as Redmine renders them (nothing injected)."""

from __future__ import annotations

import html
import re

import aiohttp
import pytest

from alerts.tickets.base import MemoryTicketMap, TicketDeliverer, UnstampedTicket
from monitord.errors import DeliveryError, Reason
from tests.tickets.conftest import Harness, make_system

EVIL = (
    'srv<script>alert(1)</script> *bold* "link":http://evil.example !http://evil.example/x.png! '
    "#1 {{toc}} [[Wiki]] @code@ h1. x |a|b| user#1 commit:abc www.evil.example"
)


async def test_the_lifecycle_as_redmine_stores_it(redmine: Harness) -> None:
    env = redmine.emulator.env
    d = redmine.deliverer()
    await d.deliver(redmine.item("open", ident=1))
    ident = redmine.tickets.rows[("helpdesk", redmine.key())]
    assert await redmine.real.status(ident) == env["REDMINE_STATUS_NEW"]
    await d.deliver(redmine.item("comment", ident=2))
    await d.deliver(redmine.item("resolve", ident=3))
    assert await redmine.real.status(ident) == env["REDMINE_STATUS_RESOLVED"]
    await d.deliver(redmine.item("reopen", ident=4))
    assert await redmine.real.status(ident) == env["REDMINE_STATUS_NEW"]
    await d.deliver(redmine.item("resolve", ident=5, close=True))
    assert await redmine.real.status(ident) == env["REDMINE_STATUS_CLOSED"]
    notes = await redmine.real.notes(ident)
    assert [n.rsplit("\n", 1)[-1] for n in notes] == [f"monitord op {i}" for i in (2, 3, 4, 5)]
    issue = (await redmine.real.get(f"/issues/{ident}.json", {"include": "journals"}))["issue"]
    assert all(j["private_notes"] for j in issue["journals"] if j.get("notes"))
    await redmine.deliverer(MemoryTicketMap()).deliver(redmine.item("open", ident=6))
    assert await redmine.count() == 1  # found by its key (closed issues included)


@pytest.mark.parametrize("tail", ["a|b", 'it\'s "quoted"', "back\\slash", "ж and spaces"])
async def test_keys_are_found_exactly_whatever_they_contain(redmine: Harness, tail: str) -> None:
    key = f"{redmine.prefix}-{tail}"
    op = redmine.item("open", ident=1)
    op.payload["dedup_key"] = key  # type: ignore[index]
    await redmine.deliverer().deliver(op)
    ident = redmine.tickets.rows[("helpdesk", key)]
    assert await redmine.system.find(key) == ident
    assert await redmine.system.find(f"{redmine.prefix}-{tail}".upper()) is None
    assert await redmine.system.find(f"{redmine.prefix}-a") is None


async def test_a_status_change_redmine_ignores_is_an_error(redmine: Harness) -> None:
    await redmine.deliverer().deliver(redmine.item("open", ident=1))
    ident = redmine.tickets.rows[("helpdesk", redmine.key())]
    system = make_system("redmine", redmine.emulator, resolved_status_id=99)
    try:
        with pytest.raises(DeliveryError) as err:
            deliverer = TicketDeliverer("helpdesk", system, redmine.tickets)
            await deliverer.deliver(redmine.item("resolve", ident=2))
    finally:
        await system.aclose()
    assert err.value.permanent and err.value.reason == Reason.CLIENT_ERROR
    assert "Redmine ignored the status change and left it 'New'" in str(err.value)
    assert await redmine.real.status(ident) == redmine.emulator.env["REDMINE_STATUS_NEW"]
    puts = [s for s in redmine.emulator.requests if s.method == "PUT"]
    assert len(puts) == 1  # no retries


async def test_a_validation_error_is_permanent_with_redmines_text(redmine: Harness) -> None:
    system = make_system("redmine", redmine.emulator, project="no-such-project")
    try:
        with pytest.raises(DeliveryError) as err:
            await TicketDeliverer("helpdesk", system, MemoryTicketMap()).deliver(
                redmine.item("open")
            )
    finally:
        await system.aclose()
    assert err.value.permanent
    assert "HTTP 422" in str(err.value) and "cannot be blank" in str(err.value)
    assert await redmine.count() == 0


async def test_an_issue_without_the_key_field_is_recorded_and_parked(redmine: Harness) -> None:
    system = make_system("redmine", redmine.emulator, custom_field_id=77)
    tickets = MemoryTicketMap()
    try:
        deliverer = TicketDeliverer("helpdesk", system, tickets)
        with pytest.raises(UnstampedTicket) as err:
            await deliverer.deliver(redmine.item("open", ident=1))
        assert err.value.permanent
        assert "created without the dedup key: custom field 77" in str(err.value)
        await deliverer.deliver(redmine.item("open", ident=1))  # the operator retries
    finally:
        await system.aclose()
    creates = [s for s in redmine.emulator.requests if s.method == "POST"]
    assert len(creates) == 1  # recorded: never created twice
    assert ("helpdesk", redmine.key()) in tickets.rows


async def test_textile_texts_inject_nothing(redmine: Harness) -> None:
    await redmine.deliverer().deliver(redmine.item("open", ident=1, device=EVIL))
    await redmine.deliverer().deliver(redmine.item("comment", ident=2, message=EVIL))
    ident = redmine.tickets.rows[("helpdesk", redmine.key())]
    page = await _rendered(redmine.emulator.env, ident)
    wiki = "".join(re.findall(r'<div[^>]*class="wiki"[^>]*>(.*?)</div>', page, re.S))
    # Every value reads as the text it was, and the only markup is monitord's own.
    assert html.unescape(re.sub(r"<[^>]+>", "", wiki)).count(EVIL) == 2
    assert set(re.findall(r"<(\w+)", wiki)) == {"p", "strong", "br"}


async def _rendered(env: dict[str, str], ident: str) -> str:
    """The issue page as a logged-in user sees it (Redmine renders the Textile)."""
    base = env["REDMINE_URL"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/login") as resp:
            form = await resp.text()
        token = re.search(r'name="authenticity_token" value="([^"]+)"', form)
        assert token is not None
        login = {
            "authenticity_token": token.group(1),
            "username": env["REDMINE_USER"],
            "password": env["REDMINE_PASSWORD"],
        }
        async with http.post(f"{base}/login", data=login, allow_redirects=False) as resp:
            assert resp.status == 302
        async with http.get(f"{base}/issues/{ident}") as resp:
            assert resp.status == 200
            return await resp.text()
