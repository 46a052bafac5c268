"""A real App (in this process) with its HTTP API, for the ticket tests that need the
whole path: events → incidents → notify → outbox → ticket systems.

Problems enter as events for one device (`raise_problem`/`clear_problem`), the way
an ingest source or a trap would report them: one fingerprint per problem name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from correlator.events import Event, EventKind, fingerprint
from monitord.app import App
from monitord.config.load import LoadedConfig, config_from_dict
from monitord.model import Status
from monitord.storage.schema import incidents, outbox
from tests.conftest import fast_timing

DEVICE = "acme/srv"


def config(
    tmp_path: Path,
    systems: tuple[dict[str, Any], ...] = (),
    policy: dict[str, Any] | None = None,
    correlation: dict[str, Any] | None = None,
    **daemon: Any,
) -> LoadedConfig:
    timing = fast_timing(tmp_path, **daemon)
    timing["correlation"] = {**timing["correlation"], **(correlation or {})}  # type: ignore[dict-item]
    return config_from_dict(
        {
            **timing,
            "customers": [{"name": "acme"}],
            "devices": [
                {"name": "srv", "customer": "acme", "address": "127.42.0.9", "role": "server"}
            ],
            "alerting": {
                "ticket_systems": list(systems),
                "ticket_policy": {
                    "unreachable_after": "1s",
                    "probe_interval": "0.3s",
                    **(policy or {}),
                },
            },
        }
    )


def _event(name: str, ok: bool, ts: float, message: str) -> Event:
    return Event(
        ts,
        "ingest:test",
        EventKind.RECOVERY if ok else EventKind.PROBLEM,
        fingerprint("acme", DEVICE, f"problem:{name}"),
        "acme",
        DEVICE,
        None,
        Status.OK if ok else Status.CRITICAL,
        message or (f"{name} is fine" if ok else f"{name} failed"),
    )


async def raise_problem(app: App, name: str, message: str = "") -> None:
    app.submit(_event(name, False, app.clock.time(), message))
    await app.flush()


async def clear_problem(app: App, name: str) -> None:
    app.submit(_event(name, True, app.clock.time(), ""))
    await app.flush()


def incident_of(app: App, name: str) -> Any:
    fp = fingerprint("acme", DEVICE, f"problem:{name}")
    assert app.engine is not None
    with app.engine.connect() as conn:
        return conn.execute(
            select(incidents).where(incidents.c.fingerprint == fp).order_by(incidents.c.id.desc())
        ).first()


def internal_incident(app: App, key: str) -> Any:
    fp = fingerprint(None, None, f"internal:{key}")
    assert app.engine is not None
    with app.engine.connect() as conn:
        return conn.execute(select(incidents).where(incidents.c.fingerprint == fp)).first()


def undelivered(app: App, target: str | None = None) -> list[Any]:
    assert app.engine is not None
    q = select(outbox).where(outbox.c.kind == "ticket", outbox.c.delivered_at.is_(None))
    if target:
        q = q.where(outbox.c.target == target)
    with app.engine.connect() as conn:
        return list(conn.execute(q).all())


async def notified(app: App, name: str) -> None:
    """Wait until the problem's incident is notified (open and told the desk)."""

    def done() -> bool:
        row = incident_of(app, name)
        return bool(row is not None and row.notified and row.state != "resolved")

    await wait_for(done)


async def wait_for(pred: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await pred() if asyncio.iscoroutinefunction(pred) else await asyncio.to_thread(pred)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)
