"""External ticket systems wired into the running daemon: a real App, a loopback TCP
service that goes down and comes back, and the Zammad emulator as the helpdesk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, create_engine, select, text

from alerts.outbox import OutboxItem
from alerts.tickets import desk
from alerts.tickets.base import TicketDeliverer
from alerts.tickets.plan import ticket_key
from alerts.tickets.refs import DbTicketMap
from monitord.api import views
from monitord.app import App
from monitord.config.load import LoadedConfig, config_from_dict, load_config
from monitord.errors import DeliveryError
from monitord.storage.db import open_database
from monitord.storage.schema import incidents, outbox, ticket_refs
from tests.conftest import fast_timing, free_port
from tests.test_app import Listener, wait_for
from tests.tickets.emulators import ZammadEmulator

KEY = "monitord-incident-1"
CREATE = ("POST", "/api/v1/tickets")


def config_doc(
    timing: dict[str, Any],
    port: int,
    zammad_url: str,
    group: str = "NOC",
    *more_systems: dict[str, Any],
) -> dict[str, Any]:
    """A server with one TCP check, and Zammad (plus `more_systems`) as the helpdesk."""
    return {
        **timing,
        "customers": [{"name": "acme"}],
        "devices": [
            {
                "name": "srv",
                "customer": "acme",
                "address": "127.42.0.2",
                "role": "server",
                "checks": [{"type": "tcp", "name": "ssh", "port": port}],
            }
        ],
        "alerting": {
            "ticket_systems": [
                {
                    "name": "helpdesk",
                    "kind": "zammad",
                    "url": zammad_url,
                    "token": "env:MONITORD_TEST_ZAMMAD_TOKEN",
                    "group": group,
                    "customer": "guess:alerts@acme.example",
                    "timeout": 2,
                },
                *more_systems,
            ]
        },
    }


def config(tmp_path: Path, port: int, zammad_url: str) -> LoadedConfig:
    return config_from_dict(config_doc(fast_timing(tmp_path), port, zammad_url))


@pytest.fixture
async def zammad(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ZammadEmulator]:
    emulator = ZammadEmulator()
    monkeypatch.setenv("MONITORD_TEST_ZAMMAD_TOKEN", emulator.token)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def service() -> AsyncIterator[Listener]:
    listener = Listener("127.42.0.2", free_port())
    await listener.up()
    yield listener
    await listener.down()


def incident_key(engine: Engine, incident_id: int) -> str:
    """The dedup key the planner gives an incident's tickets."""
    with engine.connect() as conn:
        opened = conn.execute(
            select(incidents.c.opened_at).where(incidents.c.id == incident_id)
        ).scalar_one()
    return ticket_key("monitord", incident_id, opened)


def state_of(emulator: ZammadEmulator, ident: int) -> str:
    return str(emulator.tickets[ident]["state"])


async def test_outage_opens_one_ticket_and_recovery_resolves_it(
    tmp_path: Path, zammad: ZammadEmulator, service: Listener
) -> None:
    app = App(config(tmp_path, service.port, zammad.url))
    await app.start()
    try:
        assert app.engine is not None and app.pipeline is not None
        engine = app.engine
        assert set(app.ticket_systems) == {"helpdesk"}
        await wait_for(lambda: "acme/srv/ssh" in app.pipeline.states)  # type: ignore[union-attr]

        await service.down()
        await wait_for(lambda: len(zammad.tickets) == 1)
        ticket = zammad.tickets[1]
        key = incident_key(engine, 1)
        assert ticket["title"].endswith(f"[{key}]") and key in ticket["tags"]
        await wait_for(lambda: desk.list_tickets(engine))  # the built-in store too

        await service.up()
        await wait_for(lambda: state_of(zammad, 1) == "closed")
        await wait_for(lambda: desk.list_tickets(engine)[0]["status"] == "resolved")
        assert len(zammad.tickets) == 1 and zammad.calls().count(CREATE) == 1
        with engine.connect() as conn:
            refs = conn.execute(select(ticket_refs)).all()
            rows = conn.execute(
                select(outbox.c.target, outbox.c.op, outbox.c.op_key).where(
                    outbox.c.kind == "ticket"
                )
            ).all()
        assert sorted((r.system, r.dedup_key, r.external_id) for r in refs) == [
            ("builtin", key, "1"),
            ("helpdesk", key, "1"),
        ]
        assert sorted((r.target, r.op) for r in rows) == [
            ("builtin", "open"),
            ("builtin", "resolve"),
            ("helpdesk", "open"),
            ("helpdesk", "resolve"),
        ]
        assert len({r.op_key for r in rows}) == 4
    finally:
        await app.stop()
    assert app.http is None and app.ticket_systems == {}


async def test_restart_while_the_ticket_exists_opens_no_second_one(
    tmp_path: Path, zammad: ZammadEmulator, service: Listener
) -> None:
    app = App(config(tmp_path, service.port, zammad.url))
    await app.start()
    try:
        assert app.pipeline is not None
        await wait_for(lambda: "acme/srv/ssh" in app.pipeline.states)  # type: ignore[union-attr]
        await service.down()
        await wait_for(lambda: len(zammad.tickets) == 1)
    finally:
        await app.stop()
    before = len(zammad.requests)

    app2 = App(config(tmp_path, service.port, zammad.url))
    await app2.start()
    try:
        assert app2.engine is not None
        # Down still: restored as a hard problem, the incident goes on, no new ticket.
        await wait_for(lambda: len(views.list_incidents(app2.engine, "all")) == 1)  # type: ignore[arg-type]
        await service.up()
        await wait_for(lambda: state_of(zammad, 1) == "closed")
        assert len(zammad.tickets) == 1
        # The stored map knew the ticket: the resolve needed no search, created nothing.
        assert zammad.calls()[before:] == [("PUT", "/api/v1/tickets/1")]
    finally:
        await app2.stop()


def _item(op: str, ident: int) -> OutboxItem:
    payload = {
        "dedup_key": KEY,
        "subject": "[P2] srv: ssh down",
        "customer": "acme",
        "device_id": "acme/srv",
        "priority": "P2",
        "message": "connection refused",
        "ts": 1_700_000_000.0 + ident,
    }
    return OutboxItem(ident, "ticket", "helpdesk", op, 1, payload, 0)


async def test_db_ticket_map_is_durable(db_url: str) -> None:
    engine = open_database(db_url)
    refs = DbTicketMap(engine, lambda: 1234.0)
    assert await refs.get("helpdesk", KEY) is None
    await refs.put("helpdesk", KEY, "7")
    await refs.put("helpdesk", KEY, "8")  # a put replaces, never duplicates
    await refs.put("other", KEY, "9")
    engine.dispose()

    engine = open_database(db_url)  # a restart: the map is still there
    refs = DbTicketMap(engine)
    assert await refs.get("helpdesk", KEY) == "8"
    assert await refs.get("other", KEY) == "9"
    with engine.connect() as conn:
        assert conn.execute(select(ticket_refs.c.created_at)).scalars().all() == [1234.0, 1234.0]
    engine.dispose()


async def test_db_ticket_map_storage_errors_are_retryable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/refs.db"
    open_database(url).dispose()
    broken = create_engine(url)
    with broken.begin() as conn:
        conn.execute(text("DROP TABLE ticket_refs"))
    deliverer = TicketDeliverer("helpdesk", _NeverCalled(), DbTicketMap(broken))
    with pytest.raises(DeliveryError) as info:
        await deliverer.deliver(_item("open", 1))
    assert info.value.permanent is False
    assert str(info.value).startswith("helpdesk: ticket map read failed:")
    with pytest.raises(DeliveryError) as info:
        await DbTicketMap(broken).put("helpdesk", KEY, "1")
    assert info.value.permanent is False
    assert str(info.value).startswith("helpdesk: ticket map write failed:")
    broken.dispose()


class _NeverCalled:
    kind = "never"

    async def open(self, op: Any) -> str:
        raise AssertionError("must not be called")

    async def comment(self, external_id: str, op: Any) -> None:
        raise AssertionError("must not be called")

    async def resolve(self, external_id: str, op: Any) -> None:
        raise AssertionError("must not be called")

    async def reopen(self, external_id: str, op: Any) -> None:
        raise AssertionError("must not be called")

    async def find(self, dedup_key: str) -> str | None:
        raise AssertionError("must not be called")

    async def noted(self, external_id: str, marker: str) -> bool:
        raise AssertionError("must not be called")

    async def probe(self) -> None:
        raise AssertionError("must not be called")

    async def aclose(self) -> None:
        return None


async def test_a_reload_rebuilds_the_ticket_systems_and_a_retry_delivers_what_was_parked(
    tmp_path: Path, zammad: ZammadEmulator, service: Listener
) -> None:
    """The admin's fix of a refused config: Zammad refuses the group, the open is
    parked; the group is corrected, SIGHUP (a reload), `tickets retry`: one ticket."""
    path = tmp_path / "monitord.yaml"
    timing = fast_timing(tmp_path)

    def write(group: str, *more_systems: dict[str, Any]) -> None:
        doc = config_doc(timing, service.port, zammad.url, group, *more_systems)
        path.write_text(yaml.safe_dump(doc))

    def parked() -> list[Any]:
        assert app.engine is not None
        with app.engine.connect() as conn:
            return conn.execute(
                select(outbox.c.id).where(outbox.c.target == "helpdesk", outbox.c.parked)
            ).all()

    write("Nobody")
    app = App(load_config(path), config_path=path)
    await app.start()
    try:
        assert app.pipeline is not None and app.engine is not None
        await wait_for(lambda: "acme/srv/ssh" in app.pipeline.states)  # type: ignore[union-attr]
        await service.down()
        await wait_for(parked)
        assert zammad.tickets == {}
        old = app.ticket_systems["helpdesk"]

        write(
            "NOC", {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:1/h", "secret": "s"}
        )
        await app.reload()
        assert set(app.ticket_systems) == {"helpdesk", "hook"}
        assert app.ticket_systems["helpdesk"] is not old
        assert app._alerting().ticket_systems == app.loaded.config.alerting.ticket_systems
        assert app.ticket_health is not None and app.ticket_health.systems is app.ticket_systems

        desk.retry(app.engine, app.clock.time(), "jan", system="helpdesk")
        app.dispatcher.wake.set()  # type: ignore[union-attr]
        await wait_for(lambda: len(zammad.tickets) == 1)
        assert zammad.tickets[1]["group"] == "NOC" and not parked()

        # a system that cannot be built (a secret file gone since the config was read)
        # fails the reload before anything is swapped
        running, systems = app.loaded, dict(app.ticket_systems)

        def unbuildable(defs: object) -> Any:
            raise ValueError("file:/run/secrets/zammad: no such file")

        app._build_ticket_systems = unbuildable  # type: ignore[method-assign,assignment]
        write("Other")
        with pytest.raises(ValueError, match="no such file"):
            await app.reload()
        assert app.loaded is running and app.ticket_systems == systems
        del app._build_ticket_systems

        write("NOC")  # the webhook goes again; the helpdesk carries on
        await app.reload()
        assert set(app.ticket_systems) == {"helpdesk"}
        await service.up()
        await wait_for(lambda: state_of(zammad, 1) == "closed")
        # one create refused (the wrong group), one after the fix; no retry storm between
        assert len(zammad.tickets) == 1 and zammad.calls().count(CREATE) == 2
    finally:
        await app.stop()
