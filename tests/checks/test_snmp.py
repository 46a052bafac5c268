"""SnmpCheck against real agents on loopback (net-snmp snmpd, snmpsim), plus its pure parts.

Agents come from tests/snmp_agents.py; without snmpd/snmpsim these tests skip
(and fail under CI=true). The snmpsim recordings: switch24 has ports 17-20
down, linux-server's /var is 92 % full, the printer's toners are at 87 (falling),
54, 12 and 3 %, the UPS is on mains with 60-100 % charge.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from checks.snmp import SnmpCheck, SnmpParams
from checks.snmp.conditions import parse_condition
from checks.snmp.counters import COUNTER32, COUNTER64, CounterBook, Sample, counter_rate
from checks.snmp.oids import dotted, format_oid, parse_oid
from checks.snmp.profiles import _rebooted, _supply_left
from monitord.model import CheckResult, Status, Target
from tests.conftest import LATE, need
from tests.snmp_agents import (
    DATA,
    SNMPD,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Agent,
    silent_udp_port,
    snmp_set_int,
    snmpd,
    snmpsim,
    snmpsim_available,
)

SECRET = "s3cr3t-Pa55w0rd"
V3 = {
    "version": "v3",
    "user": V3_USER,
    "auth_protocol": "SHA",
    "auth_key": V3_AUTH,
    "priv_protocol": "AES",
    "priv_key": V3_PRIV,
}
SIM_HOST = "127.0.0.2"  # snmpsim listens on 127.0.0.1 and 127.0.0.2

# ------------------------------------------------------------------ agents


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    need(SNMPD is not None, "snmpd is not installed (apt-get install snmpd)")
    with snmpd(tmp_path_factory.mktemp("snmpd")) as running:
        yield running


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    need(snmpsim_available(), "snmpsim is not installed (pip install snmpsim==1.2.2 pysmi)")
    with snmpsim(tmp_path_factory.mktemp("snmpsim"), ["127.0.0.1", SIM_HOST]) as running:
        yield running


# A device whose counters move fast: ifInOctets.1 (Counter32) wraps 3 s after
# the simulator starts; sysUpTime starts at 1000 s, so a restart sends it back.
COUNTERS = """\
1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=100000
1.3.6.1.2.1.2.2.1.2.1|4|fast0
1.3.6.1.2.1.2.2.1.10.1|65:numeric|rate=2000000,initial={initial},wrap=1
1.3.6.1.2.1.31.1.1.1.6.1|70:numeric|rate=1000,initial=5000000000
"""
WRAP_RATE = 2_000_000
WRAP_AFTER = 3.0


@pytest.fixture
def counters_sim(tmp_path: Path) -> Iterator[Agent]:
    need(snmpsim_available(), "snmpsim is not installed (pip install snmpsim==1.2.2 pysmi)")
    data = tmp_path / "data"
    data.mkdir()
    initial = 0xFFFFFFFF - int(WRAP_RATE * WRAP_AFTER)
    (data / "counters.snmprec").write_text(COUNTERS.format(initial=initial))
    with snmpsim(tmp_path / "sim", data_dir=data, probe_community="counters") as running:
        yield running


@pytest.fixture
async def check() -> AsyncIterator[SnmpCheck]:
    instance = SnmpCheck()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


async def poll(
    check: SnmpCheck, port: int, host: str = "127.0.0.1", timeout: float = 3.0, **params: Any
) -> CheckResult:
    validated = SnmpParams.model_validate({"port": port, **params})
    result = await check.run(Target("dev-1", host), validated, timeout)
    assert "\n" not in result.message
    return result


def perf(result: CheckResult) -> dict[str, float]:
    return {p.label: p.value for p in result.perfdata}


# ------------------------------------------------------------ snmpd: v2c, v3


async def test_v2c_get_of_several_oids_in_one_request(agent: Agent, check: SnmpCheck) -> None:
    result = await poll(check, agent.port, get=["sysUpTime.0", "SNMPv2-MIB::sysLocation.0"])
    assert result.status is Status.OK, result.message
    assert re.fullmatch(
        r"SNMP OK - sysUpTime\.0 = \d+, sysLocation\.0 = Loopback lab", result.message
    )
    assert "sysUpTime.0" in perf(result)


async def test_v1_get(agent: Agent, check: SnmpCheck) -> None:
    result = await poll(check, agent.port, version="v1", get=["sysContact.0"])
    assert result.message == "SNMP OK - sysContact.0 = test@example.invalid"


@pytest.mark.parametrize(
    "security",
    [
        V3,
        {**V3, "user": "md5user", "auth_protocol": "MD5", "priv_protocol": "DES"},
        {"version": "v3", "user": "authuser", "auth_protocol": "SHA", "auth_key": V3_AUTH},
    ],
    ids=["sha-aes", "md5-des", "sha-authnopriv"],
)
async def test_v3_get(agent: Agent, check: SnmpCheck, security: dict[str, str]) -> None:
    result = await poll(check, agent.port, get=["sysLocation.0"], **security)
    assert result.message == "SNMP OK - sysLocation.0 = Loopback lab"


async def test_v3_user_below_its_security_level_is_told_access_denied(
    agent: Agent, check: SnmpCheck
) -> None:
    authnopriv = {k: v for k, v in V3.items() if not k.startswith("priv")}
    result = await poll(check, agent.port, get=["sysName.0"], **authnopriv)
    assert result.status is Status.UNKNOWN
    assert "authorizationError" in result.message and "denied access" in result.message


async def test_bulk_walk_of_table_columns(agent: Agent, check: SnmpCheck) -> None:
    walk = {
        "columns": [{"oid": "IF-MIB::ifOperStatus", "crit": "!=1"}],
        "where": {"IF-MIB::ifDescr": "==lo"},
        "row_name": "IF-MIB::ifDescr",
    }
    result = await poll(check, agent.port, walk=walk, max_repetitions=2)
    assert result.status is Status.OK, result.message
    assert "ifOperStatus lo = 1" in result.message
    assert re.search(r"1 of \d+ rows judged", result.message)


async def test_walk_over_snmpv1_uses_getnext(agent: Agent, check: SnmpCheck) -> None:
    walk = {"columns": ["IF-MIB::ifDescr", "IF-MIB::ifOperStatus"]}
    v1 = await poll(check, agent.port, version="v1", walk=walk)
    v2 = await poll(check, agent.port, walk=walk)
    assert v1.status is Status.OK, v1.message
    assert v1.message == v2.message


async def test_wrong_community_is_a_timeout_naming_both_causes(
    agent: Agent, check: SnmpCheck
) -> None:
    start = time.perf_counter()
    result = await poll(check, agent.port, timeout=1.0, community=SECRET, get=["sysName.0"])
    assert time.perf_counter() - start < 1.0 + LATE
    assert result.status is Status.CRITICAL
    assert result.message == (
        f"SNMP CRITICAL - no response from 127.0.0.1:{agent.port} after 2 tries"
        " — agent down or wrong community"
    )
    assert SECRET not in result.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"user": "nobody"}, "unknown user name: 127.0.0.1:{port} has no SNMPv3 user 'nobody'"),
        (
            {"auth_key": SECRET},
            "wrong digest from 127.0.0.1:{port}: authentication key or protocol"
            " of user 'monuser' is wrong",
        ),
        ({"auth_protocol": "MD5"}, "wrong digest from 127.0.0.1:{port}"),
    ],
    ids=["unknown-user", "wrong-auth-key", "wrong-auth-protocol"],
)
async def test_v3_rejections_say_which(
    agent: Agent, check: SnmpCheck, change: dict[str, str], expected: str
) -> None:
    result = await poll(check, agent.port, get=["sysName.0"], **{**V3, **change})
    assert result.status is Status.UNKNOWN
    assert result.message.startswith("SNMP UNKNOWN - " + expected.format(port=agent.port))
    assert SECRET not in result.message


async def test_v3_wrong_privacy_key_is_pointed_out(agent: Agent, check: SnmpCheck) -> None:
    # net-snmp drops what it cannot decrypt: a timeout, after a discovery that worked.
    result = await poll(
        check, agent.port, timeout=1.0, get=["sysName.0"], **{**V3, "priv_key": SECRET}
    )
    assert result.status is Status.CRITICAL
    assert "privacy key or protocol of user 'monuser' is likely wrong" in result.message
    assert SECRET not in result.message


@pytest.mark.parametrize(
    ("oid", "expected"),
    [
        ("IF-MIB::ifDescr.999", "unknown OID IF-MIB::ifDescr.999 (noSuchInstance)"),
        ("1.3.6.1.4.1.32473.9.9.0", "unknown OID 1.3.6.1.4.1.32473.9.9.0 (noSuchObject)"),
    ],
)
async def test_unknown_oid_is_unknown_and_named(
    agent: Agent, check: SnmpCheck, oid: str, expected: str
) -> None:
    result = await poll(check, agent.port, get=["sysName.0", oid])
    assert result.status is Status.UNKNOWN
    assert result.message == f"SNMP UNKNOWN - {expected}"


async def test_snmpv1_nosuchname_is_an_unknown_oid(agent: Agent, check: SnmpCheck) -> None:
    result = await poll(check, agent.port, version="v1", get=["sysName.0", "ifDescr.999"])
    assert result.message == "SNMP UNKNOWN - unknown OID IF-MIB::ifDescr.999 (noSuchName)"


async def test_thresholds_on_values(agent: Agent, check: SnmpCheck) -> None:
    items = [
        {"oid": "snmpInBadVersions.0", "warn": "<=0", "label": "bad_versions"},
        {"oid": "sysLocation.0", "crit": "!=Rack 7"},
    ]
    result = await poll(check, agent.port, get=items)
    assert result.status is Status.CRITICAL
    assert result.message == (
        "SNMP CRITICAL - sysLocation.0 = Loopback lab (!=Rack 7); bad_versions = 0 (<=0)"
    )
    assert result.perfdata[0].warn == "0:"


async def test_no_answer_at_all_is_critical_within_the_timeout(check: SnmpCheck) -> None:
    with silent_udp_port() as port:
        start = time.perf_counter()
        result = await poll(check, port, timeout=0.5, get=["sysName.0"])
    assert time.perf_counter() - start < 0.5 + LATE
    assert result.status is Status.CRITICAL
    assert result.message.startswith(f"SNMP CRITICAL - no response from 127.0.0.1:{port}")


async def test_requests_beyond_the_in_flight_bound_wait_and_say_so() -> None:
    check = SnmpCheck(max_in_flight=1)
    await check.start()
    try:
        with silent_udp_port() as port:
            params = SnmpParams.model_validate({"port": port, "get": ["sysName.0"]})
            hog = asyncio.create_task(check.run(Target("a", "127.0.0.1"), params, 1.0))
            await asyncio.sleep(0.05)
            assert check.client.in_flight == 1
            starved = await check.run(Target("b", "127.0.0.1"), params, 0.3)
            await hog
    finally:
        await check.close()
    assert starved.status is Status.UNKNOWN
    assert "no SNMP request slot within 0.3 s" in starved.message


async def test_concurrent_polls_share_one_client(agent: Agent) -> None:
    check = SnmpCheck(max_in_flight=4)
    await check.start()
    try:
        params = SnmpParams.model_validate({"port": agent.port, "get": ["sysName.0"]})
        results = await asyncio.gather(
            *(check.run(Target(f"d{i}", "127.0.0.1"), params, 3.0) for i in range(40))
        )
    finally:
        await check.close()
    assert {r.status for r in results} == {Status.OK}


def test_started_in_another_loop_is_unknown_not_a_silent_timeout(agent: Agent) -> None:
    check = SnmpCheck()
    params = SnmpParams.model_validate({"port": agent.port, "get": ["sysName.0"]})
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first.run_until_complete(check.start())
        result = second.run_until_complete(check.run(Target("d", "127.0.0.1"), params, 1.0))
        first.run_until_complete(check.close())
    finally:
        first.close()
        second.close()
    assert result.status is Status.UNKNOWN
    assert "another event loop" in result.message


# ---------------------------------------------------------- snmpsim profiles


async def test_interfaces_profile_names_the_ports_that_are_down(
    sim: Agent, check: SnmpCheck
) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="switch24", profile="interfaces")
    assert result.status is Status.CRITICAL
    assert result.message == (
        "SNMP CRITICAL - 4 of 24 interfaces down: GigabitEthernet0/17, GigabitEthernet0/18,"
        " GigabitEthernet0/19, GigabitEthernet0/20"
    )
    assert perf(result)["up"] == 20 and perf(result)["down"] == 4


async def test_interfaces_profile_include_exclude(sim: Agent, check: SnmpCheck) -> None:
    ports = {"port": sim.port, "community": "switch24", "profile": "interfaces"}
    skip_down = await poll(
        check, host=SIM_HOST, exclude=["GigabitEthernet0/1[7-9]", "*0/20"], **ports
    )
    assert skip_down.message == "SNMP OK - 20 interfaces, 20 up"
    only = await poll(check, host=SIM_HOST, include=["*0/18"], **ports)
    assert only.message == "SNMP CRITICAL - 1 of 1 interfaces down: GigabitEthernet0/18"
    none = await poll(check, host=SIM_HOST, include=["eth*"], **ports)
    assert none.status is Status.UNKNOWN and "no interface matches" in none.message


async def test_interfaces_profile_error_rates_from_the_second_poll(
    sim: Agent, check: SnmpCheck
) -> None:
    kw = {"port": sim.port, "community": "linux-server", "profile": "interfaces"}
    first = await poll(check, host=SIM_HOST, **kw)
    assert "errors" not in perf(first)  # baseline only
    second = await poll(check, host=SIM_HOST, **kw)
    assert second.message == "SNMP OK - 2 interfaces, 2 up"
    assert perf(second)["errors"] == 0


async def test_storage_profile_finds_var_at_92_percent(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="linux-server", profile="storage")
    assert result.status is Status.CRITICAL
    assert re.fullmatch(
        r"SNMP CRITICAL - /var 92\.\d % used \(9\.\d GiB of 10\.0 GiB\)", result.message
    )
    levels = perf(result)
    assert set(levels) == {
        "Physical memory",
        "Virtual memory",
        "Swap space",
        "/",
        "/var",
        "/home",
        "/boot/efi",
    }  # buffers/cache ("other") are skipped
    assert levels["/"] == pytest.approx(71.0, abs=0.1)


async def test_storage_profile_thresholds_override(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(
        check,
        sim.port,
        SIM_HOST,
        community="linux-server",
        profile="storage",
        thresholds={"disk": {"warn": ">90", "crit": ">95"}},
        exclude=["/boot*"],
    )
    assert result.status is Status.WARNING
    assert result.message.startswith("SNMP WARNING - /var 92.")
    var = next(p for p in result.perfdata if p.label == "/var")
    assert (var.uom, var.warn, var.crit, var.min, var.max) == ("%", "~:90", "~:95", 0, 100)


async def test_cpu_profile(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="linux-server", profile="cpu")
    assert result.status is Status.OK, result.message
    assert re.fullmatch(r"SNMP OK - CPU load \d+ % average of 2 CPUs \(max \d+ %\)", result.message)
    crit = await poll(
        check,
        sim.port,
        SIM_HOST,
        community="linux-server",
        profile="cpu",
        thresholds={"load": {"crit": ">=0"}},
    )
    assert crit.status is Status.CRITICAL


async def test_ups_profile_values(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="ups", profile="ups")
    assert result.status is Status.OK, result.message
    assert re.fullmatch(
        r"SNMP OK - on mains, charge \d+ %, \d+ min runtime, load \d+ %, battery \d+ °C",
        result.message,
    )
    values = perf(result)
    assert 60 <= values["charge"] <= 100 and 30 <= values["runtime"] <= 60
    assert 24 <= values["load"] <= 30 and 25 <= values["temperature"] <= 29


async def test_ups_profile_low_charge_threshold(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(
        check,
        sim.port,
        SIM_HOST,
        community="ups",
        profile="ups",
        thresholds={"charge": {"warn": "<101"}, "runtime": {"crit": "<=60"}},
    )
    assert result.status is Status.CRITICAL
    assert re.fullmatch(r"SNMP CRITICAL - \d+ min runtime; charge \d+ %", result.message)


async def test_ups_profile_on_battery_and_battery_low(tmp_path: Path, check: SnmpCheck) -> None:
    # SETs change the simulator process-wide, so this UPS gets its own simulator.
    need(snmpsim_available(), "snmpsim is not installed (pip install snmpsim==1.2.2 pysmi)")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ups.snmprec").write_text((DATA / "ups.snmprec").read_text())
    with snmpsim(tmp_path / "sim", data_dir=data) as ups:
        snmp_set_int("127.0.0.1", ups.port, "ups", "1.3.6.1.2.1.33.1.4.1.0", 5)  # battery
        snmp_set_int("127.0.0.1", ups.port, "ups", "1.3.6.1.2.1.33.1.2.2.0", 300)  # for 5 min
        on_battery = await poll(check, ups.port, community="ups", profile="ups")
        snmp_set_int("127.0.0.1", ups.port, "ups", "1.3.6.1.2.1.33.1.2.1.0", 3)  # low
        snmp_set_int("127.0.0.1", ups.port, "ups", "1.3.6.1.2.1.33.1.6.1.0", 2, "Gauge32")
        low = await poll(check, ups.port, community="ups", profile="ups")
    assert on_battery.status is Status.WARNING
    assert on_battery.message == "SNMP WARNING - on battery for 5 min"
    assert low.status is Status.CRITICAL
    assert low.message == ("SNMP CRITICAL - battery low; on battery for 5 min; 2 alarms present")


async def test_generic_walk_judges_table_rows(sim: Agent, check: SnmpCheck) -> None:
    walk = {
        "columns": [{"oid": "IF-MIB::ifOperStatus", "crit": "!=1", "label": "oper"}],
        "where": {"IF-MIB::ifAdminStatus": "==1"},
        "row_name": "IF-MIB::ifName",
    }
    result = await poll(check, sim.port, SIM_HOST, community="switch24", walk=walk)
    assert result.status is Status.CRITICAL
    assert result.message == (
        "SNMP CRITICAL - oper Gi0/17 = 2 (!=1); oper Gi0/18 = 2 (!=1); oper Gi0/19 = 2 (!=1);"
        " oper Gi0/20 = 2 (!=1)"
    )


async def test_generic_walk_rates_per_row(sim: Agent, check: SnmpCheck) -> None:
    walk = {
        "columns": [{"oid": "IF-MIB::ifInOctets", "rate": True, "warn": ">1050", "label": "in"}],
        "row_name": "IF-MIB::ifDescr",
    }
    kw = {"community": "linux-server", "walk": walk}
    first = await poll(check, sim.port, SIM_HOST, **kw)
    assert first.message == (
        "SNMP OK - in lo: rate baseline taken, in eth0: rate baseline taken, 2 of 2 rows judged"
    )
    await asyncio.sleep(1.0)
    second = await poll(check, sim.port, SIM_HOST, **kw)
    rates = perf(second)
    assert rates["in lo"] == pytest.approx(1037, rel=0.1)
    assert rates["in eth0"] == pytest.approx(1074, rel=0.1)
    assert second.status is Status.WARNING
    assert re.fullmatch(r"SNMP WARNING - in eth0 = 1\d{3}/s \(>1050\)", second.message)


async def test_printer_profile_toner_levels(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="printer", profile="printer")
    assert result.status is Status.CRITICAL
    assert result.message == (
        "SNMP CRITICAL - Yellow Toner Cartridge 3 % left; Magenta Toner Cartridge 12 % left"
    )
    levels = perf(result)
    assert levels["Cyan Toner Cartridge"] == 54 and levels["Imaging Drum"] == 71
    assert 80 <= levels["Black Toner Cartridge"] <= 87


async def test_printer_profile_over_v3_with_context(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(
        check, sim.port, SIM_HOST, profile="printer", context="printer", include=["Cyan*"], **V3
    )
    assert result.message == "SNMP OK - 1 supply, lowest Cyan Toner Cartridge 54 %"


async def test_uptime_profile(sim: Agent, check: SnmpCheck) -> None:
    result = await poll(check, sim.port, SIM_HOST, community="ups", profile="uptime")
    assert result.message == "SNMP OK - up 30 d 0 h"
    assert perf(result)["uptime"] >= 2_592_000


# ------------------------------------------------- counters: rates, wrap, restart


def rate_params(port: int) -> dict[str, Any]:
    return {
        "port": port,
        "community": "counters",
        "get": [
            {"oid": "IF-MIB::ifInOctets.1", "label": "raw"},
            {"oid": "IF-MIB::ifInOctets.1", "label": "in", "rate": True},
            {"oid": "IF-MIB::ifHCInOctets.1", "label": "hc_in", "rate": True, "warn": ">5000"},
        ],
    }


async def test_counter32_rate_across_a_wrap(counters_sim: Agent, check: SnmpCheck) -> None:
    first = await poll(check, **rate_params(counters_sim.port))
    assert first.status is Status.OK
    assert "in: rate baseline taken" in first.message
    raw = perf(first)["raw"]
    assert raw >= 0xFFFFFFFF - WRAP_RATE * WRAP_AFTER, "first poll came after the wrap"
    await asyncio.sleep((0xFFFFFFFF - raw) / WRAP_RATE + 0.3)  # just past the wrap
    second = await poll(check, **rate_params(counters_sim.port))
    values = perf(second)
    assert values["raw"] < raw  # the counter wrapped between the polls
    assert values["in"] == pytest.approx(WRAP_RATE, rel=0.1)
    assert values["hc_in"] == pytest.approx(1000, rel=0.1)  # Counter64
    assert second.status is Status.OK, second.message


async def test_agent_restart_resets_the_baseline(counters_sim: Agent, check: SnmpCheck) -> None:
    await asyncio.sleep(1.5)  # sysUpTime well above where a restarted agent starts
    await poll(check, **rate_params(counters_sim.port))
    await asyncio.to_thread(counters_sim.restart)
    after = await poll(check, **rate_params(counters_sim.port))
    assert after.status is Status.OK, after.message
    assert "in: rate baseline taken" in after.message
    assert "hc_in: rate baseline taken" in after.message
    await asyncio.sleep(0.5)  # the simulator's counters move in whole units
    third = await poll(check, **rate_params(counters_sim.port))
    assert perf(third)["hc_in"] == pytest.approx(1000, rel=0.2)


async def test_uptime_profile_reports_a_reboot(counters_sim: Agent, check: SnmpCheck) -> None:
    kw = {"port": counters_sim.port, "community": "counters", "profile": "uptime"}
    await asyncio.sleep(1.5)
    before = await poll(check, **kw)
    assert before.status is Status.OK
    await asyncio.to_thread(counters_sim.restart)
    after = await poll(check, **kw)
    assert after.status is Status.WARNING
    assert re.fullmatch(r"SNMP WARNING - rebooted 16 minutes ago", after.message)
    again = await poll(check, **kw)
    assert again.status is Status.OK


# --------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("prev", "cur", "modulus", "expected"),
    [
        (None, Sample(10, 1.0), COUNTER32, None),  # first poll: baseline
        (Sample(100, 0.0), Sample(700, 60.0), COUNTER32, 10.0),
        (Sample(2**32 - 100, 0.0, 500), Sample(500, 10.0, 1500), COUNTER32, 60.0),  # wrap
        (Sample(2**64 - 10, 0.0), Sample(90, 10.0), COUNTER64, 10.0),  # 64-bit wrap
        (Sample(5000, 0.0, 9000), Sample(4000, 10.0, 200), COUNTER32, None),  # agent restart
        (Sample(5000, 0.0, 9000), Sample(5000, 10.0, 200), COUNTER32, None),  # restart, same value
        (Sample(10**9, 0.0), Sample(5, 10.0), COUNTER32, None),  # reset: back by > half range
        (Sample(100, 5.0), Sample(200, 5.0), COUNTER32, None),  # no time passed
        (Sample(100, 0.0), Sample(100, 5.0), COUNTER32, 0.0),
    ],
)
def test_counter_rate(
    prev: Sample | None, cur: Sample, modulus: int, expected: float | None
) -> None:
    assert counter_rate(prev, cur, modulus) == expected


def test_counter_book_keys_and_sweep() -> None:
    book = CounterBook(max_age=100.0)
    assert book.rate("a", Sample(0, 0.0)) is None
    assert book.rate("b", Sample(0, 10.0)) is None
    assert book.rate("a", Sample(50, 10.0)) == 5.0
    assert book.rate("b", Sample(300, 110.0)) == 3.0  # passes a sweep: "a" (at 10) survives
    book.sweep(200.0)
    assert len(book) == 1 and book.previous("b") is not None


def test_reboot_is_not_confused_with_an_uptime_wrap() -> None:
    assert _rebooted(500_000, 0.0, 1_000, 3600.0)
    assert not _rebooted(1_000, 0.0, 361_000, 3600.0)
    assert not _rebooted(2**32 - 3000, 0.0, 3000, 60.0)  # wrapped after 497 days


@pytest.mark.parametrize(
    ("klass", "capacity", "level", "left"),
    [
        (3, 100, 12, 12.0),
        (4, 100, 30, 70.0),
        (3, 100, -3, None),
        (3, -2, 40, None),
        (3, 0, 0, None),
    ],
)
def test_supply_left(klass: int, capacity: int, level: int, left: float | None) -> None:
    assert _supply_left(klass, capacity, level) == left


@pytest.mark.parametrize(
    ("text", "alerting", "fine"),
    [
        (">80", [80.5, 100], [80, -5]),
        (">=80", [80, 81], [79.9]),
        ("<20", [19, -1], [20, 50]),
        ("<=20", [20], [20.1]),
        ("==2", [2, "2"], [1, "down"]),
        ("!=1", [2, "x"], [1, "1"]),
        ("!=up", ["down"], ["up"]),
        ("80", [81, -1], [0, 80]),  # Nagios: fine inside 0..80
        ("20:", [19], [20, 1e9]),
        ("~:80", [81], [-1e9, 80]),
        ("10:20", [9, 21], [10, 20]),
        ("@10:20", [10, 15, 20], [9, 21]),
        (90, [91], [90]),
    ],
)
def test_conditions(text: str | int, alerting: list[Any], fine: list[Any]) -> None:
    condition = parse_condition(text)
    assert [condition.alerts(v) for v in alerting] == [True] * len(alerting)
    assert [condition.alerts(v) for v in fine] == [False] * len(fine)


@pytest.mark.parametrize("text", ["", "abc", ">", ">x", "20:10", "@", True, None])
def test_bad_conditions_are_config_errors(text: Any) -> None:
    with pytest.raises(ValueError, match=r"threshold|needs a number|range start"):
        parse_condition(text)


def test_condition_as_nagios_range() -> None:
    assert [parse_condition(t).nagios() for t in (">80", "<20", "10:20", "@5:", "80", "==1")] == [
        "~:80",
        "20:",
        "10:20",
        "@5:",
        "80",
        None,
    ]
    assert not math.isnan(parse_condition("1e3").high)


@pytest.mark.parametrize(
    ("text", "numeric", "shown"),
    [
        ("sysUpTime.0", "1.3.6.1.2.1.1.3.0", "SNMPv2-MIB::sysUpTime.0"),
        ("SNMPv2-MIB::sysName.0", "1.3.6.1.2.1.1.5.0", "SNMPv2-MIB::sysName.0"),
        ("IF-MIB::ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "IF-MIB::ifOperStatus"),
        ("RFC1213-MIB::ifDescr.3", "1.3.6.1.2.1.2.2.1.2.3", "IF-MIB::ifDescr.3"),
        ("ifHCInOctets.5", "1.3.6.1.2.1.31.1.1.1.6.5", "IF-MIB::ifHCInOctets.5"),
        ("hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6", "HOST-RESOURCES-MIB::hrStorageUsed"),
        ("hrProcessorLoad", "1.3.6.1.2.1.25.3.3.1.2", "HOST-RESOURCES-MIB::hrProcessorLoad"),
        (
            "upsEstimatedChargeRemaining.0",
            "1.3.6.1.2.1.33.1.2.4.0",
            "UPS-MIB::upsEstimatedChargeRemaining.0",
        ),
        (
            "prtMarkerSuppliesLevel.1.4",
            "1.3.6.1.2.1.43.11.1.1.9.1.4",
            "Printer-MIB::prtMarkerSuppliesLevel.1.4",
        ),
        ("UCD-SNMP-MIB::dskPercent.2", "1.3.6.1.4.1.2021.9.1.9.2", "UCD-SNMP-MIB::dskPercent.2"),
        ("memAvailReal.0", "1.3.6.1.4.1.2021.4.6.0", "UCD-SNMP-MIB::memAvailReal.0"),
        (".1.3.6.1.4.1.32473.1", "1.3.6.1.4.1.32473.1", "1.3.6.1.4.1.32473.1"),
    ],
)
def test_oid_names_resolve_offline(text: str, numeric: str, shown: str) -> None:
    oid = parse_oid(text)
    assert dotted(oid) == numeric
    assert format_oid(oid) == shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("IF-MIB::ifFoo.7", "unknown MIB object 'IF-MIB::ifFoo.7'"),
        ("UPS-MIB::sysName.0", "sysName is defined in SNMPv2-MIB, not UPS-MIB"),
        ("not an oid", "neither a numeric OID nor a MIB object name"),
        ("5.1.2", "not a valid OID"),
    ],
)
def test_bad_oid_is_a_config_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SnmpParams.model_validate({"get": [text]})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give a profile"),
        ({"profile": "cpu", "get": ["sysName.0"]}, "takes no get/walk"),
        ({"profile": "storage", "thresholds": {"cpu": {"warn": 1}}}, "has no metric 'cpu'"),
        ({"get": ["sysName.0"], "thresholds": {"x": {}}}, "thresholds apply to profiles"),
        ({"profile": "cpu", "include": ["x"]}, "include/exclude apply to profiles"),
        ({"profile": "cpu", "user": "u"}, "user applies to version v3 only"),
        ({"profile": "cpu", "version": "v3"}, "needs a user"),
        ({"profile": "cpu", **V3, "community": "x"}, "community applies to versions v1/v2c"),
        ({"profile": "cpu", **V3, "auth_key": None}, "given together"),
        ({"profile": "cpu", **V3, "auth_key": "short"}, "at least 8 characters"),
        (
            {
                "profile": "cpu",
                "version": "v3",
                "user": "u",
                "priv_protocol": "AES",
                "priv_key": SECRET,
            },
            "needs authentication",
        ),
        ({"profile": "nope"}, "interfaces"),
        ({"profile": "cpu", "version": "v4"}, "v2c"),
    ],
)
def test_params_validation(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SnmpParams.model_validate(params)


def test_params_defaults_and_names() -> None:
    storage = SnmpParams.model_validate({"profile": "storage", "version": 2})
    assert storage.version == "v2c" and storage.port == 161 and storage.retries == 1
    assert storage.default_name("snmp") == "snmp:storage"
    assert (storage.limits("disk").warn, storage.limits("disk").crit) == (
        parse_condition(">80"),
        parse_condition(">90"),
    )
    off = SnmpParams.model_validate({"profile": "storage", "thresholds": {"disk": {"crit": None}}})
    assert off.limits("disk").crit is None and off.limits("disk").warn is not None
    generic = SnmpParams.model_validate({"get": ["UCD-SNMP-MIB::laLoad.1"]})
    assert generic.default_name("snmp") == "snmp:laLoad.1"


def test_secrets_stay_out_of_repr_and_dump() -> None:
    params = SnmpParams.model_validate(
        {"profile": "cpu", **V3, "auth_key": SECRET, "priv_key": SECRET}
    )
    assert SECRET not in repr(params) and SECRET not in str(params.model_dump())
    assert SECRET not in params.model_dump_json() and SECRET not in repr(params.creds)
    v2 = SnmpParams.model_validate({"profile": "cpu", "community": SECRET})
    assert SECRET not in repr(v2) and SECRET not in repr(v2.creds)


@pytest.mark.parametrize(
    ("indication", "expected", "reason"),
    [
        ("decryptionError", "decryption error at 192.0.2.7:161: privacy key or protocol", "auth"),
        ("unknownUserName", "unknown user name: 192.0.2.7:161 has no SNMPv3 user 'mon'", "auth"),
        ("wrongDigest", "wrong digest from 192.0.2.7:161", "auth"),
        ("notInTimeWindow", "not in time window", "auth"),
        ("unknownEngineID", "unknown engine ID", "auth"),
        ("requestTimedOut", "no response from 192.0.2.7:161 after 2 tries — agent down", "timeout"),
    ],
)
def test_v3_error_indications_say_which(indication: str, expected: str, reason: str) -> None:
    from pysnmp.proto import errind

    from checks.snmp.client import Credentials, Session
    from checks.snmp.errors import V3, indication_error

    creds = Credentials(V3, user="mon", auth_key=SECRET, priv_key=SECRET)
    session = Session("192.0.2.7:161", creds, 2, 1.0, 2, ("192.0.2.7", 161))
    error = indication_error(session, getattr(errind, indication), discovered=False)
    assert str(error).startswith(expected)
    assert error.reason.value == reason
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (5, "agent 192.0.2.7:161 answered genErr at SNMPv2-MIB::sysName.0", "server_error"),
        (13, "agent 192.0.2.7:161 answered resourceUnavailable at", "server_error"),
        (1, "agent 192.0.2.7:161 answered tooBig at", "client_error"),
        (16, "authorizationError at SNMPv2-MIB::sysName.0: 192.0.2.7:161 denied access", "auth"),
        (2, "unknown OID SNMPv2-MIB::sysName.0 (noSuchName)", "client_error"),
    ],
)
def test_error_status_says_which(status: int, expected: str, reason: str) -> None:
    from checks.snmp.client import Credentials, Session
    from checks.snmp.errors import V2C, status_error

    session = Session("192.0.2.7:161", Credentials(V2C), 2, 1.0, 2, ("192.0.2.7", 161))
    error = status_error(session, status, 1, [parse_oid("sysName.0")])
    assert str(error).startswith(expected)
    assert error.reason.value == reason
