"""The resolved inventory: devices and checks with ids, parents and final params.

Built from the config by `monitord.config.validate`; later also merged with
devices synced from an RMM. Frozen: a reload builds a new one and swaps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Device:
    id: str  # "customer/name": device names repeat across customers (SERVER01)
    name: str
    customer: str
    site: str | None
    address: str
    role: str
    os: str
    criticality: str
    tags: tuple[str, ...]
    parent_id: str | None
    source: str = "config"  # or "rmm:<source>" for a device synced from an RMM


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str  # "customer/device/check"
    device_id: str
    name: str
    kind: str
    params: Any  # the check type's frozen Params model
    interval: float
    retry_interval: float
    max_attempts: int
    timeout: float


@dataclass(frozen=True)
class Inventory:
    customers: Mapping[str, Any] = field(default_factory=dict)  # name → config Customer
    devices: Mapping[str, Device] = field(default_factory=dict)
    checks: tuple[CheckSpec, ...] = ()

    def device_for_address(self, address: str) -> Device | None:
        """The device with this address (first configured wins), for sources that
        only know where a message came from (SNMP traps)."""
        by_address = self.__dict__.get("_by_address")
        if by_address is None:
            by_address = {}
            for device in self.devices.values():
                by_address.setdefault(device.address, device)
            object.__setattr__(self, "_by_address", by_address)
        return by_address.get(address)

    def children(self) -> dict[str, list[str]]:
        """Parent id → ids of its direct children."""
        out: dict[str, list[str]] = {}
        for device in self.devices.values():
            if device.parent_id:
                out.setdefault(device.parent_id, []).append(device.id)
        return out
