"""The trap receiver against real traps from net-snmp's snmptrap/snmpinform on loopback.

Senders pick their source address with `--clientaddr`, so "known device" and
"unknown source" are real UDP source addresses on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from correlator.events import Event, EventKind
from monitord.api import views
from monitord.app import App
from monitord.clock import SystemClock
from monitord.config.load import config_from_dict
from monitord.model import Status
from monitord.sources import SourceError
from monitord.sources.trap_rules import trap_fingerprint
from monitord.sources.traps import RESULTS, TrapReceiver
from tests.conftest import free_port, need

RTR, UPS, STRANGER = "127.42.0.1", "127.42.0.2", "127.42.0.99"
RTR_ENGINE = "0x8000000001020304"
UPS_ENGINE = "0x80000000010a0b0c"
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
V3 = ["-l", "authPriv", "-u", "trapuser", "-a", "SHA", "-A", "authpass123"]
V3 += ["-x", "AES", "-X", "privpass123"]
V3_SHA256 = ["-l", "authNoPriv", "-u", "shauser", "-a", "SHA-256", "-A", "authpass256"]
COMMUNITY = "s3cret-community"


def config(trap_listen: str, **daemon: Any) -> dict[str, Any]:
    return {
        **({"daemon": daemon} if daemon else {}),
        "customers": [{"name": "acme"}],
        "devices": [
            {"name": "rtr", "customer": "acme", "address": RTR, "role": "network"},
            {"name": "ups", "customer": "acme", "address": UPS, "role": "ups"},
        ],
        "traps": {
            "enabled": True,
            "listen": trap_listen,
            "communities": ["s3cret-community"],
            "users": [
                {
                    "name": "trapuser",
                    "auth_key": "authpass123",
                    "priv_protocol": "aes",
                    "priv_key": "privpass123",
                },
                {
                    "name": "shauser",
                    "auth_protocol": "sha256",
                    "auth_key": "authpass256",
                    "engine_ids": [UPS_ENGINE],
                },
            ],
            "engine_ids": {"acme/rtr": RTR_ENGINE},
            "rules": [
                {
                    "oid": "1.3.6.1.4.1.99999.0.1",
                    "category": "fan-failure",
                    "severity": "critical",
                    "message": "fan failed",
                    "instance": "1.3.6.1.4.1.99999.1.1",
                    "clear_oid": "1.3.6.1.4.1.99999.0.2",
                }
            ],
        },
    }


@dataclass
class Rig:
    receiver: TrapReceiver
    events: list[Event]
    registry: CollectorRegistry
    target: str
    env: dict[str, str]

    def count(self, result: str) -> float:
        value = self.registry.get_sample_value("monitord_traps_received_total", {"result": result})
        assert value is not None
        return value

    async def send(self, tool: str, *args: str, source: str = RTR) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            tool,
            "-m",
            "",
            f"--clientaddr={source}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        out, _ = await proc.communicate()
        return int(proc.returncode or 0), out.decode(errors="replace")

    async def trap(self, *args: str, source: str = RTR, community: str = COMMUNITY) -> None:
        rc, out = await self.send(
            "snmptrap", "-v2c", "-c", community, self.target, "", *args, source=source
        )
        assert rc == 0, out


async def until(pred: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


def snmp_env(tmp_path: Path) -> dict[str, str]:
    # Keep net-snmp away from the host's snmp.conf and persistent state.
    return {
        **os.environ,
        "MIBS": "",
        "SNMPCONFPATH": str(tmp_path),
        "SNMP_PERSISTENT_DIR": str(tmp_path / "persist"),
    }


def need_netsnmp() -> None:
    need(
        shutil.which("snmptrap") is not None and shutil.which("snmpinform") is not None,
        "net-snmp's snmptrap/snmpinform are not installed (Debian package 'snmp')",
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    need_netsnmp()
    loaded = config_from_dict(config("127.0.0.1:0"))
    events: list[Event] = []
    registry = CollectorRegistry()
    receiver = TrapReceiver(
        loaded.config.traps, lambda: loaded.inventory, events.append, registry, SystemClock()
    )
    await receiver.start()
    assert receiver.address is not None
    host, port = receiver.address
    try:
        yield Rig(receiver, events, registry, f"{host}:{port}", snmp_env(tmp_path))
    finally:
        await receiver.stop()


def fp(device: str, category: str, instance: str) -> str:
    return trap_fingerprint("acme", f"acme/{device}", category, instance)


async def test_every_result_is_pre_created_at_zero(rig: Rig) -> None:
    assert {r: rig.count(r) for r in RESULTS} == dict.fromkeys(RESULTS, 0.0)


async def test_link_down_is_a_problem_per_ifindex_and_link_up_clears_it(rig: Rig) -> None:
    await rig.trap(LINK_DOWN, f"{IF_INDEX}.5", "i", "5", "1.3.6.1.2.1.31.1.1.1.1.5", "s", "Gi0/5")
    await rig.trap(LINK_DOWN, f"{IF_INDEX}.6", "i", "6")
    await rig.trap(LINK_DOWN, f"{IF_INDEX}.5", "i", "5")  # reported again: the same problem
    await rig.trap(LINK_UP, f"{IF_INDEX}.5", "i", "5")
    await until(lambda: len(rig.events) == 4)
    down5, down6, again5, up5 = rig.events
    assert (down5.kind, down5.status, down5.device_id) == (
        EventKind.PROBLEM,
        Status.WARNING,
        "acme/rtr",
    )
    assert down5.message == "link down on ifIndex 5 (Gi0/5)" and down5.source == "trap"
    assert down5.fingerprint == again5.fingerprint == fp("rtr", "link-down", "5")
    assert down6.fingerprint == fp("rtr", "link-down", "6")
    assert (up5.kind, up5.fingerprint) == (EventKind.RECOVERY, down5.fingerprint)
    assert up5.message == "link up on ifIndex 5"
    assert rig.count("mapped") == 4


async def test_cold_start_is_info_and_v1_traps_are_understood(rig: Rig) -> None:
    await rig.trap("1.3.6.1.6.3.1.1.5.1")
    # v1 generic trap 2 (linkDown) from the UPS's address, enterprise net-snmp.
    rc, out = await rig.send(
        "snmptrap",
        "-v1",
        "-c",
        "s3cret-community",
        rig.target,
        "1.3.6.1.4.1.8072",
        UPS,
        "2",
        "0",
        "",
        f"{IF_INDEX}.1",
        "i",
        "1",
        source=UPS,
    )
    assert rc == 0, out
    await until(lambda: len(rig.events) == 2)
    cold, v1 = rig.events
    assert (cold.kind, cold.status, cold.message) == (
        EventKind.INFO,
        Status.OK,
        "device restarted (coldStart)",
    )
    assert (v1.kind, v1.fingerprint) == (EventKind.PROBLEM, fp("ups", "link-down", "1"))
    assert "s3cret" not in v1.message


async def test_a_v1_trap_relayed_by_another_host_counts_for_its_agent(rig: Rig) -> None:
    rc, out = await rig.send(
        "snmptrap",
        "-v1",
        "-c",
        COMMUNITY,
        rig.target,
        "1.3.6.1.4.1.8072",
        RTR,  # agent-addr: the device; the UDP source is a forwarder nobody configured
        "0",
        "0",
        "",
        source=STRANGER,
    )
    assert rc == 0, out
    await until(lambda: len(rig.events) == 1)
    assert rig.events[0].device_id == "acme/rtr" and rig.count("unknown_source") == 0


@pytest.mark.parametrize(
    ("source", "args"),
    [
        pytest.param(RTR, ["-e", RTR_ENGINE, *V3], id="authPriv-engine-id-per-device"),
        pytest.param(
            UPS,
            ["-e", UPS_ENGINE, *V3_SHA256],
            id="authNoPriv-engine-id-per-user",
        ),
    ],
)
async def test_v3_traps_are_accepted(rig: Rig, source: str, args: list[str]) -> None:
    rc, out = await rig.send(
        "snmptrap", "-v3", *args, rig.target, "", "1.3.6.1.2.1.33.2.0.1", source=source
    )
    assert rc == 0, out
    await until(lambda: len(rig.events) == 1)
    device = "rtr" if source == RTR else "ups"
    assert rig.events[0].fingerprint == fp(device, "ups-on-battery", "0")
    assert rig.events[0].status == Status.CRITICAL


async def test_wrong_credentials_are_ignored_and_counted(rig: Rig) -> None:
    await rig.trap(LINK_DOWN, f"{IF_INDEX}.5", "i", "5", community="public")
    bad_key = ["-e", RTR_ENGINE, *V3[:-1], "wrongpriv123"]
    rc, out = await rig.send("snmptrap", "-v3", *bad_key, rig.target, "", LINK_DOWN)
    assert rc == 0, out
    unknown_engine = ["-e", "0x80000000deadbeef", *V3]
    rc, out = await rig.send("snmptrap", "-v3", *unknown_engine, rig.target, "", LINK_DOWN)
    assert rc == 0, out
    await until(lambda: rig.count("auth_failed") == 3)
    await asyncio.sleep(0.1)
    assert rig.events == []
    assert rig.count("mapped") == 0


async def test_unknown_source_is_counted_and_logged_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord.sources.traps")
    for _ in range(3):
        await rig.trap(LINK_DOWN, f"{IF_INDEX}.1", "i", "1", source=STRANGER)
    await until(lambda: rig.count("unknown_source") == 3)
    lines = [r for r in caplog.records if getattr(r, "source", None) == STRANGER]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "no known device" in lines[0].getMessage()
    assert rig.events == []


async def test_malformed_datagram_is_counted_and_dropped(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = rig.target.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((RTR, 0))
        s.sendto(b"\x30\x05not-snmp-at-all", (host, int(port)))
        s.sendto(b"", (host, int(port)))
    await until(lambda: rig.count("malformed") == 2)
    assert any("malformed" in r.getMessage() for r in caplog.records)
    await rig.trap("1.3.6.1.6.3.1.1.5.1")  # and the receiver still works
    await until(lambda: rig.count("mapped") == 1)


async def test_vendor_rule_maps_and_clears_and_unknown_oids_become_info(rig: Rig) -> None:
    await rig.trap("1.3.6.1.4.1.99999.0.1", "1.3.6.1.4.1.99999.1.1.3", "i", "3")
    await rig.trap("1.3.6.1.4.1.99999.0.2", "1.3.6.1.4.1.99999.1.1.3", "i", "3")
    await rig.trap("1.3.6.1.4.1.12345.0.7", "1.3.6.1.4.1.12345.1", "s", "hello")
    await until(lambda: len(rig.events) == 3)
    raised, cleared, unmapped = rig.events
    assert (raised.kind, raised.status, raised.message) == (
        EventKind.PROBLEM,
        Status.CRITICAL,
        "fan failed on instance 3",
    )
    assert raised.fingerprint == cleared.fingerprint == fp("rtr", "fan-failure", "3")
    assert cleared.kind == EventKind.RECOVERY
    assert unmapped.kind == EventKind.INFO
    assert unmapped.message == "unmapped trap 1.3.6.1.4.1.12345.0.7: 1.3.6.1.4.1.12345.1=hello"
    assert (rig.count("mapped"), rig.count("unmapped")) == (2, 1)


async def test_a_request_to_the_trap_port_is_dropped_and_counted(rig: Rig) -> None:
    get = ["-v2c", "-c", COMMUNITY, "-r", "0", "-t", "0.3", rig.target, "1.3.6.1.2.1.1.1.0"]
    rc, _ = await rig.send("snmpget", *get)
    assert rc != 0  # no answer: we are no agent
    await until(lambda: rig.count("dropped") == 1)
    assert rig.events == []


async def test_informs_are_answered(rig: Rig) -> None:
    v2c = ["-v2c", "-c", "s3cret-community", "-r", "0", "-t", "3"]
    rc, out = await rig.send("snmpinform", *v2c, rig.target, "", "1.3.6.1.6.3.1.1.5.1")
    assert rc == 0, out  # snmpinform fails (Timeout) unless acknowledged
    v3 = ["-v3", *V3, "-r", "1", "-t", "3"]
    rc, out = await rig.send("snmpinform", *v3, rig.target, "", LINK_UP)
    assert rc == 0, out
    await until(lambda: len(rig.events) == 2)
    assert rig.count("mapped") == 2


async def test_a_port_in_use_fails_the_start(rig: Rig) -> None:
    loaded = config_from_dict(config(rig.target))
    second = TrapReceiver(
        loaded.config.traps,
        lambda: loaded.inventory,
        lambda e: None,
        CollectorRegistry(),
        SystemClock(),
    )
    with pytest.raises(SourceError, match=r"cannot listen for traps on '127\.0\.0\.1:"):
        await second.start()


async def test_link_down_trap_opens_an_incident_and_link_up_resolves_it(tmp_path: Path) -> None:
    need_netsnmp()
    port = free_port()
    data = config(
        f"127.0.0.1:{port}",
        state_dir=str(tmp_path),
        write_interval="0.1s",
        listen=f"127.0.0.1:{free_port()}",
    )
    app = App(config_from_dict(data))
    await app.start()
    try:
        assert app.engine is not None and app.traps is not None
        engine = app.engine
        rig = Rig(app.traps, [], app.registry, f"127.0.0.1:{port}", snmp_env(tmp_path))
        await rig.trap(LINK_DOWN, f"{IF_INDEX}.3", "i", "3")
        await until(lambda: views.list_incidents(engine, "open"), timeout=10)
        (incident,) = views.list_incidents(engine, "open")
        assert incident["device"] == "acme/rtr" and "link down on ifIndex 3" in incident["title"]
        await rig.trap(LINK_UP, f"{IF_INDEX}.3", "i", "3")
        await until(lambda: not views.list_incidents(engine, "open"), timeout=10)
        assert [i["id"] for i in views.list_incidents(engine, "resolved")] == [incident["id"]]
    finally:
        await app.stop()
    assert app.traps is not None and app.traps.address is not None
