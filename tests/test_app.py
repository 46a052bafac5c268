"""The whole path in one process against real loopback listeners:
fault -> soft -> hard -> incident -> ticket -> page -> recovery resolves both."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, select, text

from alerts.tickets import desk
from monitord.api import views
from monitord.api.http import serve
from monitord.app import App
from monitord.config.load import LoadedConfig, config_from_dict
from monitord.errors import StorageError
from monitord.lab.servers import listening_socket
from monitord.sources import SourceError
from monitord.storage.schema import outbox, pages, results, ticket_comments, tickets
from tests.conftest import fast_timing, free_port


class Listener:
    """A TCP service on loopback that can be taken down and brought back. It accepts
    and hangs up at once, which is all a TCP check needs.

    A bare socket, not `asyncio.Server`: on Python 3.11 a connection accepted in the loop
    turn before `Server.close()` is left a half-made transport with its socket open, and
    its ResourceWarning fails whichever test happens to collect it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    async def up(self) -> None:
        sock = listening_socket(self.host, self.port, 128)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)
        self.sock = sock

    def _accept(self) -> None:
        assert self.sock is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                conn, _ = self.sock.accept()
                conn.close()

    async def down(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None


def config(tmp_path: Path, port: int, db_url: str | None = None, **daemon: Any) -> Any:
    return config_from_dict(config_doc(tmp_path, port, db_url, **daemon))


def config_doc(
    tmp_path: Path, port: int, db_url: str | None = None, **daemon: Any
) -> dict[str, Any]:
    return {
        **fast_timing(tmp_path, db_url, **daemon),
        "customers": [{"name": "acme", "sites": [{"name": "hq", "gateway": "rtr"}]}],
        "devices": [
            {
                "name": "rtr",
                "customer": "acme",
                "site": "hq",
                "address": "127.41.0.1",
                "role": "network",
                "criticality": "high",
                "checks": [{"type": "tcp", "name": "ssh", "port": port}],
            },
            {
                "name": "srv",
                "customer": "acme",
                "site": "hq",
                "address": "127.41.0.2",
                "role": "server",
                "checks": [{"type": "tcp", "name": "ssh", "port": port}],
            },
        ],
    }


@contextlib.asynccontextmanager
async def running(cfg: LoadedConfig) -> AsyncIterator[tuple[App, str]]:
    """The App started with its API served; yields (app, base URL)."""
    app = App(cfg)
    await app.start()
    listen = cfg.config.daemon.listen
    runner = await serve(app, listen)
    try:
        yield app, f"http://{listen}"
    finally:
        await runner.cleanup()
        await app.stop()


async def wait_for(pred: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = (
            await asyncio.to_thread(pred) if not asyncio.iscoroutinefunction(pred) else await pred()
        )
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[Listener, Listener, int]]:
    port = free_port()
    rtr, srv = Listener("127.41.0.1", port), Listener("127.41.0.2", port)
    await rtr.up()
    await srv.up()
    yield rtr, srv, port
    for listener in (rtr, srv):
        await listener.down()


async def test_fault_to_incident_ticket_page_and_recovery(
    tmp_path: Path, fleet: tuple[Listener, Listener, int], db_url: str
) -> None:
    _rtr, srv, port = fleet
    app = App(config(tmp_path, port, db_url if db_url.startswith("postgresql") else None))
    await app.start()
    try:
        assert app.engine is not None and app.pipeline is not None
        engine = app.engine
        await wait_for(lambda: len(app.pipeline.states) == 2)  # type: ignore[union-attr]
        assert views.problems(app.inventory, app.pipeline.states, app.pipeline.outputs) == []

        await srv.down()
        incident = await wait_for(lambda: views.list_incidents(engine, "open"))
        assert len(incident) == 1 and incident[0]["device"] == "acme/srv"
        assert incident[0]["priority"] == "P2" and "server" in incident[0]["reason"]
        hard = [
            p
            for p in views.problems(app.inventory, app.pipeline.states, app.pipeline.outputs)
            if p["state_type"] == "hard"
        ]
        assert [p["check"] for p in hard] == ["acme/srv/ssh"]
        assert "connection refused" in hard[0]["output"]
        ticket = await wait_for(lambda: desk.list_tickets(engine))
        assert ticket[0]["status"] == "open" and ticket[0]["incident"] == incident[0]["id"]
        page = await wait_for(lambda: views.list_pages(engine))
        assert page[0]["kind"] == "trigger" and "acme/srv/ssh" in page[0]["text"]

        metrics = generate_latest(app.registry).decode()
        assert (
            'monitord_check_hard_status{check="ssh",customer="acme",device="srv",'
            'kind="tcp",site="hq"} 2.0'
        ) in metrics

        await srv.up()
        await wait_for(lambda: not views.list_incidents(engine, "open"))
        await wait_for(lambda: desk.list_tickets(engine)[0]["status"] == "resolved")
        await wait_for(lambda: len(views.list_pages(engine)) == 2)
        timeline = views.get_incident(engine, incident[0]["id"])
        assert timeline is not None
        # the correlator's decisions, and paging's (routing, the page, the resolve page)
        assert [(t["actor"], t["action"]) for t in timeline["timeline"]] == [
            ("monitord", "opened"),
            ("monitord", "priority"),
            ("monitord", "notified"),
            ("paging", "route"),
            ("paging", "page"),
            ("monitord", "resolved"),
            ("paging", "resolve"),
        ]
        with engine.connect() as conn:
            assert len(conn.execute(select(tickets)).all()) == 1
            assert len(conn.execute(select(ticket_comments)).all()) == 2
            assert {r.kind for r in conn.execute(select(pages))} == {"trigger", "resolve"}
    finally:
        await app.stop()


async def test_restart_keeps_state_and_does_not_repage(
    tmp_path: Path, fleet: tuple[Listener, Listener, int]
) -> None:
    _rtr, srv, port = fleet
    await srv.down()
    app = App(config(tmp_path, port))
    await app.start()
    assert app.engine is not None
    await wait_for(lambda: views.list_pages(app.engine))  # type: ignore[arg-type]
    await app.stop()

    app2 = App(config(tmp_path, port))
    await app2.start()
    try:
        assert app2.engine is not None and app2.pipeline is not None
        # restored as a hard problem: no second incident, no second page
        assert app2.pipeline.states["acme/srv/ssh"].hard_status.name == "CRITICAL"
        await asyncio.sleep(1.0)
        assert len(views.list_incidents(app2.engine, "all")) == 1
        assert len(views.list_pages(app2.engine)) == 1
    finally:
        await app2.stop()


async def test_unreachable_database_fails_start(tmp_path: Path) -> None:
    app = App(config(tmp_path, 1, "postgresql+psycopg://nobody:pw@127.0.0.1:1/none"))
    with pytest.raises(StorageError, match="unreachable"):
        await app.start()


async def test_a_failed_start_closes_what_it_opened(tmp_path: Path, db_url: str) -> None:
    """The trap port is taken: the start fails after storage was opened; its database
    connections are closed (pg_url checks that none is left) and a later start on the
    same database works."""
    port = free_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", port))
    pg = db_url if db_url.startswith("postgresql") else None
    traps = {"traps": {"enabled": True, "listen": f"127.0.0.1:{port}", "communities": ["c"]}}
    try:
        app = App(config_from_dict(config_doc(tmp_path, 1, pg) | traps))
        with pytest.raises(SourceError, match="cannot listen for traps"):
            await app.start()
    finally:
        taken.close()
    again = App(config_from_dict(config_doc(tmp_path, 1, pg) | traps))
    await again.start()
    try:
        assert again.traps is not None
    finally:
        await again.stop()


async def test_stop_closes_connections_still_in_use_by_threads(tmp_path: Path, pg_url: str) -> None:
    """A cancelled task's to_thread call still holds a connection when stop() comes:
    stop waits for it, so dispose() closes it (pg_url fails the test if it is left
    open, as it would be for the garbage collector to find later)."""
    app = App(config(tmp_path, 1, pg_url))
    await app.start()
    engine = app.engine
    assert engine is not None

    def slow() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(0.3)"))

    work = asyncio.ensure_future(asyncio.to_thread(slow))
    await asyncio.sleep(0.05)
    await app.stop()
    await work


async def test_a_broken_check_becomes_unknown_and_others_keep_running(
    tmp_path: Path, fleet: tuple[Listener, Listener, int]
) -> None:
    _, _, port = fleet
    app = App(config(tmp_path, port))
    await app.start()
    try:
        assert app.pipeline is not None
        tcp = app.executor.types["tcp"]  # type: ignore[attr-defined]
        original = tcp.run

        async def broken(target: Any, params: Any, timeout: float) -> Any:
            if target.device_id == "acme/srv":
                raise ZeroDivisionError("plugin bug")
            return await original(target, params, timeout)

        tcp.run = broken
        await wait_for(
            lambda: app.pipeline.outputs.get("acme/srv/ssh", "").startswith(  # type: ignore[union-attr]
                "check raised ZeroDivisionError"
            )
        )
        assert app.pipeline.states["acme/srv/ssh"].status.name == "UNKNOWN"
        await wait_for(lambda: "acme/rtr/ssh" in app.pipeline.states)  # type: ignore[union-attr]
        assert app.pipeline.states["acme/rtr/ssh"].status.name == "OK"
    finally:
        await app.stop()


async def test_a_failing_planner_costs_its_own_rows_not_the_batch(
    tmp_path: Path, fleet: tuple[Listener, Listener, int], db_url: str
) -> None:
    """A planner that raises half-way (here: after writing an outbox row) loses what
    it wrote for that notification and raises an internal incident; the incident,
    the ticket and every result after it are still stored (the batch used to fail
    and be retried for ever)."""
    _rtr, srv, port = fleet
    app = App(config(tmp_path, port, db_url if db_url.startswith("postgresql") else None))
    paging_planner = app.paging.planner

    def broken(conn: Any, note: Any, now: float) -> None:
        conn.execute(
            outbox.insert().values(
                kind="page",
                target="x",
                op="trigger",
                op_key=f"broken:{note.incident}:{now}",
                incident_id=note.incident,
                payload={},
                created_at=now,
                attempts=0,
                next_attempt_at=now,
                parked=False,
            )
        )
        raise RuntimeError("a bug in the planner")

    paging_planner.plan = broken  # type: ignore[method-assign]
    await app.start()
    try:
        assert app.engine is not None
        engine = app.engine
        await srv.down()
        await wait_for(lambda: desk.list_tickets(engine))  # the ticket planner still ran

        def internal() -> list[Any]:
            return [i for i in views.list_incidents(engine, "open") if i["kind"] == "internal"]

        (problem,) = await wait_for(internal)
        assert "failed: a bug in the planner" in problem["title"]
        with engine.connect() as conn:
            assert conn.execute(select(outbox).where(outbox.c.target == "x")).all() == []
            before = conn.execute(select(func.count()).select_from(results)).scalar_one()
        await asyncio.sleep(1.0)
        with engine.connect() as conn:  # results keep being written
            assert conn.execute(select(func.count()).select_from(results)).scalar_one() > before
    finally:
        await app.stop()
