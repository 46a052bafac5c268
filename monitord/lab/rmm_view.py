"""What an RMM would say about the lab fleet: driven by the lab's own faults, plus
RMM-only injections, so the RMM and reality agree or disagree on purpose.

The lab's servers and workstations carry an "agent"; the RMM account has one
client per customer, one site per lab site and one device per agent, with
stable numeric ids (N-sight style), the lab address, the OS and a logged-on user
per workstation. What the RMM reports failing follows the lab's faults:

    lab fault on a device      the RMM reports
    down                       workstation offline / server overdue
    service_down (servers)     "Windows Service Check - World Wide Web Publishing Service"
    http_error (servers)       "Web Page Check - http://<name>/"

and, on top, RMM-only injections (the lab control API, `/api/rmm/injections`):

    agent_down      the agent stops reporting while the device is fine (an agent problem)
    false_failure   a failing check of `category` that is not real (disk-space default)
    blind_spot      the RMM reports the device healthy whatever the lab does to it

Pure bookkeeping: no I/O, no clock (callers pass the time). An RMM emulator
renders `inventory()` and `failures(faults)` in its own wire format.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args

from monitord.lab.faults import Effect, Fault
from monitord.lab.fleet import Fleet, LabDevice, LabSite
from monitord.sources.rmm.base import (
    Category,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmFailure,
    RmmInventory,
    RmmSite,
)

InjectionKind = Literal["agent_down", "false_failure", "blind_spot"]
INJECTION_KINDS: tuple[InjectionKind, ...] = get_args(InjectionKind)
AGENT_ROLES = ("server", "workstation")

# What a false failure of each category looks like (N-sight check type, description).
FALSE_CHECKS: dict[Category, tuple[str, str]] = {
    Category.DISK_SPACE: ("1004", "Disk Space Check - Drive C:"),
    Category.BACKUP: ("1002", "Backup Check - Windows Server Backup"),
    Category.SERVICE: ("1013", "Windows Service Check - World Wide Web Publishing Service"),
    Category.WEB: ("1012", "Web Page Check - http://{name}/"),
    Category.ANTIVIRUS: ("1001", "Antivirus Update Check - Managed Antivirus"),
    Category.EVENT_LOG: ("1020", "Event Log Check - System - Error - Source: disk"),
    Category.PERFORMANCE: ("1007", "Performance Monitoring Check - Processor Queue Length"),
    Category.HARDWARE: ("1008", "Physical Disk Health Check - Disk 0"),
    Category.PATCH: ("1021", "WSUS Check - 12 updates failed"),
    Category.TASK: ("1023", "Automated Task - Clean Temp Files"),
}
_SLOT = {category: i + 1 for i, category in enumerate(FALSE_CHECKS)}
_FIRST_NAMES = ("jana", "petr", "eva", "tomas", "lucie", "martin", "anna", "jakub", "marie")


@dataclass(frozen=True, slots=True)
class RmmInjection:
    id: str
    kind: InjectionKind
    device: str  # lab device name
    category: Category | None  # false_failure only
    injected_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "device": self.device,
            "category": self.category.value if self.category else None,
            "injected_at": self.injected_at.isoformat(),
        }


def effects_of(faults: Iterable[Fault]) -> dict[str, Effect]:
    """Each device's combined effect of `faults` (as `FaultBook.effect` combines them)."""
    kinds: dict[str, set[str]] = {}
    for fault in faults:
        for name in fault.devices:
            kinds.setdefault(name, set()).add(fault.kind)
    return {
        name: Effect(
            down="down" in k, service_down="service_down" in k, http_error="http_error" in k
        )
        for name, k in kinds.items()
    }


class RmmView:
    """The RMM's account for `fleet`, and the RMM-only injections on it."""

    def __init__(self, fleet: Fleet, *, client_base: int = 410001) -> None:
        self.fleet = fleet
        self.client_ids = {c.name: str(client_base + i) for i, c in enumerate(fleet.customers)}
        self.site_ids = {s.name: str(520001 + i) for i, s in enumerate(fleet.sites)}
        agents = [d for d in fleet.devices if d.role in AGENT_ROLES]
        self.device_ids = {d.name: str(30000001 + i) for i, d in enumerate(agents)}
        self.by_id = {rmm_id: name for name, rmm_id in self.device_ids.items()}
        self.users = {d.name: _user(d, i) for i, d in enumerate(agents)}
        self._injections: dict[str, RmmInjection] = {}
        self._next = itertools.count(1)

    # the account -------------------------------------------------------------
    def inventory(self, last_seen: float) -> RmmInventory:
        clients = tuple(
            RmmClient(self.client_ids[c.name], c.display_name) for c in self.fleet.customers
        )
        sites = tuple(
            RmmSite(
                self.site_ids[s.name],
                self.client_ids[s.customer],
                site_label(s),
                connection_ok=True,
                routers=(s.gateway.address,),
            )
            for s in self.fleet.sites
        )
        devices = tuple(
            RmmDevice(
                id=self.device_ids[d.name],
                client_id=self.client_ids[d.customer],
                site_id=self.site_ids[d.site],
                name=d.name.upper(),
                kind=cast(Any, d.role),
                addresses=(d.address,),
                os=d.os,
                last_seen=last_seen,
                logged_on_user=self.users[d.name],
            )
            for d in self.fleet.devices
            if d.name in self.device_ids
        )
        return RmmInventory(clients, sites, devices)

    def failures(self, faults: Iterable[Fault], started: float) -> tuple[RmmFailure, ...]:
        """What the RMM reports failing now, given the lab's active `faults`."""
        effects = effects_of(faults)
        blind = {i.device for i in self._injections.values() if i.kind == "blind_spot"}
        out: list[RmmFailure] = []
        for name, effect in sorted(effects.items()):
            if name in self.device_ids and name not in blind:
                out.extend(self._from_effect(self.fleet.device_by_name[name], effect, started))
        for inj in self._injections.values():
            if inj.device in blind:
                continue
            device = self.fleet.device_by_name[inj.device]
            if inj.kind == "agent_down" and not effects.get(inj.device, Effect()).down:
                out.append(self._availability(device, started))
            elif inj.kind == "false_failure" and inj.category is not None:
                out.append(self._check(device, inj.category, started))
        return tuple(_unique(out))

    def _from_effect(self, device: LabDevice, effect: Effect, started: float) -> list[RmmFailure]:
        if effect.down:
            return [self._availability(device, started)]
        out = []
        if device.role == "server" and effect.service_down:
            out.append(self._check(device, Category.SERVICE, started))
        if device.role == "server" and effect.http_error:
            out.append(self._check(device, Category.WEB, started))
        return out

    def _availability(self, device: LabDevice, started: float) -> RmmFailure:
        rmm_id = self.device_ids[device.name]
        kind = FailureKind.OVERDUE if device.role == "server" else FailureKind.OFFLINE
        return RmmFailure(
            key=f"{rmm_id}:{kind.value}",
            device_id=rmm_id,
            kind=kind,
            category=Category.AVAILABILITY,
            check_type=kind.value,
            description=kind.value.capitalize(),
            started_at=started,
        )

    def _check(self, device: LabDevice, category: Category, started: float) -> RmmFailure:
        rmm_id = self.device_ids[device.name]
        check_type, text = FALSE_CHECKS[category]
        return RmmFailure(
            key=self.check_id(device.name, category),
            device_id=rmm_id,
            kind=FailureKind.TASK if category == Category.TASK else FailureKind.CHECK,
            category=category,
            check_type=check_type,
            description=text.format(name=device.name),
            output=f"{text.split(' - ')[0]} failed on {device.name.upper()}",
            started_at=started,
            consecutive_fails=3,
            status="testerror",
        )

    def check_id(self, device: str, category: Category) -> str:
        """The RMM's stable check id of `category` on `device`."""
        index = int(self.device_ids[device]) - 30000000
        return str(70000000 + index * 16 + _SLOT[category])

    # injections --------------------------------------------------------------
    def inject(self, kind: str, device: str, category: str | None, at: datetime) -> RmmInjection:
        """Raises ValueError (bad kind or category) or LookupError (not an agent)."""
        if kind not in INJECTION_KINDS:
            raise ValueError(
                f"invalid kind {kind!r}: expected one of {', '.join(map(repr, INJECTION_KINDS))}"
            )
        if device not in self.device_ids:
            raise LookupError(f"{device!r} is not a lab device with an RMM agent")
        cat: Category | None = None
        if kind == "false_failure":
            try:
                cat = Category(category or Category.DISK_SPACE.value)
            except ValueError:
                known = ", ".join(c.value for c in FALSE_CHECKS)
                raise ValueError(
                    f"invalid category {category!r}: expected one of {known}"
                ) from None
            if cat not in FALSE_CHECKS:
                raise ValueError(f"category {cat.value!r} has no false failure to inject")
        elif category is not None:
            raise ValueError(f"category applies to false_failure only, not {kind!r}")
        injection = RmmInjection(f"r-{next(self._next)}", cast(Any, kind), device, cat, at)
        self._injections[injection.id] = injection
        return injection

    def heal(self, injection_id: str) -> RmmInjection:
        """Raises LookupError for an unknown id."""
        found = self._injections.pop(injection_id, None)
        if found is None:
            raise LookupError(f"unknown RMM injection id {injection_id!r}")
        return found

    def injections(self) -> tuple[RmmInjection, ...]:
        return tuple(self._injections.values())


def site_label(site: LabSite) -> str:
    """The RMM's name of a lab site: `acme-hq` → "HQ", `acme-brno2` → "Brno2"."""
    label = site.name.removeprefix(f"{site.customer}-")
    return "HQ" if label == "hq" else label.capitalize()


def _user(device: LabDevice, i: int) -> str:
    if device.role != "workstation":
        return ""
    return f"{device.customer.upper()}\\{_FIRST_NAMES[i % len(_FIRST_NAMES)]}.{i}"


def _unique(items: list[RmmFailure]) -> list[RmmFailure]:
    seen: dict[str, RmmFailure] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())
