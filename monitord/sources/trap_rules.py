"""Trap → event mapping: pure functions over decoded traps, no SNMP library.

A rule maps a trap OID to a problem (or info) of a *category* on an
*instance* (an ifIndex, a UPS alarm); the trap that clears it yields a
recovery with the same fingerprint, `trap:{category}:{instance}` of the
device, so the same problem reported twice is one incident. Built-in rules
cover SNMPv2-MIB (coldStart, warmStart, authenticationFailure), IF-MIB
(linkDown/linkUp) and UPS-MIB (RFC 1628); config rules add vendor traps and
replace a built-in rule with the same OID. A trap no rule knows becomes an
INFO event, so nothing a known device sends vanishes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from correlator.events import Event, EventKind, fingerprint
from monitord.config.model import TrapRuleDef
from monitord.inventory import Device
from monitord.model import Status

SOURCE = "trap"

# SNMPv2-MIB snmpTraps; v1 generic traps arrive converted to these (RFC 3584).
COLD_START = "1.3.6.1.6.3.1.1.5.1"
WARM_START = "1.3.6.1.6.3.1.1.5.2"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
AUTHENTICATION_FAILURE = "1.3.6.1.6.3.1.1.5.5"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
# UPS-MIB (RFC 1628) upsTraps. It has no "back on line" trap: on-battery is
# cleared by the alarm-table trap below when the UPS sends it, else by the poller.
UPS_ON_BATTERY = "1.3.6.1.2.1.33.2.0.1"
UPS_TEST_COMPLETED = "1.3.6.1.2.1.33.2.0.2"
UPS_ALARM_ADDED = "1.3.6.1.2.1.33.2.0.3"
UPS_ALARM_REMOVED = "1.3.6.1.2.1.33.2.0.4"
UPS_ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2"
UPS_WELL_KNOWN_ALARMS = "1.3.6.1.2.1.33.1.6.3"

_C, _W = Status.CRITICAL, Status.WARNING
# upsWellKnownAlarms.N → (category, severity); on-battery shares the category
# of upsTrapOnBattery so that the alarm's removal resolves that problem too.
UPS_ALARMS: dict[str, tuple[str, Status]] = {
    f"{UPS_WELL_KNOWN_ALARMS}.{n}": (f"ups-{name}", status)
    for n, (name, status) in enumerate(
        [
            ("battery-bad", _C),
            ("on-battery", _C),
            ("low-battery", _C),
            ("depleted-battery", _C),
            ("temperature-bad", _W),
            ("input-bad", _W),
            ("output-bad", _C),
            ("output-overload", _C),
            ("on-bypass", _W),
            ("bypass-bad", _W),
            ("output-off-as-requested", _W),
            ("off-as-requested", _W),
            ("charger-failed", _W),
            ("output-off", _C),
            ("system-off", _C),
            ("fan-failure", _W),
            ("fuse-failure", _C),
            ("general-fault", _W),
            ("diagnostic-test-failed", _W),
            ("communications-lost", _W),
            ("awaiting-power", _W),
            ("shutdown-pending", _C),
            ("shutdown-imminent", _C),
            ("test-in-progress", _W),
        ],
        start=1,
    )
}

_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class Trap:
    """One received notification, decoded: sender address, trap OID, and the
    other varbinds as (numeric OID, value text), in the order sent."""

    source: str
    trap_oid: str
    varbinds: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class TrapRule:
    """How one trap OID becomes an event; `clear_oid` names the trap that clears it."""

    oid: str
    category: str
    status: Status  # OK for info rules
    message: str
    instance: str | None = None  # varbind OID naming the instance (see instance_of)
    instance_label: str = "instance"
    clear_oid: str | None = None
    clear_message: str = ""

    @property
    def kind(self) -> EventKind:
        return EventKind.INFO if self.status == Status.OK else EventKind.PROBLEM


BUILTIN_RULES: tuple[TrapRule, ...] = (
    TrapRule(COLD_START, "device-restarted", Status.OK, "device restarted (coldStart)"),
    TrapRule(WARM_START, "device-restarted", Status.OK, "device restarted (warmStart)"),
    TrapRule(
        AUTHENTICATION_FAILURE,
        "snmp-authentication-failure",
        Status.OK,
        "device reports an SNMP authentication failure",
    ),
    TrapRule(
        LINK_DOWN,
        "link-down",
        Status.WARNING,
        "link down",
        instance=IF_INDEX,
        instance_label="ifIndex",
        clear_oid=LINK_UP,
        clear_message="link up",
    ),
    TrapRule(UPS_ON_BATTERY, "ups-on-battery", Status.CRITICAL, "UPS is running on battery"),
    TrapRule(UPS_TEST_COMPLETED, "ups-test-completed", Status.OK, "UPS self-test completed"),
)

_SEVERITY = {"info": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL}


def rule_from_config(rule: TrapRuleDef) -> TrapRule:
    """The mapping rule a `traps.rules` entry describes."""
    return TrapRule(
        oid=rule.oid,
        category=rule.category,
        status=_SEVERITY[rule.severity],
        message=rule.message or rule.category,
        instance=rule.instance,
        clear_oid=rule.clear_oid,
        clear_message=f"{rule.message or rule.category} cleared",
    )


def trap_fingerprint(customer: str, device_id: str, category: str, instance: str) -> str:
    """The fingerprint of a trap problem; a poller that sees the problem end (a
    UPS back on mains) resolves it by sending a RECOVERY with this fingerprint."""
    return fingerprint(customer, device_id, f"trap:{category}:{instance}")


def instance_of(trap: Trap, oid: str | None) -> str:
    """The instance a rule's `instance` OID names in `trap`: the index after it
    (ifIndex.5 → "5"), or the value when a varbind is exactly that OID; "0"
    (the device itself) when there is no such varbind or no instance OID."""
    if oid is None:
        return "0"
    prefix = oid + "."
    for vb_oid, value in trap.varbinds:
        if vb_oid == oid:
            return value
        if vb_oid.startswith(prefix):
            return vb_oid[len(prefix) :]
    return "0"


def _interface_name(trap: Trap, if_index: str) -> str:
    for column in (IF_NAME, IF_DESCR, IF_ALIAS):
        wanted = f"{column}.{if_index}"
        for vb_oid, value in trap.varbinds:
            if vb_oid == wanted and value:
                return value
    return ""


class TrapMapper:
    """Maps decoded traps from known devices to events. Immutable after build;
    `map` is pure apart from reading the rules, and never raises on odd input."""

    def __init__(self, rules: Iterable[TrapRule]) -> None:
        self.opens: dict[str, TrapRule] = {}
        self.clears: dict[str, list[TrapRule]] = {}
        for rule in rules:
            self.opens[rule.oid] = rule  # later rules (config) replace earlier (built-in)
        for rule in self.opens.values():
            if rule.clear_oid is not None:
                self.clears.setdefault(rule.clear_oid, []).append(rule)

    @classmethod
    def from_config(cls, rules: Iterable[TrapRuleDef]) -> TrapMapper:
        """Built-in rules plus the configured ones (which win on the same OID)."""
        return cls([*BUILTIN_RULES, *(rule_from_config(r) for r in rules)])

    def map(self, device: Device, trap: Trap, now: float) -> tuple[tuple[Event, ...], bool]:
        """(events, mapped): the events `trap` causes on `device`, and whether a
        rule knew it. An unknown trap OID gives one INFO event and False."""
        events: list[Event] = []
        rule = self.opens.get(trap.trap_oid)
        if rule is not None:
            events.append(self._event(device, trap, now, rule, rule.kind, rule.status))
        for cleared in self.clears.get(trap.trap_oid, ()):
            events.append(self._event(device, trap, now, cleared, EventKind.RECOVERY, Status.OK))
        if rule is None and trap.trap_oid in (UPS_ALARM_ADDED, UPS_ALARM_REMOVED):
            events.append(_ups_alarm(device, trap, now))
        if events:
            return tuple(events), True
        return (_unmapped(device, trap, now),), False

    def _event(
        self,
        device: Device,
        trap: Trap,
        now: float,
        rule: TrapRule,
        kind: EventKind,
        status: Status,
    ) -> Event:
        instance = instance_of(trap, rule.instance)
        message = rule.clear_message if kind == EventKind.RECOVERY else rule.message
        if rule.instance is not None and instance != "0":
            message = f"{message} on {rule.instance_label} {instance}"
            if rule.instance == IF_INDEX and (name := _interface_name(trap, instance)):
                message = f"{message} ({name})"
        return _make(device, now, kind, status, rule.category, instance, message)


def _ups_alarm(device: Device, trap: Trap, now: float) -> Event:
    """upsTrapAlarmEntryAdded/Removed: the alarm is the OID value of upsAlarmDescr."""
    descr = next((v for o, v in trap.varbinds if o.startswith(UPS_ALARM_DESCR + ".")), "")
    category, status = UPS_ALARMS.get(descr, ("ups-alarm", Status.WARNING))
    instance = "0" if descr in UPS_ALARMS else descr or "0"
    what = category if descr in UPS_ALARMS else f"UPS alarm {descr or '(no description)'}"
    if trap.trap_oid == UPS_ALARM_ADDED:
        return _make(device, now, EventKind.PROBLEM, status, category, instance, f"{what} raised")
    return _make(device, now, EventKind.RECOVERY, Status.OK, category, instance, f"{what} cleared")


def _unmapped(device: Device, trap: Trap, now: float) -> Event:
    shown = ", ".join(f"{o}={v}" for o, v in trap.varbinds)
    message = f"unmapped trap {trap.trap_oid}" + (f": {shown}" if shown else "")
    return _make(device, now, EventKind.INFO, Status.OK, "unmapped", trap.trap_oid, message)


def _make(
    device: Device,
    now: float,
    kind: EventKind,
    status: Status,
    category: str,
    instance: str,
    message: str,
) -> Event:
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return Event(
        ts=now,
        source=SOURCE,
        kind=kind,
        fingerprint=trap_fingerprint(device.customer, device.id, category, instance),
        customer=device.customer,
        device_id=device.id,
        check_id=None,
        status=status,
        message=message,
        category=category,
    )
