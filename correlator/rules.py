"""The decision functions the correlator is built with: priority and mutes.

Both are built from the config once (and rebuilt on reload) and read the
current topology through a callable, so they always see the inventory the
correlator works with. The mute rule reads its maintenance windows and
silences through callables too, so ones added or ended at runtime (the
daemon's `SuppressionBook`) apply at the next decision without a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from correlator.calendar import Calendars
from correlator.engine import Mute, Prioritize
from correlator.events import Event
from correlator.model import Incident
from correlator.priority import Facts, prioritize
from correlator.topology import Topology
from correlator.windows import active_windows, customer_zones, matching_silences
from monitord.config.model import Config, Contract, MaintenanceWindow, Silence
from monitord.model import Status

# After a workstation customer's day starts, people need a while to switch PCs on.
WORKSTATION_MORNING_GRACE = 3600.0
ALWAYS_ON_TAGS = frozenset({"always-on", "vip"})
OFFLINE_CATEGORIES = frozenset({"host-down", "service-down", "unreachable-workstation"})


def build_prioritize(config: Config, topology: Callable[[], Topology]) -> Prioritize:
    """P1-P4 from the configured rules (or the built-in ones), with the reason."""
    contracts = {c.name: c.contract for c in config.customers}

    def decide(event: Event) -> tuple[str, str]:
        device = topology().devices.get(event.device_id or "")
        contract = contracts.get(event.customer or "", Contract())
        if device is not None:
            facts = Facts.of(device, contract, severity=event.status, category=event.category)
        else:
            facts = Facts(
                severity=event.status,
                category=event.category or "unknown-device",
                customer=event.customer,
                after_hours_cover=contract.after_hours_cover,
            )
        decision = prioritize(facts, config.priority_rules)
        return decision.priority.value, decision.explanation

    return decide


def build_mute(
    config: Config,
    topology: Callable[[], Topology],
    *,
    windows: Callable[[], Iterable[MaintenanceWindow]] | None = None,
    silences: Callable[[], Iterable[Silence]] | None = None,
) -> Mute:
    """Why an incident must not be notified now: maintenance, silence, or an
    off-hours workstation (expected to be off). "" when it may be notified.

    `windows` and `silences` return the current lists (default: the config's).
    """
    calendars = Calendars(config.customers)
    zones = customer_zones(config.customers)
    current_windows = windows or (lambda: config.maintenance)
    current_silences = silences or (lambda: config.silences)

    def mute(inc: Incident, now: float) -> str:
        labels = _labels(inc, topology())
        for found in active_windows(current_windows(), labels, now, zones=zones):
            return found.reason
        for found in matching_silences(current_silences(), labels, now):
            return found.reason
        return _workstation_off_hours(inc, labels, calendars, now)

    return mute


def _labels(inc: Incident, topology: Topology) -> dict[str, str]:
    device = topology.devices.get(inc.device_id or "")
    labels = {
        "customer": inc.customer or "",
        "site": inc.site or "",
        "check": (inc.check_id or "").rsplit("/", 1)[-1],
        "category": inc.category,
        "source": "",
        "severity": Status(inc.severity).label,
        "device_id": inc.device_id or "",
        "device": "",
        "role": "",
        "tags": "",
    }
    if device is not None:
        labels |= {
            "device": device.name,
            "site": device.site or "",
            "role": device.role,
            "tags": ",".join(device.tags),
        }
    return labels


def _workstation_off_hours(
    inc: Incident, labels: dict[str, str], calendars: Calendars, now: float
) -> str:
    if labels["role"] != "workstation" or inc.category not in OFFLINE_CATEGORIES:
        return ""
    if ALWAYS_ON_TAGS & set(labels["tags"].split(",")):
        return ""
    calendar = calendars.get(inc.customer)
    if not calendar.is_business_time(now):
        return "workstation outside business hours (expected to be off)"
    if not calendar.is_business_time(now - WORKSTATION_MORNING_GRACE):
        return "workstation in the first hour of the business day (may not be on yet)"
    return ""


def no_mute(incident: Incident, now: float) -> str:
    return ""
