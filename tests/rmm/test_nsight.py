"""The N-sight DEA adapter against the emulator: the fixture account, the data-model
account, every error envelope and the ways the API misbehaves."""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from pydantic import ValidationError

from monitord.clock import FakeClock
from monitord.config import ConfigErrors, load_config
from monitord.config.rmm import RmmSourceDef, source_settings
from monitord.lab.rmm_nsight import Fault
from monitord.lab.rmm_nsight_model import NsCheck, NsClient, NsDevice, NsightAccount, NsSite
from monitord.sources.rmm import load_source_class, nsight_xml
from monitord.sources.rmm.base import (
    Category,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmError,
    RmmFailure,
    RmmInventory,
    RmmSite,
)
from monitord.sources.rmm.nsight import NsightConfig, NsightSource
from monitord.sources.rmm.transport import Pacer
from tests.conftest import free_port
from tests.rmm.emulators import KEY, fixtures_dir, nsight

CET = timezone(timedelta(hours=1))


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CET).timestamp()


def source(url: str, **kwargs: Any) -> NsightSource:
    raw = {"server": url, "api_key": KEY, "max_calls_per_minute": 0, **kwargs}
    return NsightSource(NsightConfig.model_validate(raw))


DEVICES = {
    "30100101": ("BWD-SRV01", "server", "BRIGHTWATER\\administrator"),
    "30100111": ("BWD-RECEP01", "workstation", "BRIGHTWATER\\lwalker"),
    "30100112": ("BWD-SURG01", "workstation", "BRIGHTWATER\\dpatel"),
    "30100113": ("BWD-SURG02", "workstation", "BRIGHTWATER\\hnguyen"),
    "30100114": ("BWD-XRAY01", "workstation", "BRIGHTWATER\\xray"),
    "30100121": ("BWD-HC-WS01", "workstation", "BRIGHTWATER\\kmorris"),
    "30100122": ("BWD-HC-WS02", "workstation", "BRIGHTWATER\\tevans"),
    "30200101": ("NFL-DC01", "server", "NORTHFIELD\\administrator"),
    "30200102": ("NFL-FS01", "server", "NORTHFIELD\\administrator"),
    "30200111": ("NFL-WS001", "workstation", "NORTHFIELD\\amoreau"),
    "30200112": ("NFL-WS002", "workstation", "NORTHFIELD\\bkowalski"),
    "30200113": ("NFL-WS003", "workstation", "NORTHFIELD\\cdiaz"),
    "30200114": ("NFL-LT004", "workstation", "NORTHFIELD\\dfischer"),
    "30200201": ("NFL-WH-SRV01", "server", "NORTHFIELD\\administrator"),
    "30200211": ("NFL-WH-WS01", "workstation", "NORTHFIELD\\scanner01"),
    "30200212": ("NFL-WH-WS02", "workstation", ""),  # nobody logged on: <user/>
    "30300101": ("COB-SRV01", "server", "COBALT\\administrator"),
    "30300111": ("COB-CAD01", "workstation", "COBALT\\jlindqvist"),
    "30300112": ("COB-CAD02", "workstation", "COBALT\\mrossi"),
    "30300113": ("COB-LT03", "workstation", "COBALT\\ohara"),
}

# key → (device, kind, category, check type, started (device-local, CET), status)
FAILURES = {
    "70010001": ("30100101", "check", "backup", "1002", "2025-03-13 06:04:50", "testerror"),
    "70010002": ("30100101", "check", "disk-space", "1004", "2025-03-14 07:48:03", "testerror"),
    "70010011": (
        "30100112",
        "check",
        "service",
        "1013",
        "2025-03-14 09:37:55",
        "testalertdelayed",
    ),
    "70010021": ("30100122", "check", "antivirus", "1001", "2025-03-12 07:21:09", "testerror"),
    "70020001": ("30200101", "check", "service", "1013", "2025-03-14 09:28:17", "testerror"),
    "70020011": ("30200111", "check", "event-log", "1020", "2025-03-14 08:30:02", "testerror"),
    "70020012": ("30200112", "task", "task", "1023", "2025-03-13 12:00:41", "testerror"),
    "70020021": ("30200201", "check", "performance", "1007", "2025-03-14 09:05:36", "testerror"),
    "70020022": ("30200201", "check", "disk-space", "1004", "2025-03-13 21:50:19", "testerror"),
    "70030001": ("30300101", "check", "backup", "1002", "2025-03-14 06:30:55", "testerror"),
    "70030011": ("30300111", "check", "disk-space", "1004", "2025-03-12 08:16:40", "testerror"),
    "30100113:offline": (
        "30100113",
        "offline",
        "availability",
        "offline",
        "2025-03-13 18:42:10",
        "offline",
    ),
    "30200113:offline": (
        "30200113",
        "offline",
        "availability",
        "offline",
        "2025-03-12 17:05:33",
        "offline",
    ),
    "30300113:offline": (
        "30300113",
        "offline",
        "availability",
        "offline",
        "2025-03-10 16:20:00",
        "offline",
    ),
    "30200102:overdue": (
        "30200102",
        "overdue",
        "availability",
        "overdue",
        "2025-03-14 09:53:00",
        "overdue",
    ),
}


def summary(failures: tuple[RmmFailure, ...]) -> dict[str, tuple[str, ...]]:
    return {
        f.key: (
            f.device_id,
            f.kind.value,
            f.category.value,
            f.check_type,
            datetime.fromtimestamp(f.started_at or 0, CET).strftime("%Y-%m-%d %H:%M:%S"),
            f.status,
        )
        for f in failures
    }


# the fixture account -------------------------------------------------------------


async def test_inventory_of_the_fixture_account() -> None:
    async with nsight() as emu:
        src = source(emu.url)
        try:
            inventory = await src.inventory()
        finally:
            await src.aclose()
    assert [c.name for c in inventory.clients] == [
        "Brightwater Dental Group",
        "Northfield Logistics Ltd",
        "Cobalt Architects",
    ]
    assert [(s.id, s.client_id, s.name) for s in inventory.sites] == [
        ("520011", "410001", "Main Practice"),
        ("520012", "410001", "Harbour Clinic"),
        ("520021", "410002", "Head Office"),
        ("520022", "410002", "Warehouse"),
        ("520031", "410003", "Studio"),
    ]
    head_office = inventory.sites[2]
    assert head_office.routers == ("198.51.100.49", "198.51.100.50")
    assert head_office.connection_ok is True and inventory.sites[1].routers == ()
    found = {d.id: (d.name, d.kind, d.logged_on_user) for d in inventory.devices}
    assert found == DEVICES
    by_name = {d.name: d for d in inventory.devices}
    fs01 = by_name["NFL-FS01"]
    assert (fs01.client_id, fs01.site_id, fs01.addresses) == ("410002", "520021", ("192.0.2.61",))
    assert fs01.last_seen == local("2025-03-14 09:53:00")  # the last 24x7 upload
    assert fs01.os == "Microsoft Windows Server 2019 Standard"
    assert fs01.external_ip == "198.51.100.52"
    assert fs01.description == "File and print server"
    assert fs01.extra["agent_version"] == "10.13.8" and fs01.extra["missed_247"] == "1"
    assert by_name["COB-LT03"].last_seen == local("2025-03-10 16:20:00")
    assert sum(d.kind == "server" for d in inventory.devices) == 5


async def test_inventory_calls_per_client_and_site_with_the_key_in_the_query() -> None:
    async with nsight() as emu:
        src = source(emu.url)
        try:
            await src.inventory()
        finally:
            await src.aclose()
    assert emu.services() == [
        "list_clients",
        *["list_sites"] * 3,
        *["list_servers", "list_workstations"] * 5,
    ]
    for call in emu.calls:
        assert (call.method, call.path, call.apikey, call.key_in_query) == (
            "GET",
            "/api/",
            KEY,
            True,
        )
        assert call.user_agent.startswith("Mozilla/5.0 (compatible; monitord/")
    sites = sorted(c.params["siteid"] for c in emu.calls if c.service == "list_servers")
    assert sites == ["520011", "520012", "520021", "520022", "520031"]


async def test_failures_of_the_fixture_account() -> None:
    async with nsight() as emu:
        src = source(emu.url)
        try:
            await src.inventory()  # learns each device's utc_offset
            failures = await src.failures()
        finally:
            await src.aclose()
    assert len(failures) == 15
    assert summary(failures) == FAILURES
    checks = [f for f in failures if f.kind in (FailureKind.CHECK, FailureKind.TASK)]
    assert len(checks) == 11
    assert sum(f.kind == FailureKind.OFFLINE for f in failures) == 3
    assert [f.key for f in failures if f.kind == FailureKind.OVERDUE] == ["30200102:overdue"]
    dns = next(f for f in failures if f.key == "70020001")
    assert dns.description == "Windows Service Check - DNS Server"
    assert dns.output == "DNS Server (DNS): Stopped - restart attempted, service failed to start"
    assert dns.consecutive_fails == 12
    offline = next(f for f in failures if f.key == "30200113:offline")
    assert (offline.description, offline.consecutive_fails) == ("Offline", 1)
    clients = [c.params.get("clientid") for c in emu.calls if c.service == "list_failing_checks"]
    assert clients == ["410001", "410002", "410003"]


async def test_failures_in_one_call_for_the_account() -> None:
    async with nsight() as emu:
        src = source(emu.url, failing_checks_per_client=False)
        try:
            failures = await src.failures()  # before any inventory: the envelope's offset
        finally:
            await src.aclose()
        assert summary(failures) == FAILURES
        assert emu.calls[-1].params == {}  # the whole list_failing_checks.xml
        src = source(emu.url, failing_checks_per_client=False, clients=("Cobalt Architects",))
        try:
            assert {f.key for f in await src.failures()} == {
                "70030001",
                "70030011",
                "30300113:offline",
            }
        finally:
            await src.aclose()


async def test_clients_filter_by_name_or_id() -> None:
    async with nsight() as emu:
        src = source(emu.url, clients=("410003", "Brightwater Dental Group"))
        try:
            inventory = await src.inventory()
            failures = await src.failures()
        finally:
            await src.aclose()
    assert [c.id for c in inventory.clients] == ["410001", "410003"]
    assert len(inventory.devices) == 11
    assert not any(f.device_id.startswith("302") for f in failures)
    assert len(failures) == 8


def test_every_fixture_file_parses_or_fails_as_documented() -> None:
    directory = fixtures_dir()
    files = sorted(directory.glob("*.xml"))
    assert len(files) == 26
    for path in files:
        if not path.name.startswith("error_"):
            root, offset = nsight_xml.parse(path.read_bytes(), path.name)
            assert root.tag == "result" and offset == 3600, path.name
    root, _ = nsight_xml.parse((directory / "list_failing_checks_tasks.xml").read_bytes(), "t")
    tasks = nsight_xml.failures(root, {}, 3600)
    assert [(f.key, f.kind, f.category) for f in tasks] == [
        ("70020012", FailureKind.TASK, Category.TASK)
    ]
    expected = {
        "error_missing_parameter.xml": ("api-error", 5, "Missing parameter: siteid"),
        "error_invalid_parameter.xml": ("api-error", 4, "Invalid value for parameter: siteid"),
        "error_login_failed.xml": ("auth", 3, "Login failed"),
    }
    for name, (reason, code, message) in expected.items():
        with pytest.raises(RmmError) as caught:
            nsight_xml.parse((directory / name).read_bytes(), "nsight list_servers")
        assert (caught.value.reason, caught.value.code) == (reason, code)
        assert message in str(caught.value) and str(caught.value).startswith("nsight list_servers")


@pytest.mark.parametrize(
    ("name", "reason", "code", "text"),
    [
        ("error_missing_parameter.xml", "api-error", 5, "Missing parameter: siteid"),
        ("error_invalid_parameter.xml", "api-error", 4, "Invalid value for parameter: siteid"),
        ("error_login_failed.xml", "auth", 3, "the API key was refused"),
    ],
)
async def test_error_envelopes_through_the_adapter(
    name: str, reason: str, code: int, text: str
) -> None:
    body = (fixtures_dir() / name).read_bytes()
    async with nsight() as emu:
        emu.transform = lambda _: body
        src = source(emu.url)
        try:
            with pytest.raises(RmmError) as caught:
                await src.inventory()
        finally:
            await src.aclose()
    assert (caught.value.reason, caught.value.code) == (reason, code)
    assert text in str(caught.value) and "list_clients" in str(caught.value)


async def test_a_wrong_key_is_an_auth_error() -> None:
    async with nsight() as emu:
        src = NsightSource(NsightConfig(server=emu.url, api_key="not-the-key"))
        try:
            with pytest.raises(RmmError) as caught:
                await src.failures()
        finally:
            await src.aclose()
    assert (caught.value.reason, caught.value.code) == ("auth", 3)
    assert "not-the-key" not in str(caught.value)


async def test_iso_8859_1_bytes_and_a_missing_status_attribute() -> None:
    latin = "NORTHFIELD\\müller".encode("iso-8859-1")
    assert b"\xfc" in latin
    async with nsight() as emu:
        emu.transform = lambda body: body.replace(b"NORTHFIELD\\amoreau", latin)
        emu.fault = Fault("drop_status")
        src = source(emu.url)
        try:
            inventory = await src.inventory()
        finally:
            await src.aclose()
    users = {d.name: d.logged_on_user for d in inventory.devices}
    assert users["NFL-WS001"] == "NORTHFIELD\\müller"
    assert len(inventory.devices) == 20


# the data-model account ----------------------------------------------------------

NOW = 1741944605.0  # 2025-03-14 10:30:05 CET


def records() -> tuple[RmmInventory, tuple[RmmFailure, ...]]:
    inventory = RmmInventory(
        (RmmClient("410001", "Müller & Söhne"),),
        (RmmSite("520001", "410001", "Zentrale", connection_ok=True, routers=("192.0.2.1",)),),
        (
            RmmDevice(
                "30000001",
                "410001",
                "520001",
                "MS-WS01",
                "workstation",
                ("192.0.2.10",),
                os="Windows 11 Pro",
                last_seen=NOW - 40,
                logged_on_user="MUELLER\\müller",
            ),
            RmmDevice(
                "30000002",
                "410001",
                "520001",
                "MS-SRV01",
                "server",
                ("192.0.2.5",),
                os="Windows Server 2022",
                last_seen=NOW - 20,
                description="DC <main> & files",
            ),
        ),
    )
    failures = (
        RmmFailure(
            "30000001:offline",
            "30000001",
            FailureKind.OFFLINE,
            Category.AVAILABILITY,
            "offline",
            "Offline",
            started_at=NOW - 7200,
            status="offline",
        ),
        RmmFailure(
            "70000017",
            "30000002",
            FailureKind.CHECK,
            Category.DISK_SPACE,
            "1004",
            "Disk Space Check - Drive C:",
            "C: 2% free ]]> odd",
            NOW - 3600,
            9,
            "testerror",
        ),
        RmmFailure(
            "70000018",
            "30000002",
            FailureKind.TASK,
            Category.TASK,
            "1023",
            "Automated Task - Clean Temp Files",
            "exit 1",
            NOW - 600,
            1,
            "testerror",
        ),
    )
    return inventory, failures


async def test_records_round_trip_through_the_data_model_account() -> None:
    """One client, one site: single-row lists. What the account was built from
    is what the adapter reads back."""
    inventory, failures = records()
    account = NsightAccount.from_records(inventory, failures, now=NOW, clock=lambda: NOW)
    async with nsight(account) as emu:
        src = source(emu.url)
        try:
            got = await src.inventory()
            got_failures = await src.failures()
        finally:
            await src.aclose()
    assert got.clients == inventory.clients and got.sites == inventory.sites
    assert [
        (
            d.id,
            d.client_id,
            d.site_id,
            d.name,
            d.kind,
            d.addresses,
            d.os,
            d.last_seen,
            d.logged_on_user,
            d.description,
        )
        for d in sorted(got.devices, key=lambda d: d.id)
    ] == [
        (
            d.id,
            d.client_id,
            d.site_id,
            d.name,
            d.kind,
            d.addresses,
            d.os,
            d.last_seen,
            d.logged_on_user,
            d.description,
        )
        for d in inventory.devices
    ]
    assert sorted(got_failures, key=lambda f: f.key) == sorted(failures, key=lambda f: f.key)


async def test_check_times_use_the_devices_offset_once_known() -> None:
    account = NsightAccount(clock=lambda: NOW)  # the account's zone: +01:00
    account.add(
        NsClient("1", "Far East"),
        NsSite("2", "1", "Tokyo"),
        NsDevice("3", "2", "TYO-WS1", utc_offset=9 * 3600, last_seen=NOW),
        NsCheck("4", "3", "1004", "Disk Space Check - Drive C:", started=NOW - 60, last=NOW),
    )
    async with nsight(account) as emu:
        src = source(emu.url)
        try:
            before = (await src.failures())[0].started_at
            await src.inventory()
            after = (await src.failures())[0].started_at
        finally:
            await src.aclose()
    assert after == NOW - 60  # the device's own +09:00
    assert before == NOW - 60 + 8 * 3600  # only the account's +01:00 was known


# resilience ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "code", "words"),
    [
        (Fault("delay", seconds=10), "timeout", None, "no answer within 0.5 s"),
        (Fault("waf"), "not-xml", 403, "WAF"),
        (Fault("waf", status=200), "not-xml", None, "HTML page"),
        (Fault("login_failed"), "auth", 3, "API key was refused"),
        (Fault("http_status", status=502), "http", 502, "HTTP 502"),
        (Fault("huge"), "too-large", None, "stopped reading"),
        (Fault("huge", declare_length=True), "too-large", None, "not read"),
    ],
)
async def test_misbehaving_api(
    fault: Fault, reason: str, code: int | None, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with nsight() as emu:
        emu.fault = fault
        src = source(emu.url, timeout=0.5)
        start = asyncio.get_running_loop().time()
        try:
            with pytest.raises(RmmError) as caught:
                await src.failures()
        finally:
            await src.aclose()
        elapsed = asyncio.get_running_loop().time() - start
        if fault.kind == "huge":
            for _ in range(250):
                if emu.streams[-1].done:
                    break
                await asyncio.sleep(0.02)
            stream = emu.streams[-1]
            assert stream.done and not stream.finished  # the client hung up early
            # It read its 8 MiB limit and hung up; the rest of what was sent sat in
            # loopback socket buffers (about 3 MiB here), never in the process.
            assert stream.sent < 24 * 1024 * 1024
    error = caught.value
    assert (error.reason, error.code) == (reason, code)
    assert words in str(error) and str(error).startswith("nsight list_clients")
    assert elapsed < 5.0
    assert_key_hidden(error, src)
    assert all(KEY not in r.getMessage() for r in caplog.records)


async def test_connection_refused_and_wrong_path() -> None:
    src = source(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(RmmError) as caught:
            await src.inventory()
    finally:
        await src.aclose()
    assert caught.value.reason == "network" and "cannot connect to 127.0.0.1" in str(caught.value)
    assert_key_hidden(caught.value, src)
    async with nsight() as emu:
        src = source(f"{emu.url}/elsewhere")
        try:
            with pytest.raises(RmmError) as caught:
                await src.inventory()
        finally:
            await src.aclose()
    assert (caught.value.reason, caught.value.code) == ("auth", 403)
    assert emu.calls == []  # /elsewhere/api/ is not the API
    assert_key_hidden(caught.value, src)


def assert_key_hidden(error: RmmError, src: NsightSource) -> None:
    texts = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(src),
        repr(src.config),
        str(src.config),
    ]
    for text in texts:
        assert KEY not in text


# pacing ------------------------------------------------------------------------------


async def test_calls_are_paced_with_an_injected_clock() -> None:
    clock = FakeClock()
    t0 = clock.monotonic()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async with nsight() as emu:
        src = NsightSource(
            NsightConfig(server=emu.url, api_key=KEY, max_calls_per_minute=5, concurrency=1),
            clock=clock,
            sleep=sleep,
        )
        try:
            await src.inventory()  # 14 calls: 5 at once, 5 a minute later, 4 after two
            assert slept == [60.0, 60.0] and clock.monotonic() == t0 + 120.0
            clock.advance(10.0)
            slept.clear()
            await src.failures()  # 4 calls: one fits the window now, the rest at +60 s
            assert slept == [50.0]
            assert len(emu.calls) == 18
        finally:
            await src.aclose()


async def test_the_msps_inventory_at_n_ables_pace_takes_seven_minutes() -> None:
    """40 clients with 5 sites each: 1 + 40 + 2 x 200 = 441 calls, 60 a minute, so
    the last call starts 7 minutes after the first. Whatever bounds a whole
    inventory() from outside must allow for this; a failures() poll (1 + 40
    calls) fits one minute's window unless a sync just used it."""
    clock = FakeClock()
    t0 = clock.monotonic()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    account = NsightAccount(clock=lambda: NOW)
    for c in range(40):
        account.add(NsClient(str(410000 + c), f"Customer {c}"))
        for s in range(5):
            site = str(520000 + c * 10 + s)
            account.add(NsSite(site, str(410000 + c), f"Site {s}"))
            account.add(NsDevice(site + "1", site, f"SRV{site}", kind="server", last_seen=NOW))
            for w in range(5):
                account.add(NsDevice(f"{site}{w + 2}", site, f"WS{site}-{w}", last_seen=NOW))
    async with nsight(account) as emu:
        src = NsightSource(NsightConfig(server=emu.url, api_key=KEY), clock=clock, sleep=sleep)
        try:
            inventory = await src.inventory()
            assert len(inventory.devices) == 1200 and len(emu.calls) == 441
            assert clock.monotonic() - t0 == 7 * 60.0
            clock.advance(60.0)
            await src.failures()
            assert len(emu.calls) == 482 and clock.monotonic() - t0 == 8 * 60.0
        finally:
            await src.aclose()


async def test_pacer_spaces_concurrent_callers() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pacer = Pacer(2, clock.monotonic, sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(5)))
    assert slept == [60.0, 60.0, 120.0]  # starts at 0, 0, 60, 60, 120
    unpaced = Pacer(0, clock.monotonic, sleep)
    await unpaced.wait()
    assert len(slept) == 3


# config ------------------------------------------------------------------------------


def test_config() -> None:
    cls = load_source_class("nsight")
    assert cls is NsightSource and cls.min_poll_interval == 90.0 and cls.kind == "nsight"
    example = NsightConfig.model_validate(NsightConfig.EXAMPLE)
    assert example.api_url() == "https://wwweurope1.systemmonitor.eu.com/api/"
    assert example.max_calls_per_minute == 60 and example.user_agent
    urls = {
        "www.am.remote.management": "https://www.am.remote.management/api/",
        "http://127.0.0.1:8080": "http://127.0.0.1:8080/api/",
        "https://rmm.example.net/api": "https://rmm.example.net/api/",
        "https://rmm.example.net/custom/": "https://rmm.example.net/custom/api/",
    }
    for server, url in urls.items():
        assert NsightConfig(server=server, api_key="k").api_url() == url
    for bad in ({"server": "ftp://x"}, {"server": "https://x/api/?apikey=1"}, {"api_key": " "}):
        with pytest.raises(ValidationError):
            NsightConfig.model_validate({**NsightConfig.EXAMPLE, **bad})
    with pytest.raises(ValidationError, match="extra"):
        NsightConfig.model_validate({**NsightConfig.EXAMPLE, "apikey": "x"})


def test_config_from_the_rmm_section_resolves_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NSIGHT_TEST_KEY", KEY)
    defn = RmmSourceDef.model_validate(
        {
            "name": "ns",
            "kind": "nsight",
            "server": "rmm.example.net",
            "api_key": "env:NSIGHT_TEST_KEY",
        }
    )
    cls, settings = source_settings(defn)
    assert cls is NsightSource
    assert isinstance(settings, NsightConfig)
    assert settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings) and KEY not in repr(cls(settings))


def test_a_failing_check_with_the_other_spellings() -> None:
    """`dsc247`/`consecutiveFails` (older answers) read like `dsc_247`/
    `consecutive_fails`; class 3 of an untyped check is an Automated Task; a
    check without a start has none (its last failure is not its start)."""
    body = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<result status="OK"><items>'
        b"<client><clientid>1</clientid><site><siteid>2</siteid><servers><server>"
        b"<id>3</id><failed_checks><check><checkid>4</checkid><check_type/>"
        b"<description><![CDATA[Nettoyage des fichiers]]></description><dsc247>3</dsc247>"
        b"<date>2025-03-14</date><time>10:00:00</time>"
        b"<checkstatus>testerror</checkstatus><consecutiveFails>5</consecutiveFails>"
        b"</check><check><checkid>5</checkid><check_type>1004</check_type>"
        b"<description>Disk Space Check - Drive C:</description><dsc_247>1</dsc_247>"
        b"<checkstatus>testok</checkstatus></check></failed_checks>"
        b"</server></servers></site></client></items></result>"
    )
    root, offset = nsight_xml.parse(body, "x")
    (task,) = nsight_xml.failures(root, {}, offset)  # the passing one is skipped
    assert (task.key, task.kind, task.category, task.consecutive_fails) == (
        "4",
        FailureKind.TASK,
        Category.OTHER,
        5,
    )
    assert task.started_at is None


def test_broken_hostile_and_foreign_documents() -> None:
    cases = {
        b"<?xml version='1.0'?>\n<result status='OK'><items><cli": "malformed",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b'<result status="OK">&b;</result>': "malformed",  # entities are refused
        b"<rss><channel/></rss>": "malformed",
        b"<!DOCTYPE html><html><body><p>Maintenance<br></body></html>": "not-xml",
        b"Service Unavailable": "not-xml",
        b"": "not-xml",
        b'<result status="WEIRD"/>': "malformed",
        b'<?xml version="1.0" encoding="x-no-such"?><result/>': "malformed",
        b'<?xml version="1.0" encoding="UTF-16"?><result/>': "malformed",
    }
    for body, reason in cases.items():
        with pytest.raises(RmmError) as caught:
            nsight_xml.parse(body, "nsight list_clients")
        assert caught.value.reason == reason, body
    bom = b'\xef\xbb\xbf<?xml version="1.0"?><result status="OK"><items/></result>'
    assert nsight_xml.parse(bom, "x")[0].tag == "result"
    root, offset = nsight_xml.parse(b'<result created="bad"><items/></result>', "x")
    assert offset is None and list(nsight_xml.rows(root, "client")) == []
    with pytest.raises(RmmError, match="without <clientid>"):
        nsight_xml.clients(nsight_xml.parse(b"<result><items><client/></items></result>", "x")[0])


def test_mangled_fixtures_raise_only_rmm_errors() -> None:
    """Every fixture cut short, with bytes flipped or tags spliced in: the parser
    and the record readers answer with records or an RmmError, nothing else (the
    feed would survive anything, but the interface promises RmmError only)."""
    rng = random.Random(4)
    readers: dict[str, Callable[[Element, int | None], object]] = {
        "list_clients": lambda root, _: nsight_xml.clients(root),
        "list_sites": lambda root, _: nsight_xml.sites(root, "1"),
        "list_servers": lambda root, _: nsight_xml.devices(root, "server", "1", "2"),
        "list_workstations": lambda root, _: nsight_xml.devices(root, "workstation", "1", "2"),
        "list_failing_checks": lambda root, offset: nsight_xml.failures(root, {}, offset),
    }
    splices = (b"<x/>", b"&amp;", b"]]>", b"<items>", b"none", b"-7", b"9" * 30, b"\xfc")
    outcomes: Counter[str] = Counter()
    for path in sorted(fixtures_dir().glob("*.xml")):
        data = path.read_bytes()
        read = next((r for name, r in readers.items() if path.name.startswith(name)), None)
        for _ in range(40):
            body = bytearray(data)
            at = rng.randrange(len(body))
            match rng.randrange(4):
                case 0:
                    del body[at:]
                case 1:
                    for _ in range(rng.randrange(1, 5)):
                        body[rng.randrange(len(body))] = rng.randrange(256)
                case 2:
                    del body[at : at + rng.randrange(1, 200)]
                case _:
                    body[at:at] = rng.choice(splices)
            try:
                root, offset = nsight_xml.parse(bytes(body), path.name)
                if read is not None:
                    read(root, offset)
                outcomes["read"] += 1
            except RmmError as exc:
                outcomes[exc.reason] += 1
    assert outcomes["read"] > 50 and outcomes["malformed"] > 500, outcomes


def test_bad_source_keys_are_located_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text(
        "customers:\n"
        "  - {name: acme, sites: [{name: hq}]}\n"
        "rmm:\n"
        "  sources:\n"
        "    - {name: ns, kind: nsight, server: 'ftp://x', api_key: env:MONITORD_NO_SUCH_VAR}\n"
        "    - {name: ns2, kind: nsight, server: rmm.example.net, api_key: k, apikey: k}\n"
        "    - {name: tr, kind: tactical, url: https://trmm.example, api_key: k, timeout: 0}\n"
        "    - {name: ns3, kind: nsight, server: rmm.example.net, api_key: k, poll_interval: 30s}\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    text = "\n".join(str(e) for e in info.value.errors)
    assert "rmm.sources[0].api_key" in text and "MONITORD_NO_SUCH_VAR" in text
    assert "rmm.sources[1].apikey" in text
    assert "rmm.sources[2].timeout" in text
    assert "rmm.sources[3].poll_interval" in text and "90 s" in text
