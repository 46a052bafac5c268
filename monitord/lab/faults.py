"""Fault bookkeeping for the lab: what is injected, and what it adds up to per device.

Pure state, no I/O and no clock: callers pass timestamps in. Several faults
may cover one device (a `slow` on the device and a `down` on its site); the
device's `Effect` is their combination, so healing one fault leaves the
others in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args

from monitord.lab.fleet import Fleet

FaultKind = Literal["down", "service_down", "http_error", "slow"]
Scope = Literal["device", "site", "customer"]
Action = Literal["inject", "heal"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
SCOPES: tuple[Scope, ...] = get_args(Scope)
DEFAULT_DELAY_MS = 2000
MAX_DELAY_MS = 600_000


class UnknownTarget(LookupError):
    """The scope/name pair names no device, site or customer of the fleet."""


class UnknownFault(LookupError):
    """No active fault has this id."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What one device currently does, all faults on it combined.

    `down` closes both listeners, `service_down` only the HTTP one;
    `http_error` answers 503; `slow_ms` > 0 delays every HTTP answer.
    """

    down: bool = False
    service_down: bool = False
    http_error: bool = False
    slow_ms: int = 0

    @property
    def tcp_open(self) -> bool:
        return not self.down

    @property
    def http_open(self) -> bool:
        return not (self.down or self.service_down)

    def to_list(self) -> list[Any]:
        """Compact wire form for the shard protocol."""
        return [self.down, self.service_down, self.http_error, self.slow_ms]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Effect:
        return cls(bool(raw[0]), bool(raw[1]), bool(raw[2]), int(raw[3]))


HEALTHY = Effect()


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault. `devices` are the names it covers, in fleet order;
    `delay_ms` is set only for `slow`."""

    id: str
    scope: Scope
    name: str
    kind: FaultKind
    delay_ms: int | None
    devices: tuple[str, ...]
    injected_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "name": self.name,
            "fault": self.kind,
            "delay_ms": self.delay_ms,
            "devices": list(self.devices),
            "injected_at": self.injected_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fault:
        return cls(
            id=raw["id"],
            scope=cast(Scope, raw["scope"]),
            name=raw["name"],
            kind=cast(FaultKind, raw["fault"]),
            delay_ms=raw["delay_ms"],
            devices=tuple(raw["devices"]),
            injected_at=datetime.fromisoformat(raw["injected_at"]),
        )


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A record that `fault` was injected or healed at `at` (UTC); `seq` counts from 1."""

    seq: int
    at: datetime
    action: Action
    fault: Fault

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "action": self.action,
            "fault": self.fault.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultEvent:
        return cls(
            seq=int(raw["seq"]),
            at=datetime.fromisoformat(raw["at"]),
            action=cast(Action, raw["action"]),
            fault=Fault.from_dict(raw["fault"]),
        )


def check_fault(scope: str, kind: str, delay_ms: object) -> int | None:
    """Validate a fault request's scope, kind and delay; return the delay to store
    (DEFAULT_DELAY_MS for a `slow` without one, None for other kinds).
    Raises ValueError with a message fit for an API client."""
    if scope not in SCOPES:
        raise ValueError(f"invalid scope {scope!r}: expected one of {_alternatives(SCOPES)}")
    if kind not in FAULT_KINDS:
        raise ValueError(f"invalid fault {kind!r}: expected one of {_alternatives(FAULT_KINDS)}")
    if kind != "slow":
        return None
    if delay_ms is None:
        return DEFAULT_DELAY_MS
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int):
        raise ValueError(f"delay_ms must be an integer, got {delay_ms!r}")
    if not 1 <= delay_ms <= MAX_DELAY_MS:
        raise ValueError(f"delay_ms must be between 1 and {MAX_DELAY_MS}, got {delay_ms}")
    return delay_ms


def _alternatives(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


class FaultBook:
    """The active faults of one fleet and each device's combined `Effect`.

    `add` and `remove` return the devices whose effect changed, with the new
    effect, which is exactly what the listeners must be told.
    """

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._faults: dict[str, Fault] = {}
        self._on_device: dict[str, list[str]] = {}  # device name -> active fault ids
        self._next = 1

    def targets(self, scope: str, name: str) -> tuple[str, ...]:
        """Device names covered by `scope`/`name`. Raises UnknownTarget, ValueError."""
        if scope == "device":
            if name in self._fleet.device_by_name:
                return (name,)
        elif scope == "site":
            if name in self._fleet.site_by_name:
                return tuple(d.name for d in self._fleet.site_by_name[name].devices)
        elif scope == "customer":
            if name in self._fleet.customer_by_name:
                return tuple(d.name for d in self._fleet.customer_by_name[name].devices())
        else:
            raise ValueError(f"invalid scope {scope!r}: expected one of {_alternatives(SCOPES)}")
        raise UnknownTarget(f"unknown {scope} {name!r}")

    def add(
        self, scope: str, name: str, kind: str, delay_ms: int | None, at: datetime
    ) -> tuple[Fault, dict[str, Effect]]:
        """Record a new fault. Raises ValueError (bad scope/kind/delay) or
        UnknownTarget before changing anything."""
        delay = check_fault(scope, kind, delay_ms)
        devices = self.targets(scope, name)
        fault = Fault(
            id=f"f-{self._next}",
            scope=cast(Scope, scope),
            name=name,
            kind=cast(FaultKind, kind),
            delay_ms=delay,
            devices=devices,
            injected_at=at,
        )
        self._next += 1
        self._faults[fault.id] = fault
        for device in devices:
            self._on_device.setdefault(device, []).append(fault.id)
        return fault, {d: self.effect(d) for d in devices}

    def remove(self, fault_id: str) -> tuple[Fault, dict[str, Effect]]:
        """Forget a fault (heal it). Raises UnknownFault."""
        fault = self._faults.pop(fault_id, None)
        if fault is None:
            raise UnknownFault(f"unknown fault id {fault_id!r}")
        for device in fault.devices:
            ids = self._on_device[device]
            ids.remove(fault_id)
            if not ids:
                del self._on_device[device]
        return fault, {d: self.effect(d) for d in fault.devices}

    def active(self) -> tuple[Fault, ...]:
        """Active faults, oldest first."""
        return tuple(self._faults.values())

    def effect(self, device: str) -> Effect:
        """The combined effect of every active fault on `device`."""
        faults = [self._faults[i] for i in self._on_device.get(device, ())]
        if not faults:
            return HEALTHY
        kinds = {f.kind for f in faults}
        return Effect(
            down="down" in kinds,
            service_down="service_down" in kinds,
            http_error="http_error" in kinds,
            slow_ms=max((f.delay_ms or 0 for f in faults if f.kind == "slow"), default=0),
        )


class EventLog:
    """Append-only list of inject/heal events, numbered from 1."""

    def __init__(self) -> None:
        self._events: list[FaultEvent] = []

    def record(self, action: Action, fault: Fault, at: datetime) -> FaultEvent:
        event = FaultEvent(len(self._events) + 1, at, action, fault)
        self._events.append(event)
        return event

    def since(self, seq: int = 0) -> tuple[FaultEvent, ...]:
        """Events with a sequence number greater than `seq`."""
        return tuple(self._events[max(seq, 0) :])
