"""The correlator against the lab: a whole site down is one incident and one
notification, healed it resolves; then one server down alone is its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from monitord.api import views
from monitord.app import App
from monitord.config import load_config
from monitord.demo_config import write_fleet_config
from monitord.lab import Lab, generate_fleet
from monitord.storage.schema import incident_members, incidents, pages
from tests.conftest import free_port
from tests.test_app import wait_for


def covered(app: App, incident_id: int) -> set[str]:
    """Devices an incident covers: its members and, recursively, the incidents
    folded into it (a switch's outage inside its site's outage)."""
    out = {
        m.device_id
        for m in rows(
            app, select(incident_members).where(incident_members.c.incident_id == incident_id)
        )
    }
    for child in rows(app, select(incidents).where(incidents.c.parent_id == incident_id)):
        out |= {child.device_id} | covered(app, child.id)
    return out


def rows(app: App, query: Any) -> list[Any]:
    assert app.engine is not None
    with app.engine.connect() as conn:
        return list(conn.execute(query).all())


async def test_site_outage_then_single_server(tmp_path: Path) -> None:
    fleet = generate_fleet(devices=60, customers=3, seed=3)
    site = max(
        (s for s in fleet.sites if any(d.role == "server" for d in s.devices)),
        key=lambda s: len(s.devices),
    )
    lone = next(d for s in fleet.sites if s is not site for d in s.devices if d.role == "server")
    tcp, http = free_port(), free_port()
    path = write_fleet_config(
        fleet,
        tmp_path,
        listen=f"127.0.0.1:{free_port()}",
        tcp_port=tcp,
        http_port=http,
        interval="0.5s",
        retry_interval="0.2s",
    )
    text = (
        path.read_text()
        .replace("group_wait: 5s", "group_wait: 1s")
        .replace("group_interval: 5s", "group_interval: 1s")
        .replace("max_attempts: 3", "max_attempts: 2")
    )
    path.write_text(text)
    async with Lab(fleet, control_port=None, tcp_port=tcp, http_port=http) as lab:
        app = App(load_config(path))
        await app.start()
        try:

            def triggers() -> list[Any]:
                return rows(app, select(pages).where(pages.c.kind == "trigger"))

            fault = await lab.inject("site", site.name, "down")
            await wait_for(triggers, timeout=20)
            await asyncio.sleep(3)  # anything else that would page has had its chance
            assert len(triggers()) == 1
            top = rows(
                app,
                select(incidents).where(
                    incidents.c.state != "resolved", incidents.c.parent_id.is_(None)
                ),
            )
            assert len(top) == 1 and top[0].kind == "outage"
            assert top[0].title.startswith(f"site {site.name} down: {site.gateway.name}")
            site_devices = {f"{d.customer}/{d.name}" for d in site.devices}
            assert site_devices <= covered(app, top[0].id) | {top[0].device_id}
            assert app.engine is not None
            detail = views.get_incident(app.engine, top[0].id)
            assert detail is not None and set(detail["affected_devices"]) == site_devices

            await lab.heal(fault.id)
            await wait_for(
                lambda: rows(app, select(pages).where(pages.c.kind == "resolve")), timeout=20
            )
            await wait_for(
                lambda: (
                    not rows(
                        app,
                        select(incidents).where(
                            incidents.c.state != "resolved", incidents.c.parent_id.is_(None)
                        ),
                    )
                ),
                timeout=20,
            )
            assert len(triggers()) == 1

            await lab.inject("device", lone.name, "down")
            await wait_for(lambda: len(triggers()) == 2, timeout=20)
            await asyncio.sleep(2)
            top = rows(
                app,
                select(incidents).where(
                    incidents.c.state != "resolved", incidents.c.parent_id.is_(None)
                ),
            )
            assert len(top) == 1 and top[0].device_id == f"{lone.customer}/{lone.name}"
            assert top[0].title == f"{lone.name} down: none of its 2 checks answers"
            assert len(triggers()) == 2
        finally:
            await app.stop()
