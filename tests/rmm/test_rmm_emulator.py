"""The N-sight DEA emulator itself, spoken to with a plain HTTP client: it must
serve the fixture set exactly, and its data-model account must write the same
format, or the adapter tests prove nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from defusedxml import ElementTree

from monitord.lab.rmm_nsight import Fault, ViewAccount
from monitord.lab.rmm_nsight_model import NsCheck, NsClient, NsDevice, NsightAccount, NsSite
from monitord.lab.rmm_nsight_xml import document, parse_file
from monitord.sources.rmm.base import (
    Category,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmFailure,
    RmmInventory,
    RmmSite,
)
from tests.rmm.emulators import KEY, fixtures_dir, nsight

# request parameters → fixture file, per the fixtures' README
MAP = {
    (("service", "list_clients"),): "list_clients.xml",
    **{
        (("service", "list_sites"), ("clientid", c)): f"list_sites_client_{c}.xml"
        for c in ("410001", "410002", "410003")
    },
    **{
        (("service", "list_servers"), ("siteid", s)): f"list_servers_site_{s}.xml"
        for s in ("520011", "520012", "520021", "520022", "520031")
    },
    **{
        (("service", "list_workstations"), ("siteid", s)): f"list_workstations_site_{s}.xml"
        for s in ("520011", "520012", "520021", "520022", "520031")
    },
    (("service", "list_failing_checks"),): "list_failing_checks.xml",
    (("service", "list_failing_checks"), ("check_type", "random")): "list_failing_checks.xml",
    (("service", "list_failing_checks"), ("clientid", "410002")): (
        "list_failing_checks_client_410002.xml"
    ),
    (("service", "list_failing_checks"), ("check_type", "tasks")): "list_failing_checks_tasks.xml",
    **{
        (("service", "list_checks"), ("deviceid", d)): f"list_checks_device_{d}.xml"
        for d in ("30100101", "30200111")
    },
    **{
        (
            ("service", "list_devices_at_client"),
            ("clientid", "410002"),
            ("devicetype", t),
        ): f"list_devices_at_client_410002_{t}.xml"
        for t in ("server", "workstation")
    },
    (("service", "list_device_monitoring_details"), ("deviceid", "30200101")): (
        "list_device_monitoring_details_30200101.xml"
    ),
    (("service", "list_outages"), ("deviceid", "30200102")): "list_outages_device_30200102.xml",
}


async def get(url: str, **params: str) -> tuple[int, bytes, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/", params={"apikey": KEY, **params}) as reply,
    ):
        return reply.status, await reply.read(), reply.headers.get("Content-Type", "")


async def test_serves_every_fixture_file_byte_for_byte() -> None:
    directory = fixtures_dir()
    async with nsight() as emu:
        for query, name in MAP.items():
            status, body, ctype = await get(emu.url, **dict(query))
            assert (status, ctype) == (200, "text/xml"), name
            assert body == (directory / name).read_bytes(), name
    served = set(MAP.values()) | {
        "error_missing_parameter.xml",
        "error_invalid_parameter.xml",
        "error_login_failed.xml",
    }
    assert served == {p.name for p in directory.glob("*.xml")}, "all 26 files are reachable"
    assert len(served) == 26


async def test_error_files_with_the_parameter_substituted() -> None:
    directory = fixtures_dir()
    async with nsight() as emu:
        _, body, _ = await get(emu.url, service="list_servers")
        assert body == (directory / "error_missing_parameter.xml").read_bytes()
        _, body, _ = await get(emu.url, service="list_sites")
        assert b"<errorcode>5</errorcode>" in body
        assert b"<message>Missing parameter: clientid</message>" in body
        _, body, _ = await get(emu.url, service="list_servers", siteid="abc")
        assert body == (directory / "error_invalid_parameter.xml").read_bytes()
        _, body, _ = await get(emu.url, service="list_checks", deviceid="x1")
        assert b"<message>Invalid value for parameter: deviceid</message>" in body
        _, body, _ = await get(emu.url, service="list_failing_checks", check_type="all")
        assert b"Invalid value for parameter: check_type" in body
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emu.url}/api/", params={"apikey": "wrong", "service": "x"}) as r,
        ):
            assert await r.read() == (directory / "error_login_failed.xml").read_bytes()
        async with aiohttp.ClientSession() as session, session.get(f"{emu.url}/api") as r:
            assert r.status == 403  # no trailing slash: the DEA's "wrong path"


async def test_failing_checks_filtered_by_client_and_type() -> None:
    async with nsight() as emu:
        _, body, _ = await get(emu.url, service="list_failing_checks", clientid="410003")
        root = ElementTree.fromstring(body)
        assert [c.findtext("clientid") for c in root.iter("client")] == ["410003"]
        assert {c.findtext("checkid") for c in root.iter("check")} == {"70030011", "70030001"}
        assert [w.findtext("name") for w in root.iter("workstation")] == ["COB-CAD01", "COB-LT03"]
        _, body, _ = await get(emu.url, service="list_failing_checks", check_type="checks")
        root = ElementTree.fromstring(body)
        assert len(list(root.iter("check"))) == 10
        assert "70020012" not in {c.findtext("checkid") for c in root.iter("check")}
        assert len(list(root.iter("offline"))) == 3 and len(list(root.iter("overdue"))) == 1
        _, body, _ = await get(
            emu.url, service="list_failing_checks", clientid="410001", check_type="tasks"
        )
        assert ElementTree.fromstring(body).find("items") is not None
        assert b"<items/>" in body  # Brightwater runs no failing task


async def test_request_log_records_key_service_and_user_agent() -> None:
    async with nsight() as emu:
        async with (
            aiohttp.ClientSession(headers={"User-Agent": "probe/1"}) as session,
            session.post(
                f"{emu.url}/api/", params={"apikey": KEY, "service": "list_sites", "clientid": "1"}
            ) as r,
        ):
            await r.read()
        call = emu.calls[-1]
        assert (call.method, call.service, call.params) == ("POST", "list_sites", {"clientid": "1"})
        assert (call.apikey, call.key_in_query, call.user_agent) == (KEY, True, "probe/1")


async def test_faults() -> None:
    async with nsight() as emu:
        emu.fault = Fault("waf", status=200)
        status, body, ctype = await get(emu.url, service="list_clients")
        assert (status, ctype) == (200, "text/html") and b"Cloudflare" in body
        emu.fault = Fault("waf")
        assert (await get(emu.url, service="list_clients"))[0] == 403
        emu.fault = Fault("login_failed")
        assert b"<errorcode>3</errorcode>" in (await get(emu.url, service="list_clients"))[1]
        emu.fault = Fault("drop_status", services=frozenset({"list_clients"}))
        _, body, _ = await get(emu.url, service="list_clients")
        assert b"status=" not in body.split(b"\n")[1] and b"<clientid>410001" in body
        assert b'status="OK"' in (await get(emu.url, service="list_sites", clientid="410003"))[1]
        emu.fault = Fault("http_status", status=502)
        assert (await get(emu.url, service="list_clients"))[0] == 502
        emu.fault = Fault("delay", seconds=0.3)
        start = asyncio.get_running_loop().time()
        assert (await get(emu.url, service="list_clients"))[0] == 200
        assert asyncio.get_running_loop().time() - start >= 0.29


async def test_huge_body_is_streamed_and_the_sender_notices_a_hang_up() -> None:
    async with nsight() as emu:
        emu.fault = Fault("huge", size=3 * 1024 * 1024)
        status, body, _ = await get(emu.url, service="list_clients")
        assert status == 200 and len(body) == 3 * 1024 * 1024
        assert emu.streams[-1].finished and ElementTree.fromstring(body).tag == "result"
        emu.fault = Fault("huge")  # 50 MiB: read 1 MiB, then hang up
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{emu.url}/api/", params={"apikey": KEY, "service": "x"}) as reply,
        ):
            await reply.content.readexactly(1 << 20)
            reply.close()
        for _ in range(250):
            if emu.streams[-1].done:
                break
            await asyncio.sleep(0.02)
        stream = emu.streams[-1]
        assert stream.done and not stream.finished and stream.sent < 50 * 1024 * 1024


# the data-model account ------------------------------------------------------------


def small_account(clock: float = 1741944605.0) -> NsightAccount:
    account = NsightAccount(clock=lambda: clock)
    account.add(
        NsClient("410001", "Müller & Söhne GmbH"),
        NsSite("520011", "410001", "Zentrale", primary_router="198.51.100.1"),
        NsDevice(
            "30100111",
            "520011",
            "MS-WS01",
            ip="192.0.2.10",
            os="Windows 11 Pro",
            user="MUELLER\\müller",
            last_seen=clock - 60,
        ),
        NsDevice("30100101", "520011", "MS-SRV01", kind="server", last_seen=clock - 30),
        NsCheck(
            "70010001",
            "30100101",
            "1004",
            "Disk Space Check - Drive C:",
            "3% free",
            started=clock - 3600,
            last=clock - 60,
            consecutive_fails=7,
        ),
    )
    account.set_availability("30100111", "offline", clock - 7200)
    return account


async def test_data_model_writes_the_documented_format() -> None:
    async with nsight(small_account()) as emu:
        _, body, _ = await get(emu.url, service="list_workstations", siteid="520011")
        assert body.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<result created=')
        assert b"<user><![CDATA[MUELLER\\m\xfcller]]></user>" in body  # one 0xFC byte
        assert b'created="2025-03-14T10:30:05+01:00"' in body
        device = ElementTree.fromstring(body).find("items/workstation")
        assert device is not None
        fixture = ElementTree.fromstring(
            (fixtures_dir() / "list_workstations_site_520011.xml").read_bytes()
        ).find("items/workstation")
        assert fixture is not None
        assert [e.tag for e in device] == [e.tag for e in fixture]  # the fixtures' order
        assert device.findtext("utc_time_247") == "2025-03-14 09:29:05"
        assert device.findtext("local_time_247") == "10:29:05"
        _, body, _ = await get(emu.url, service="list_servers", siteid="520011")
        server = ElementTree.fromstring(body).find("items/server")
        fixture = ElementTree.fromstring(
            (fixtures_dir() / "list_servers_site_520011.xml").read_bytes()
        ).find("items/server")
        assert server is not None and fixture is not None
        assert [e.tag for e in server] == [e.tag for e in fixture]
        _, body, _ = await get(emu.url, service="list_failing_checks", clientid="410001")
        root = ElementTree.fromstring(body)
        offline = root.find("items/client/site/workstations/workstation/offline")
        assert offline is not None and offline.findtext("starttime") == "08:30:05"
        check = root.find("items/client/site/servers/server/failed_checks/check")
        assert check is not None
        assert [e.tag for e in check] == [
            "checkid",
            "check_type",
            "description",
            "dsc_247",
            "date",
            "time",
            "startdate",
            "starttime",
            "formatted_output",
            "checkstatus",
            "consecutive_fails",
        ]
        assert (check.findtext("starttime"), check.findtext("consecutive_fails")) == (
            "09:30:05",
            "7",
        )
        _, body, _ = await get(emu.url, service="list_clients")
        client = ElementTree.fromstring(body).find("items/client")
        assert client is not None and client.findtext("name") == "Müller & Söhne GmbH"
        assert (client.findtext("server_count"), client.findtext("workstation_count")) == ("1", "1")
        _, body, _ = await get(emu.url, service="list_sites", clientid="999")
        assert b"<errorcode>4</errorcode>" in body


async def test_data_model_changes_at_runtime() -> None:
    account = small_account()
    async with nsight(account) as emu:
        account.clear("70010001")
        account.set_availability("30100111", "", None)
        _, body, _ = await get(emu.url, service="list_failing_checks")
        assert b"<items/>" in body
        account.remove_device("30100101")
        _, body, _ = await get(emu.url, service="list_servers", siteid="520011")
        assert b"<items/>" in body
        account.add(NsSite("520012", "410001", "Lager"))  # a site without agents
        _, body, _ = await get(emu.url, service="list_clients")
        assert b"<device_count>1</device_count>" in body
        _, body, _ = await get(emu.url, service="list_workstations", siteid="520012")
        assert b"<items/>" in body


def test_data_model_of_the_fixture_failing_checks_writes_the_fixture() -> None:
    """The model's failing-check rows, fed the fixture's values, are the fixture."""
    directory = fixtures_dir()
    attrs, rows = parse_file(directory / "list_failing_checks_tasks.xml")
    account = NsightAccount(clock=lambda: 1741944605.0)
    account.add(
        NsClient("410002", "Northfield Logistics Ltd"),
        NsSite("520021", "410002", "Head Office"),
        NsDevice("30200112", "520021", "NFL-WS002"),
        NsCheck(
            "70020012",
            "30200112",
            "1023",
            "Automated Task - Clean Temp Files (daily 12:00)",
            "Script exited with code 1: access denied on C:\\Windows\\Temp\\setup.log",
            started=1741863641.0,
            last=1741863641.0,
            dsc_247=3,
        ),
    )
    rendered = account.respond("list_failing_checks", {})
    assert rendered == (directory / "list_failing_checks_tasks.xml").read_bytes()
    assert document(rows, created=attrs["created"], host=attrs["host"]) == rendered


def records() -> tuple[RmmInventory, tuple[RmmFailure, ...]]:
    inventory = RmmInventory(
        (RmmClient("410001", "Acme"),),
        (RmmSite("520001", "410001", "HQ", routers=("192.0.2.1",)),),
        (
            RmmDevice(
                "30000001",
                "410001",
                "520001",
                "ACME-WS1",
                "workstation",
                ("192.0.2.10",),
                os="Windows 11",
                last_seen=1741944000.0,
                logged_on_user="ACME\\eva",
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
            started_at=1741940000.0,
        ),
    )
    return inventory, failures


async def test_view_account_renders_what_a_provider_hands_out(tmp_path: Path) -> None:
    calls = []

    def provider() -> tuple[RmmInventory, tuple[RmmFailure, ...]]:
        calls.append(1)
        return records()

    async with nsight(ViewAccount(provider, max_age=60.0)) as emu:
        _, body, _ = await get(emu.url, service="list_workstations", siteid="520001")
        assert b"<user><![CDATA[ACME\\eva]]></user>" in body
        _, body, _ = await get(emu.url, service="list_failing_checks")
        assert b"<offline>" in body and b"<id>30000001</id>" in body
        assert len(calls) == 1  # rebuilt at most every max_age


def test_data_model_answers_a_large_account() -> None:
    """1,200 devices and 300 failing checks: every document of a sync is consistent
    (its cost is measured by the benchmark, not here)."""
    account = NsightAccount(clock=lambda: 1741944605.0)
    for c in range(40):
        account.add(NsClient(str(410000 + c), f"Customer {c}"))
        for s in range(5):
            account.add(NsSite(str(520000 + c * 10 + s), str(410000 + c), f"Site {s}"))
    for d in range(1200):
        site = str(520000 + (d % 40) * 10 + d % 5)
        account.add(NsDevice(str(30000000 + d), site, f"PC{d}", last_seen=1741944000.0))
    for i in range(300):
        account.add(NsCheck(str(70000000 + i), str(30000000 + i * 4), "1004", "Disk Space Check"))
    checks = devices = 0
    for c in range(40):
        body = account.respond("list_failing_checks", {"clientid": str(410000 + c)})
        checks += len(list(ElementTree.fromstring(body).iter("check")))
        for s in range(5):
            body = account.respond("list_workstations", {"siteid": str(520000 + c * 10 + s)})
            devices += len(list(ElementTree.fromstring(body).iter("workstation")))
    assert (checks, devices) == (300, 1200)
