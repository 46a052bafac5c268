"""Inventory sync: RMM devices merged into monitord's inventory, linked to configured
ones, parented to their site's gateway or a synthetic uplink, conflicts reported,
gone ones retired after the grace; kept across a reload and a restart (both stores)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from monitord.app import App
from monitord.config import load_config
from monitord.rmm.feed import RmmFeed
from monitord.sources.rmm.base import Category
from monitord.storage.schema import (
    devices,
    events,
    rmm_conflicts,
    rmm_devices,
    rmm_logons,
    rmm_observations,
)
from tests.conftest import fast_timing, free_port
from tests.rmm.conftest import rmm_section
from tests.rmm.fakes import FakeSource, check, device, inventory

UPLINK = "127.43.1.1"  # the branch's public address, as its devices report it


class OffsetClock:
    """Real time, shifted on demand (the scheduler keeps running)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def write_config(tmp_path: Path, db_url: str | None = None, **rmm: Any) -> Path:
    port = free_port()
    doc = {
        **fast_timing(tmp_path, db_url),
        "customers": [
            {"name": "acme", "sites": [{"name": "hq", "gateway": "fw"}]},
            {"name": "globex"},
        ],
        "devices": [
            {"name": "fw", "customer": "acme", "site": "hq", "address": "127.43.0.1",
             "role": "network", "checks": [{"type": "tcp", "name": "ssh", "port": port}]},
            {"name": "acme-dc01", "customer": "acme", "site": "hq", "address": "127.43.0.2",
             "role": "server", "criticality": "high"},
            {"name": "SHARED-PC", "customer": "globex", "address": "127.44.0.9",
             "role": "workstation"},
        ],
        "templates": [
            {"name": "servers", "match": {"roles": ["server"]},
             "checks": [{"type": "tcp", "name": "rdp", "port": port}]},
            {"name": "workstations", "match": {"roles": ["workstation"]},
             "checks": [{"type": "tcp", "name": "smb", "port": port}]},
        ],
        "rmm": rmm_section(
            sites=[{"customer": "acme", "rmm_site": "Head Office", "site": "hq"}],
            retire_after="1h",
            **rmm,
        ),
    }  # fmt: skip
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def snapshot(*extra: Any) -> Any:
    return inventory(
        [
            device("1", "ACME-DC01", "127.43.0.12"),  # the configured acme-dc01: linked
            device("2", "ACME-FS01", "127.43.0.13", user="ACME\\Jana.Novak"),
            device("3", "ACME-WS01", "127.43.0.20", kind="workstation", user="ACME\\petr"),
            device("4", "SHARED-PC", "127.43.0.21", kind="workstation"),  # globex has one
            device(
                "5",
                "BR-WS01",
                "127.43.1.10",
                site="201",
                kind="workstation",
                external_ip="127.43.1.1",
            ),
            device(
                "6",
                "BR-WS02",
                "127.43.1.11",
                site="201",
                kind="workstation",
                external_ip="127.43.1.1",
            ),
            device("7", "ACME-WS01", "127.43.0.22", kind="workstation"),  # duplicate name
            device("8", "OTHER-SRV", "127.43.9.1", client="999"),  # unmapped client
            *extra,
        ],
        clients=(("100", "Acme Corporation"), ("999", "Unknown Ltd")),
        sites=(("200", "100", "Head Office"), ("201", "100", "Brno Branch"), ("300", "999", "X")),
    )


def fake(app: App) -> FakeSource:
    source = app.rmm.runners["fake1"].source
    assert isinstance(source, FakeSource)
    return source


def rows(app: App, query: Any) -> list[Any]:
    assert app.engine is not None
    with app.engine.connect() as conn:
        return list(conn.execute(query).all())


async def test_sync_merges_links_parents_and_reports(
    tmp_path: Path, db_url: str, fake_kind: str
) -> None:
    clock = OffsetClock()
    path = write_config(tmp_path, db_url)
    app = App(load_config(path), config_path=path, clock=clock)
    await app.start()
    try:
        fake(app).snapshot = snapshot()
        counts = await app.rmm.sync("fake1")
        assert counts == {"linked": 1, "added": 5, "conflict": 1, "unmapped": 1}
        inv = app.inventory
        # linked: the config's device stays as configured (config wins)
        assert inv.devices["acme/acme-dc01"].address == "127.43.0.2"
        assert inv.devices["acme/acme-dc01"].criticality == "high"
        assert "acme/ACME-DC01" not in inv.devices
        fs = inv.devices["acme/ACME-FS01"]
        assert (fs.role, fs.site, fs.address) == ("server", "hq", "127.43.0.13")
        assert fs.source == "rmm:fake1"
        # the configured site's gateway is the implicit parent
        assert fs.parent_id == "acme/fw"
        assert inv.devices["acme/ACME-WS01"].parent_id == "acme/fw"
        # template checks for the role, the same matching as configured devices
        checks = {c.id: c for c in inv.checks}
        assert checks["acme/ACME-FS01/rdp"].kind == "tcp"
        assert checks["acme/ACME-WS01/smb"].kind == "tcp"
        assert "acme/ACME-WS01/rdp" not in checks
        # an RMM-only site: a synthetic uplink at its public address is the parent
        uplink = inv.devices["acme/brno-branch-uplink"]
        assert (uplink.address, uplink.role, uplink.parent_id) == (UPLINK, "network", None)
        assert inv.devices["acme/BR-WS01"].parent_id == uplink.id
        assert checks["acme/brno-branch-uplink/uplink"].kind == "icmp"
        site = next(s for s in inv.customers["acme"].sites if s.name == "brno-branch")
        assert site.gateway == "brno-branch-uplink"
        assert app.correlator is not None
        assert app.correlator.topology.site_gateway_of(uplink.id) == "brno-branch"
        # same name at another customer: synced under its own, reported, not linked
        assert inv.devices["acme/SHARED-PC"].customer == "acme"
        assert inv.devices["globex/SHARED-PC"].source == "config"
        conflicts = {(r.kind, r.subject): r for r in rows(app, select(rmm_conflicts))}
        assert set(conflicts) == {
            ("other-customer", "4"),
            ("duplicate", "7"),
            ("unmapped-client", "999"),
        }
        assert "globex/SHARED-PC" in conflicts[("other-customer", "4")].detail
        assert "OTHER-SRV" not in {d.name for d in inv.devices.values()}
        # the mapping table and the stored inventory snapshot
        mapping = {r.rmm_id: r for r in rows(app, select(rmm_devices))}
        assert (mapping["1"].device_id, mapping["1"].linked) == ("acme/acme-dc01", True)
        assert (mapping["7"].state, mapping["8"].state) == ("conflict", "unmapped")
        stored = {r.id: r for r in rows(app, select(devices))}
        assert stored["acme/ACME-FS01"].source == "rmm:fake1"
        # logged-on users, normalised for the caller lookup
        users = {(r.username, r.device_id) for r in rows(app, select(rmm_logons))}
        assert users == {("jana.novak", "acme/ACME-FS01"), ("petr", "acme/ACME-WS01")}
        # metrics
        text = _metrics(app)
        assert 'monitord_rmm_sync_devices_total{change="added",source="fake1"} 5.0' in text

        # a device gone from the RMM stays until the grace is over, then is retired
        fake(app).snapshot = _without(snapshot(), "2")
        counts = await app.rmm.sync("fake1")
        assert counts.get("missing") == 1
        assert "acme/ACME-FS01" in app.inventory.devices
        clock.offset = 3601.0
        counts = await app.rmm.sync("fake1")
        assert counts.get("retired") == 1
        assert "acme/ACME-FS01" not in app.inventory.devices
        assert "acme/ACME-FS01/rdp" not in {c.id for c in app.inventory.checks}
        retired = rows(app, select(devices).where(devices.c.id == "acme/ACME-FS01"))[0]
        assert retired.retired_at is not None  # kept, not deleted: its history stays
        logon = rows(app, select(rmm_logons).where(rmm_logons.c.username == "jana.novak"))[0]
        assert logon.ended_at is not None
        # the configured device a synced one was linked to is never retired by the RMM
        assert "acme/acme-dc01" in app.inventory.devices
        # it comes back: active again
        fake(app).snapshot = snapshot()
        counts = await app.rmm.sync("fake1")
        assert counts.get("added") == 1
        assert "acme/ACME-FS01" in app.inventory.devices
    finally:
        await app.stop()


def _without(snap: Any, rmm_id: str) -> Any:
    from monitord.sources.rmm.base import RmmInventory

    return RmmInventory(snap.clients, snap.sites, tuple(d for d in snap.devices if d.id != rmm_id))


def _metrics(app: App) -> str:
    from prometheus_client import generate_latest

    return generate_latest(app.registry).decode()


async def test_synced_devices_survive_reload_and_restart(
    tmp_path: Path, db_url: str, fake_kind: str
) -> None:
    av = check("3", "9001", Category.ANTIVIRUS, "Antivirus Update Check")
    path = write_config(tmp_path, db_url, blind_spot_after="1h")
    app = App(load_config(path), config_path=path)
    await app.start()
    try:
        fake(app).snapshot = snapshot()
        await app.rmm.sync("fake1")
        assert "acme/ACME-FS01" in app.inventory.devices
        fake(app).current = (av,)
        assert await app.rmm.poll("fake1")
        (first,) = rows(app, select(rmm_observations))
        assert (first.verdict, first.device_id) == ("unverifiable", "acme/ACME-WS01")
        await app.reload()
        assert "acme/ACME-FS01" in app.inventory.devices
        assert "acme/ACME-FS01/rdp" in {c.id for c in app.inventory.checks}
        assert app.scheduler is not None and "acme/ACME-FS01/rdp" in app.scheduler.slots
    finally:
        await app.stop()
    again = App(load_config(path), config_path=path)
    await again.start()
    try:
        # before any sync of the new process: loaded from the database
        assert fake(again).inventory_calls <= 1
        inv = again.inventory
        assert inv.devices["acme/ACME-FS01"].parent_id == "acme/fw"
        assert inv.devices["acme/BR-WS01"].parent_id == "acme/brno-branch-uplink"
        assert "acme/ACME-WS01/smb" in {c.id for c in inv.checks}
        stored = {r.id: r for r in rows(again, select(devices))}
        assert stored["acme/ACME-FS01"].retired_at is None
        # the same failure after the restart: the same observation, nothing raised again
        fake(again).snapshot, fake(again).current = snapshot(), (av,)
        assert await again.rmm.poll("fake1")
        (same,) = rows(again, select(rmm_observations))
        assert (same.id, same.verdict, same.incident_id) == (
            first.id,
            first.verdict,
            first.incident_id,
        )
        raised = rows(again, select(events).where(events.c.source == "rmm:fake1"))
        assert [e.kind for e in raised] == ["problem", "info"]  # the verdict, once
    finally:
        await again.stop()


def test_feed_is_built_by_the_app(tmp_path: Path, fake_kind: str) -> None:
    app = App(load_config(write_config(tmp_path)))
    assert isinstance(app.rmm, RmmFeed)
