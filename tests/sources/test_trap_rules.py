"""Trap mapping, rate-limited logging and the traps: config section, without a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pysnmp.proto.rfc1902 import Integer, ObjectIdentifier, ObjectName, OctetString, TimeTicks

from correlator.events import EventKind
from monitord.config import ConfigErrors, load_config
from monitord.config.load import config_from_dict
from monitord.config.model import TrapRuleDef
from monitord.inventory import Device
from monitord.model import Status
from monitord.sources import trap_rules as tr
from monitord.sources.trap_rules import Trap, TrapMapper, instance_of, trap_fingerprint
from monitord.sources.traps import EdgeLog, decode

UPS = Device("acme/ups", "ups", "acme", None, "127.42.0.2", "ups", "", "normal", (), None)
ON_BATTERY_ALARM = f"{tr.UPS_WELL_KNOWN_ALARMS}.2"


def trap(oid: str, *varbinds: tuple[str, str]) -> Trap:
    return Trap("127.42.0.2", oid, tuple(varbinds))


def test_ups_alarm_table_traps_open_and_clear_the_on_battery_problem() -> None:
    mapper = TrapMapper.from_config(())
    (on_battery,), _ = mapper.map(UPS, trap(tr.UPS_ON_BATTERY), 1.0)
    descr = (f"{tr.UPS_ALARM_DESCR}.7", ON_BATTERY_ALARM)
    (added,), _ = mapper.map(UPS, trap(tr.UPS_ALARM_ADDED, descr), 2.0)
    (removed,), mapped = mapper.map(UPS, trap(tr.UPS_ALARM_REMOVED, descr), 3.0)
    expected = trap_fingerprint("acme", "acme/ups", "ups-on-battery", "0")
    assert on_battery.fingerprint == added.fingerprint == removed.fingerprint == expected
    assert (on_battery.kind, on_battery.status) == (EventKind.PROBLEM, Status.CRITICAL)
    assert (removed.kind, removed.message, mapped) == (
        EventKind.RECOVERY,
        "ups-on-battery cleared",
        True,
    )


def test_a_vendor_ups_alarm_is_keyed_by_its_description_oid() -> None:
    vendor = "1.3.6.1.4.1.534.1.7.3"
    descr = (f"{tr.UPS_ALARM_DESCR}.1", vendor)
    (event,), _ = TrapMapper.from_config(()).map(UPS, trap(tr.UPS_ALARM_ADDED, descr), 1.0)
    assert event.fingerprint == trap_fingerprint("acme", "acme/ups", "ups-alarm", vendor)
    assert (event.status, event.message) == (Status.WARNING, f"UPS alarm {vendor} raised")


def test_a_config_rule_replaces_the_built_in_one() -> None:
    rule = TrapRuleDef(oid=tr.LINK_DOWN, category="port-down", severity="critical")
    mapper = TrapMapper.from_config([rule])
    (down,), _ = mapper.map(UPS, trap(tr.LINK_DOWN, (f"{tr.IF_INDEX}.2", "2")), 1.0)
    assert (down.status, down.fingerprint) == (
        Status.CRITICAL,
        trap_fingerprint("acme", "acme/ups", "port-down", "0"),  # no instance configured
    )
    (up,), mapped = mapper.map(UPS, trap(tr.LINK_UP), 2.0)  # nothing clears with linkUp now
    assert (up.kind, mapped) == (EventKind.INFO, False)


@pytest.mark.parametrize(
    ("varbinds", "oid", "expected"),
    [
        ([("1.3.6.1.2.1.2.2.1.1.12", "12")], tr.IF_INDEX, "12"),
        ([("1.3.6.1.4.1.9.1.0", "fan2")], "1.3.6.1.4.1.9.1.0", "fan2"),  # exact: the value
        ([("1.3.6.1.4.1.9.10.1", "x")], "1.3.6.1.4.1.9.1", "0"),  # 9.10 is not under 9.1
        ([], tr.IF_INDEX, "0"),
        ([("1.3.6.1.2.1.2.2.1.1.12", "12")], None, "0"),
    ],
)
def test_instance_of(varbinds: list[tuple[str, str]], oid: str | None, expected: str) -> None:
    assert instance_of(trap("1.3.6.1.4.1.9.0.1", *varbinds), oid) == expected


def test_unmapped_trap_message_is_bounded() -> None:
    big = trap("1.3.6.1.4.1.9.0.1", *[(f"1.3.6.1.4.1.9.2.{i}", "x" * 50) for i in range(20)])
    (event,), mapped = TrapMapper.from_config(()).map(UPS, big, 1.0)
    assert not mapped and len(event.message) == 300 and event.message.endswith("…")


def test_decode_drops_uptime_and_the_v1_community() -> None:
    var_binds: list[tuple[Any, Any]] = [
        (ObjectName("1.3.6.1.2.1.1.3.0"), TimeTicks(123)),
        (ObjectName("1.3.6.1.6.3.1.1.4.1.0"), ObjectIdentifier(tr.LINK_DOWN)),
        (ObjectName("1.3.6.1.2.1.2.2.1.1.4"), Integer(4)),
        (ObjectName("1.3.6.1.6.3.18.1.4.0"), OctetString("s3cret")),
    ]
    assert decode("127.0.0.9", var_binds) == Trap(
        "127.0.0.9", tr.LINK_DOWN, (("1.3.6.1.2.1.2.2.1.1.4", "4"),)
    )
    assert decode("127.0.0.9", var_binds[2:]) is None


def test_edge_log_logs_first_per_key_per_window_with_the_suppressed_count() -> None:
    quiet = EdgeLog(window=3600, max_keys=2)
    assert quiet.hit(("unknown_source", "a"), 0) == 0
    assert quiet.hit(("unknown_source", "a"), 10) is None
    assert quiet.hit(("unknown_source", "a"), 20) is None
    assert quiet.hit(("malformed", "a"), 20) == 0  # another reason, another key
    assert quiet.hit(("unknown_source", "b"), 30) is None  # full: counted, not logged
    assert quiet.hit(("unknown_source", "a"), 3600) == 2
    assert quiet.hit(("unknown_source", "c"), 3700) == 0  # expired keys make room


BASE: dict[str, Any] = {
    "customers": [{"name": "acme"}],
    "devices": [{"name": "rtr", "customer": "acme", "address": "127.42.0.1"}],
}


def errors(traps: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        config_from_dict({**BASE, "traps": traps})
    return [str(e) for e in info.value.errors]


def test_traps_are_off_by_default_on_an_unprivileged_loopback_port() -> None:
    traps = config_from_dict(BASE).config.traps
    assert (traps.enabled, traps.listen) == (False, "127.0.0.1:10162")


def test_trap_config_errors_are_located_and_never_show_secrets() -> None:
    assert errors(
        {
            "listen": "trap-host:162",
            "communities": ["public"],
            "users": [
                {"name": "u", "auth_key": "short"},
                {"name": "v", "auth_key": "authpass123", "engine_ids": [80000000010203, "0x12"]},
            ],
            "rules": [{"oid": "1.3.6.x", "category": "Fan Failure"}],
        }
    ) == [
        "<dict>: traps.listen: expected ip:port (an IP, not a name), got 'trap-host:162'",
        "<dict>: traps.users[0]: auth_key of trap user 'u' is shorter than 8 characters",
        "<dict>: traps.users[1].engine_ids[0]: "
        "quote the engine ID: YAML read 80000000010203 as a number",
        "<dict>: traps.users[1].engine_ids[1]: "
        "expected an engine ID of 5 to 32 octets in hex, got '0x12'",
        "<dict>: traps.rules[0].oid: "
        "expected a numeric OID like '1.3.6.1.4.1.9.0.1', got '1.3.6.x'",
        "<dict>: traps.rules[0].category: "
        "category 'Fan Failure' must be lowercase letters, digits, '.', '_' or '-'",
    ]
    assert errors(
        {"users": [{"name": "u", "auth_key": "authpass123", "priv_protocol": "aes"}]}
    ) == ["<dict>: traps.users[0]: trap user 'u' needs a priv_key for authPriv"]


def test_trap_cross_references_are_checked() -> None:
    rule = {"oid": "1.3.6.1.4.1.9.0.1", "category": "a", "clear_oid": "1.3.6.1.4.1.9.0.2"}
    assert errors(
        {
            "enabled": True,
            "engine_ids": {"acme/nope": "0x8000000001020304"},
            "rules": [
                rule,
                {**rule, "category": "b"},
                {"oid": "1.3.6.1.4.1.9.0.2", "category": "c"},
            ],
        }
    ) == [
        "<dict>: traps: traps are enabled but no communities or users are configured",
        "<dict>: traps.engine_ids.acme/nope: unknown device 'acme/nope' (expected 'customer/name')",
        "<dict>: traps.rules[1].oid: duplicate trap rule for '1.3.6.1.4.1.9.0.1' (also rules[0])",
        "<dict>: traps.rules[0].clear_oid: '1.3.6.1.4.1.9.0.2' is also the oid of rules[2]"
        " (one trap cannot both open and clear)",
        "<dict>: traps.rules[1].clear_oid: '1.3.6.1.4.1.9.0.2' is also the oid of rules[2]"
        " (one trap cannot both open and clear)",
    ]


def test_trap_errors_in_a_file_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text(
        "customers: [{name: acme}]\n"
        "traps:\n"
        "  enabled: true\n"
        "  communities: [env:NO_SUCH_TRAP_COMMUNITY_VAR]\n"
        "  engine_ids:\n"
        "    acme/rtr: '80000000010203'\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors] == [
        "monitord.yaml:4: traps.communities[0]: "
        "environment variable 'NO_SUCH_TRAP_COMMUNITY_VAR' is not set",
    ]
    path.write_text(path.read_text().replace("env:NO_SUCH_TRAP_COMMUNITY_VAR", "public"))
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors] == [
        "monitord.yaml:6: traps.engine_ids.acme/rtr: "
        "unknown device 'acme/rtr' (expected 'customer/name')",
    ]
