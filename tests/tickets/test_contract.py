"""The contract every registered ticket system keeps, run against its emulator (Zammad,
GLPI, webhook) or its real server behind a fault proxy (Request Tracker, Redmine)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

import aiohttp
import pytest

import alerts.tickets
from alerts.outbox import OutboxItem
from alerts.tickets import REGISTRY
from alerts.tickets.base import MemoryTicketMap, TicketDeliverer
from monitord.errors import DeliveryError, Reason
from tests.tickets.conftest import SYSTEMS, make_system, running

HELPERS = {"base", "refs", "plan", "texts", "health", "desk"}  # not ticket systems


def test_every_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(alerts.tickets.__path__)} - HELPERS
    registered = {path.rsplit(".", 2)[1] for path in REGISTRY.values()}
    assert modules == registered


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_registry_paths_import(kind: str) -> None:
    module, _, name = REGISTRY[kind].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if kind == "builtin":
        assert callable(cls.deliver)
        return
    assert cls.kind == kind
    for method in ("open", "comment", "resolve", "reopen", "find", "aclose"):
        assert callable(getattr(cls, method))


def systems() -> list[object]:
    """Every registered kind; the built-in store has no remote side and is skipped here."""
    return [
        pytest.param(kind, marks=pytest.mark.skip(reason="builtin: tested with the database"))
        if kind == "builtin"
        else kind
        for kind in sorted(REGISTRY)
    ]


def test_every_registered_system_has_an_emulator() -> None:
    assert set(REGISTRY) - {"builtin"} == set(SYSTEMS)


@pytest.mark.parametrize("kind", systems())
async def test_lifecycle_and_replay_make_one_ticket(kind: str) -> None:
    async with running(kind) as h:
        d = h.deliverer()
        for n, op in enumerate(("open", "comment", "resolve", "reopen"), start=1):
            await d.deliver(h.item(op, ident=n))
        await h.deliverer(MemoryTicketMap()).deliver(h.item("open"))  # replay after a crash
        assert await h.count() == 1
        external = h.tickets.rows[("helpdesk", h.key())]
        assert external


@pytest.mark.parametrize("kind", systems())
async def test_outage_is_retryable(kind: str) -> None:
    async with running(kind) as h:
        h.emulator.outage = 1
        with pytest.raises(DeliveryError) as err:
            await h.deliverer().deliver(h.item("open"))
        assert (err.value.permanent, err.value.reason) == (False, Reason.SERVER_ERROR)
        await h.deliverer().deliver(h.item("open"))
        assert await h.count() == 1


@pytest.mark.parametrize("kind", systems())
async def test_unreachable_is_retryable(kind: str) -> None:
    async with running(kind) as h:
        await h.emulator.stop()
        with pytest.raises(DeliveryError) as err:
            await h.deliverer().deliver(h.item("open"))
        assert (err.value.permanent, err.value.reason) == (False, Reason.NETWORK)
        assert not any(s in str(err.value) for s in h.secrets())


@pytest.mark.parametrize("kind", systems())
async def test_bad_credentials_are_permanent_and_never_echoed(kind: str) -> None:
    wrong = {
        "zammad": "token",
        "glpi": "user_token",
        "webhook": "secret",
        "rt": "token",
        "redmine": "api_key",
    }[kind]
    secret = "wrong-secret-0123456789abcdef"
    async with running(kind) as h:
        overrides: dict[str, Any] = {wrong: secret}
        system = make_system(kind, h.emulator, **overrides)
        try:
            with pytest.raises(DeliveryError) as err:
                await TicketDeliverer("helpdesk", system, MemoryTicketMap()).deliver(h.item("open"))
        finally:
            await system.aclose()
        assert err.value.permanent is True
        assert err.value.reason is Reason.AUTH
        assert secret not in str(err.value)
        assert not any(s in str(err.value) for s in h.secrets())
        assert await h.count() == 0


@pytest.mark.parametrize("kind", systems())
async def test_update_of_an_unknown_ticket_is_parked(kind: str) -> None:
    async with running(kind) as h:
        with pytest.raises(DeliveryError) as err:
            await h.deliverer().deliver(h.item("resolve"))
        assert err.value.permanent is True
        assert f"no ticket for '{h.key()}' to resolve" in str(err.value)


@pytest.mark.parametrize("kind", systems())
async def test_unknown_op_and_bad_payload_are_permanent(kind: str) -> None:
    async with running(kind) as h:
        with pytest.raises(DeliveryError, match="unknown ticket operation 'close'"):
            await h.deliverer().deliver(h.item("close"))
        bad = OutboxItem(1, "ticket", "helpdesk", "open", 7, {"subject": "x"}, 0)
        with pytest.raises(DeliveryError, match="malformed ticket payload"):
            await h.deliverer().deliver(bad)
        assert h.emulator.requests == []


@pytest.mark.parametrize("kind", systems())
async def test_timeout_is_retryable(kind: str) -> None:
    async with running(kind) as h:
        system = make_system(kind, h.emulator, timeout=0.05)
        h.emulator.delay = 0.3
        try:
            with pytest.raises(DeliveryError) as err:
                await TicketDeliverer("helpdesk", system, MemoryTicketMap()).deliver(h.item("open"))
        finally:
            await system.aclose()
            h.emulator.delay = 0.0
        assert (err.value.permanent, err.value.reason) == (False, Reason.TIMEOUT)


@pytest.mark.parametrize("kind", systems())
async def test_secrets_never_reach_logs(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(kind) as h:
        d = h.deliverer()
        for n, op in enumerate(("open", "comment", "resolve"), start=1):
            await d.deliver(h.item(op, ident=n))
        h.emulator.outage = 1
        with pytest.raises(DeliveryError):
            await d.deliver(h.item("reopen", ident=4))
        secrets = h.secrets()
    assert caplog.records  # the deliverer did log
    for record in caplog.records:
        text = repr(vars(record)) + record.getMessage()
        assert not any(s in text for s in secrets)


@pytest.mark.parametrize("kind", systems())
async def test_a_given_session_is_used_and_left_open(kind: str) -> None:
    async with running(kind) as h, aiohttp.ClientSession() as shared:
        system = make_system(kind, h.emulator, session=shared)
        await TicketDeliverer("helpdesk", system, MemoryTicketMap()).deliver(h.item("open"))
        await system.aclose()
        assert not shared.closed
        assert await h.count() == 1


@pytest.mark.parametrize("kind", systems())
async def test_a_retried_operation_writes_its_note_once(kind: str) -> None:
    async with running(kind) as h:
        d = h.deliverer()
        await d.deliver(h.item("open", ident=1))
        ticket = h.tickets.rows[("helpdesk", h.key())]
        before = len(await h.notes(ticket))
        for op, ident in (("comment", 2), ("resolve", 3)):
            await d.deliver(h.item(op, ident=ident))
            await d.deliver(h.item(op, ident=ident))  # its delivery mark was lost
        assert len(await h.notes(ticket)) == before + 2
        assert await h.count() == 1


@pytest.mark.parametrize("kind", systems())
async def test_the_probe_tells_up_from_down(kind: str) -> None:
    async with running(kind) as h:
        await h.system.probe()
        h.emulator.outage = 1
        with pytest.raises(DeliveryError) as err:
            await h.system.probe()
        assert err.value.permanent is False
        await h.emulator.stop()
        with pytest.raises(DeliveryError) as err:
            await h.system.probe()
        assert err.value.permanent is False


# P3 and P1 as each system stores them (Redmine: its default IssuePriority names).
PRIORITY_FIELD = {
    "zammad": ("2 normal", "3 high"),
    "glpi": ("3", "5"),
    "webhook": ("P3", "P1"),
    "rt": ("50", "90"),
    "redmine": ("Normal", "Immediate"),
}


@pytest.mark.parametrize("kind", systems())
async def test_a_priority_change_reaches_the_systems_own_priority_field(kind: str) -> None:
    async with running(kind) as h:
        overrides: dict[str, Any] = {}
        if kind == "redmine":
            listed = await h.real.get("/enumerations/issue_priorities.json")
            ids = {p["name"]: p["id"] for p in listed["issue_priorities"]}
            overrides["priority_ids"] = {"P3": ids["Normal"], "P1": ids["Immediate"]}
        system = make_system(kind, h.emulator, **overrides)
        d = TicketDeliverer("helpdesk", system, h.tickets)
        p3, p1 = PRIORITY_FIELD[kind]
        try:
            await d.deliver(h.item("open", ident=1, priority="P3"))
            ident = h.tickets.rows[("helpdesk", h.key())]
            assert await h.priority(ident) == p3
            # a note about something else leaves a priority the desk may have set alone
            await d.deliver(h.item("comment", ident=2, priority="P1", changes=["members"]))
            assert await h.priority(ident) == p3
            await d.deliver(h.item("comment", ident=3, priority="P1", changes=["priority"]))
            assert await h.priority(ident) == p1
            # a retry whose note went in before the crash still sets the field, once noted
            if kind != "webhook":  # whose receiver dedups a retry by its Idempotency-Key
                # item 4 is delivered twice: its note went in, a "crash", then the retry
                await d.deliver(h.item("comment", ident=4, priority="P3"))
                await d.deliver(h.item("comment", ident=4, priority="P3", changes=["priority"]))
                assert await h.priority(ident) == p3
        finally:
            await system.aclose()
        if kind != "webhook":  # the receiver dedups by Idempotency-Key; it keeps no notes
            notes = await h.notes(ident)
            assert sum("monitord op 4" in n for n in notes) == 1
