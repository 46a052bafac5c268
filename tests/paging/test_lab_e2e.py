"""End to end against the lab fleet on loopback, in real time at a simulated 23:00: a
covered customer's server goes down → the primary's phone gets an SMS within the
check interval + 5 s → unacknowledged, the secondary is paged after the policy's
delay → the primary acknowledges through the signed link (a real HTTP POST) → the
escalation stops → the server recovers → both get a resolve message."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from monitord.api.http import serve
from monitord.app import App
from monitord.config import load_config
from monitord.demo_config import fleet_config, write_devices_csv
from monitord.lab import Lab, generate_fleet
from tests.channels.emulators import HttpEmulators, SmtpEmulator
from tests.conftest import free_port
from tests.paging.harness import at, number, paging_config
from tests.test_app import wait_for

INTERVAL = 1.0  # the check interval


class OffsetClock:
    """The system clock moved to another wall-clock time (monotonic time untouched)."""

    def __init__(self, now: float) -> None:
        self.offset = now - time.time()

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def lab_config(tmp_path: Path, fleet: Any, customer: str, emu: str, smtp: int) -> Path:
    tcp, http, listen = free_port(), free_port(), f"127.0.0.1:{free_port()}"
    doc = fleet_config(
        fleet,
        tmp_path / "state",
        listen=listen,
        tcp_port=tcp,
        http_port=http,
        interval=f"{INTERVAL}s",
        retry_interval="0.3s",
    )
    doc["daemon"] |= {
        "initial_spread": "0.5s",
        "write_interval": "0.2s",
        "public_url": f"http://{listen}",
    }
    doc["defaults"]["max_attempts"] = 2
    doc["correlation"] = {"group_wait": "0.5s", "group_interval": "0.5s"}
    for c in doc["customers"]:
        c["contract"]["after_hours_cover"] = c["name"] == customer
    paging = paging_config(tmp_path, emu, smtp, listen)
    doc["oncall"] = paging["oncall"]
    doc["paging"] = paging["paging"] | {"tick": "0.2s"}
    doc["paging"]["policies"][0]["steps"][0]["wait"] = "3s"  # primary, then the secondary
    doc["paging"]["policies"][0]["steps"][1]["wait"] = "1h"
    write_devices_csv(tmp_path / "devices.csv", fleet.devices)
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / "ports").write_text(f"{tcp} {http}")
    return path


async def test_server_down_at_2300_pages_escalates_acks_and_resolves(tmp_path: Path) -> None:
    fleet = generate_fleet(devices=24, customers=2, seed=5)
    parents = {d.parent for d in fleet.devices}
    server = next(d for d in fleet.devices if d.role == "server" and d.name not in parents)
    emu = HttpEmulators()
    base = await emu.start()
    smtp = SmtpEmulator()
    smtp.start(free_port())
    path = lab_config(tmp_path, fleet, server.customer, base, smtp.port)
    tcp, http = (int(p) for p in (tmp_path / "ports").read_text().split())
    # Wednesday 25 November 2026, 22:59:50 in Prague, in ten seconds 23:00
    clock = OffsetClock(at("2026-11-25T22:59:50+01:00"))
    emu.clock = clock.time
    loaded = load_config(path)
    try:
        async with Lab(fleet, control_port=None, tcp_port=tcp, http_port=http) as lab:
            app = App(loaded, clock=clock)
            await app.start()
            runner = await serve(app, loaded.config.daemon.listen)
            try:
                assert app.pipeline is not None
                pipeline = app.pipeline
                await wait_for(lambda: len(pipeline.states) == len(app.inventory.checks), 15)
                await asyncio.sleep(1.0)
                assert emu.sms_sent == []

                fault = await lab.inject("device", server.name, "down")
                started = time.monotonic()
                await wait_for(lambda: sms(emu, "jan"), timeout=INTERVAL + 5)
                paged_after = time.monotonic() - started
                assert paged_after <= INTERVAL + 5
                (page,) = sms(emu, "jan")
                assert server.name in page and page.startswith("P")
                assert sms(emu, "petr") == []

                # no ack: the secondary after the policy's 3 s
                await wait_for(lambda: sms(emu, "petr"), timeout=3 + 3)
                link = page.split("Ack: ", 1)[1].strip()
                async with aiohttp.ClientSession() as client, client.post(link) as resp:
                    assert resp.status == 200
                    assert "acknowledged by jan" in await resp.text()
                assert app.engine is not None
                with app.engine.connect() as conn:
                    from sqlalchemy import select

                    from monitord.storage.schema import page_escalations

                    esc = conn.execute(select(page_escalations)).one()
                assert (esc.state, esc.acked_by, esc.acked_via) == ("acked", "jan", "link")
                await asyncio.sleep(1.0)
                assert sms(emu, "boss") == []  # the escalation stopped

                await lab.heal(fault.id)
                await wait_for(lambda: resolved(emu, "jan") and resolved(emu, "petr"), 15)
                assert len(sms(emu, "jan")) == 1 and len(sms(emu, "petr")) == 1
                print(f"paged {paged_after:.2f} s after the fault (interval {INTERVAL:g} s)")
            finally:
                await runner.cleanup()
                await app.stop()
    finally:
        smtp.stop()
        await emu.stop()


def sms(emu: HttpEmulators, name: str) -> list[str]:
    return [t for to, _, t in emu.sms_sent if to == number(name) and "Ack:" in t]


def resolved(emu: HttpEmulators, name: str) -> list[str]:
    return [t for to, _, t in emu.sms_sent if to == number(name) and t.startswith("RESOLVED")]
