"""The Tactical RMM adapter against its emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import ValidationError

from monitord.lab.rmm_tactical import (
    TacticalAgent,
    TacticalCheck,
    TacticalEmulator,
    TacticalTask,
    iso,
)
from monitord.sources.rmm import load_source_class
from monitord.sources.rmm.base import Category, FailureKind, RmmError
from monitord.sources.rmm.tactical import TacticalConfig, TacticalSource
from tests.conftest import LATE

NOW = 1741944605.0  # 2025-03-14 09:30:05 UTC
KEY = "tactical-test-key-9a8b7c6d5e"


def account(emu: TacticalEmulator) -> None:
    ws1 = emu.add_agent(
        TacticalAgent(
            "RkTqvYbW",
            "NFL-WS001",
            1,
            "Northfield",
            11,
            "Head Office",
            last_seen=NOW - 60,
            logged_in_username="amoreau",
            local_ips="192.0.2.21, 10.0.0.5",
            public_ip="198.51.100.52",
        )
    )
    ws2 = emu.add_agent(
        TacticalAgent(
            "Ws2aGentX",
            "NFL-WS002",
            1,
            "Northfield",
            11,
            "Head Office",
            last_seen=NOW - 600,
            last_logged_in_user="bkowalski",
            local_ips="192.0.2.22",
        )
    )
    dc = emu.add_agent(
        TacticalAgent(
            "Dc01AgEnt",
            "NFL-DC01",
            1,
            "Northfield",
            11,
            "Head Office",
            "server",
            last_seen=NOW - 3600,
            logged_in_username="NORTHFIELD\\administrator",
            local_ips="error getting local ips",
        )
    )
    cad = emu.add_agent(
        TacticalAgent(
            "CoBcAd01",
            "COB-CAD01",
            2,
            "Cobalt",
            21,
            "Studio",
            last_seen=NOW - 30,
            last_logged_in_user="mrossi",
            local_ips="192.0.2.90",
        )
    )
    lt02 = emu.add_agent(
        TacticalAgent(
            "MaInTpc1",
            "COB-LT02",
            2,
            "Cobalt",
            21,
            "Studio",
            last_seen=NOW - 7200,
            maintenance_mode=True,
        )
    )
    emu.add_agent(TacticalAgent("NeVeRsEeN", "COB-NEW", 2, "Cobalt", 21, "Studio"))
    emu.add_check(
        TacticalCheck(
            41,
            ws1,
            "diskspace",
            "Disk Space Check: Drive C: -  Warning Threshold: 25% Error Threshold: 10%",
            status="failing",
            alert_severity="error",
            more_info="Disk C: - 8.1% free",
            fail_count=3,
            last_run=NOW - 120,
        )
    )
    emu.add_check(TacticalCheck(42, ws1, "winsvc", "Service Check - Spooler", status="passing"))
    emu.add_check(
        TacticalCheck(43, dc, "ping", "Ping: gateway", status="failing", alert_severity="error")
    )
    emu.add_check(TacticalCheck(44, cad, "cpuload", "CPU Load > 90%", status="failing"))
    emu.add_check(TacticalCheck(45, cad, "memory", "Memory > 95%", status="failing"))
    emu.add_check(TacticalCheck(46, cad, "eventlog", "Event Log: System", status="failing"))
    emu.add_check(
        TacticalCheck(
            47,
            cad,
            "script",
            "Script Check - Backup.ps1",
            status="failing",
            alert_severity="warning",
            stdout="last backup 3 days ago",
        )
    )
    emu.add_check(
        TacticalCheck(48, cad, "diskspace", "Disk Space Check: Drive D:", status="pending")
    )
    # Alerts: of check 41 (its start), two failed tasks (one snoozed), one task
    # that passed again (resolved) and one of the agent in maintenance.
    emu.raise_alert(emu.checks[41], ws1, alert_time=iso(NOW - 900), severity="error")
    emu.raise_alert(emu.checks[41], ws1, alert_time=iso(NOW - 300))  # a later repeat
    defrag, cleanup, update, backup = (
        TacticalTask(7, ws1, "Defrag C:"),
        TacticalTask(8, cad, "Clean temp files"),
        TacticalTask(9, dc, "Windows Update"),
        TacticalTask(10, lt02, "Backup"),
    )
    for task in (defrag, cleanup, update, backup):
        emu.add_task(task)
    emu.raise_alert(None, ws1, task=defrag, alert_time=iso(NOW - 7200), severity="warning")
    emu.raise_alert(None, cad, task=cleanup, snoozed=True)
    emu.resolve_alert(emu.raise_alert(None, dc, task=update)["id"])
    emu.raise_alert(None, lt02, task=backup)
    emu.raise_alert(None, ws2)  # availability: the agent's status says so already


@pytest.fixture
async def emu() -> AsyncIterator[TacticalEmulator]:
    emulator = TacticalEmulator(api_key=KEY, clock=lambda: NOW)
    account(emulator)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


def source(url: str, **kwargs: object) -> TacticalSource:
    return TacticalSource(TacticalConfig.model_validate({"url": url, "api_key": KEY, **kwargs}))


async def test_inventory(emu: TacticalEmulator) -> None:
    src = source(emu.url)
    try:
        inventory = await src.inventory()
    finally:
        await src.aclose()
    assert [(c.id, c.name) for c in inventory.clients] == [("1", "Northfield"), ("2", "Cobalt")]
    assert [(s.id, s.client_id, s.name) for s in inventory.sites] == [
        ("11", "1", "Head Office"),
        ("21", "2", "Studio"),
    ]
    devices = {d.name: d for d in inventory.devices}
    assert len(devices) == 6
    ws1 = devices["NFL-WS001"]
    assert (ws1.id, ws1.client_id, ws1.site_id, ws1.kind) == ("RkTqvYbW", "1", "11", "workstation")
    assert ws1.addresses == ("192.0.2.21", "10.0.0.5") and ws1.external_ip == "198.51.100.52"
    assert ws1.last_seen == NOW - 60 and ws1.logged_on_user == "amoreau"
    assert ws1.os.startswith("Windows 11 Pro")
    assert devices["NFL-DC01"].kind == "server" and devices["NFL-DC01"].addresses == ()
    assert devices["NFL-DC01"].logged_on_user == "NORTHFIELD\\administrator"
    # the italic rule: online, nobody logged on: the last user, not a current one
    cad = devices["COB-CAD01"]
    assert cad.logged_on_user == "" and cad.extra["last_logged_on_user"] == "mrossi"
    assert devices["NFL-WS002"].logged_on_user == ""  # "-": offline, nobody
    assert devices["COB-NEW"].last_seen is None
    assert [(r.method, r.path, r.query) for r in emu.requests] == [
        ("GET", "/agents/", {"detail": "true"}),
        ("GET", "/agents/", {"detail": "false"}),
    ]
    assert {(r.api_key, r.user_agent.split("/")[0]) for r in emu.requests} == {(KEY, "monitord")}


async def test_failures(emu: TacticalEmulator) -> None:
    src = source(emu.url)
    try:
        failures = await src.failures()
    finally:
        await src.aclose()
    found = {f.key: (f.kind, f.category, f.check_type) for f in failures}
    assert found == {
        "Ws2aGentX:availability": (FailureKind.OFFLINE, Category.AVAILABILITY, "offline"),
        "Dc01AgEnt:availability": (FailureKind.OVERDUE, Category.AVAILABILITY, "overdue"),
        "NeVeRsEeN:availability": (FailureKind.OFFLINE, Category.AVAILABILITY, "offline"),
        "RkTqvYbW:check:41": (FailureKind.CHECK, Category.DISK_SPACE, "diskspace"),
        "Dc01AgEnt:check:43": (FailureKind.CHECK, Category.PING, "ping"),
        "CoBcAd01:check:44": (FailureKind.CHECK, Category.PERFORMANCE, "cpuload"),
        "CoBcAd01:check:45": (FailureKind.CHECK, Category.PERFORMANCE, "memory"),
        "CoBcAd01:check:46": (FailureKind.CHECK, Category.EVENT_LOG, "eventlog"),
        "CoBcAd01:check:47": (FailureKind.CHECK, Category.SCRIPT, "script"),
        "RkTqvYbW:task:7": (FailureKind.TASK, Category.TASK, "task"),
        "CoBcAd01:task:8": (FailureKind.TASK, Category.TASK, "task"),
    }  # the maintenance-mode agent, passing and pending checks, a resolved alert: nothing
    disk = next(f for f in failures if f.key == "RkTqvYbW:check:41")
    assert disk.description.startswith("Disk Space Check: Drive C: -  Warning")
    assert (disk.output, disk.consecutive_fails, disk.status) == ("Disk C: - 8.1% free", 3, "error")
    assert disk.started_at == NOW - 900  # its first unresolved alert fired then
    assert next(f for f in failures if f.key == "Dc01AgEnt:check:43").started_at is None
    defrag = next(f for f in failures if f.key == "RkTqvYbW:task:7")
    assert (defrag.description, defrag.started_at, defrag.status) == (
        "Defrag C:",
        NOW - 7200,
        "warning",
    )
    assert next(f for f in failures if f.key == "CoBcAd01:task:8").status == "snoozed"
    alerts = [r for r in emu.requests if r.path == "/alerts/"]
    assert [(r.method, r.api_key) for r in alerts] == [("PATCH", KEY)]
    script = next(f for f in failures if f.key == "CoBcAd01:check:47")
    assert (script.output, script.status) == ("last backup 3 days ago", "warning")
    overdue = next(f for f in failures if f.key == "Dc01AgEnt:availability")
    assert overdue.started_at == NOW - 3600
    asked = sorted(r.path for r in emu.requests if r.path.endswith("/checks/"))
    assert asked == [
        "/agents/CoBcAd01/checks/",
        "/agents/Dc01AgEnt/checks/",
        "/agents/RkTqvYbW/checks/",
    ]


async def test_clients_filter(emu: TacticalEmulator) -> None:
    src = source(emu.url, clients=["Cobalt"])
    try:
        inventory = await src.inventory()
        failures = await src.failures()
    finally:
        await src.aclose()
    assert [c.name for c in inventory.clients] == ["Cobalt"] and len(inventory.devices) == 3
    assert {f.device_id for f in failures} == {"CoBcAd01", "NeVeRsEeN"}
    assert "CoBcAd01:task:8" in {f.key for f in failures}


async def test_errors(emu: TacticalEmulator) -> None:
    bad = TacticalSource(TacticalConfig(url=emu.url, api_key="wrong-key"))
    try:
        with pytest.raises(RmmError) as caught:
            await bad.inventory()
    finally:
        await bad.aclose()
    assert (caught.value.reason, caught.value.code) == ("auth", 401)
    assert "Invalid API key" in str(caught.value) and "wrong-key" not in str(caught.value)
    src = source(emu.url, timeout=0.3)
    try:
        emu.fail_next = [502]
        with pytest.raises(RmmError) as caught:
            await src.failures()
        assert (caught.value.reason, caught.value.code) == ("http", 502)
        emu.delay = 0.3 + LATE + 1.0  # longer than the timeout and any lateness
        start = asyncio.get_running_loop().time()
        with pytest.raises(RmmError) as caught:
            await src.failures()
        assert caught.value.reason == "timeout"
        assert asyncio.get_running_loop().time() - start < 0.3 + LATE
        emu.delay = 0.0
        assert len(await src.failures()) == 11  # and it works again
    finally:
        await src.aclose()
    assert KEY not in repr(src) and KEY not in repr(src.config)


async def test_the_emulators_alert_list_filters_as_tactical_does(emu: TacticalEmulator) -> None:
    """Only a false resolved/snoozed filter filters; `top` counts the live ones."""
    headers = {"X-API-KEY": KEY}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def alerts(body: dict[str, object]) -> object:
            async with session.patch(f"{emu.url}/alerts/", json=body) as reply:
                assert reply.status == 200
                return await reply.json()

        everything = await alerts({"resolvedFilter": True})
        assert isinstance(everything, list) and len(everything) == len(emu.alerts) == 7
        live = await alerts({"resolvedFilter": False})
        assert isinstance(live, list) and len(live) == 6
        awake = await alerts({"resolvedFilter": False, "snoozedFilter": False})
        assert isinstance(awake, list) and len(awake) == 5
        cobalt = await alerts({"clientFilter": [2]})
        assert isinstance(cobalt, list) and len(cobalt) == 2
        top = await alerts({"top": 2})
        assert isinstance(top, dict) and top["alerts_count"] == 5 and len(top["alerts"]) == 2


def test_config() -> None:
    cls = load_source_class("tactical")
    assert cls is TacticalSource and cls.kind == "tactical" and cls.min_poll_interval == 60.0
    config = TacticalConfig.model_validate({**TacticalConfig.EXAMPLE, "url": "https://a.example/"})
    assert config.url == "https://a.example"
    with pytest.raises(ValidationError):
        TacticalConfig.model_validate({**TacticalConfig.EXAMPLE, "url": "a.example"})
    with pytest.raises(ValidationError):
        TacticalConfig.model_validate({**TacticalConfig.EXAMPLE, "token": "x"})
