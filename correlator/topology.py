"""Who depends on whom, and whether a device is up, down or in doubt right now.

A device is *down* when every one of its reachability checks is a hard
problem (its ICMP checks if it has any, otherwise all its checks: a device
that answers nothing at all is down, one with a dead web server is not). It
is *suspect* while some of those checks fail but are not confirmed yet:
that is exactly the window in which a child's failure can harden before its
parent's (or one check of a router before its others), so the correlator
holds children of a suspect parent, and a suspect device's own incidents,
back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from monitord.inventory import Device, Inventory
from monitord.model import Status
from monitord.state import CheckState, StateType

REACHABILITY_KINDS = frozenset({"icmp"})


class Health(Enum):
    UP = "up"
    SUSPECT = "suspect"
    DOWN = "down"


class Topology:
    def __init__(self, inventory: Inventory, states: Callable[[str], CheckState | None]) -> None:
        self.inventory = inventory
        self.states = states
        self.devices: Mapping[str, Device] = inventory.devices
        by_device: dict[str, list[str]] = {}
        kinds: dict[str, list[str]] = {}
        for spec in inventory.checks:
            by_device.setdefault(spec.device_id, []).append(spec.id)
            if spec.kind in REACHABILITY_KINDS:
                kinds.setdefault(spec.device_id, []).append(spec.id)
        self.reachability = {d: kinds.get(d, ids) for d, ids in by_device.items()}
        self.children = inventory.children()
        self._dependents: dict[str, int] = {}
        self.gateways = {
            (c.name, s.name): f"{c.name}/{s.gateway}"
            for c in inventory.customers.values()
            for s in c.sites
            if s.gateway
        }

    def health(self, device_id: str) -> Health:
        checks = self.reachability.get(device_id)
        if not checks:
            return Health.UP
        hard = soft = 0
        for check_id in checks:
            st = self.states(check_id)
            if st is None or st.status == Status.OK:
                continue
            if st.state_type == StateType.HARD and st.hard_status != Status.OK:
                hard += 1
            else:
                soft += 1
        if hard == len(checks):
            return Health.DOWN
        # Unconfirmed failures may still become "down"; confirmed partial ones
        # (a dead web server on a box that answers otherwise) will not.
        return Health.SUSPECT if soft else Health.UP

    def ancestors(self, device_id: str | None) -> list[str]:
        out: list[str] = []
        device = self.devices.get(device_id or "")
        while device is not None and device.parent_id and device.parent_id not in out:
            out.append(device.parent_id)
            device = self.devices.get(device.parent_id)
        return out

    def down_ancestor(self, device_id: str | None) -> str | None:
        """The topmost ancestor that is down: the root cause to attach to."""
        found = None
        for ancestor in self.ancestors(device_id):
            if self.health(ancestor) == Health.DOWN:
                found = ancestor
        return found

    def suspect_ancestor(self, device_id: str | None) -> str | None:
        for ancestor in self.ancestors(device_id):
            if self.health(ancestor) != Health.UP:
                return ancestor
        return None

    def dependents(self, device_id: str) -> int:
        """How many devices sit behind `device_id` (all descendants)."""
        cached = self._dependents.get(device_id)
        if cached is None:
            stack, seen = list(self.children.get(device_id, ())), set()
            while stack:
                child = stack.pop()
                if child not in seen:
                    seen.add(child)
                    stack.extend(self.children.get(child, ()))
            cached = self._dependents[device_id] = len(seen)
        return cached

    def groups(self, device_id: str) -> bool:
        """Whether a down `device_id` gets one outage incident gathering its
        failures: it has dependents, or several checks that all fail with it."""
        return self.dependents(device_id) > 0 or len(self.reachability.get(device_id, ())) > 1

    def is_descendant(self, device_id: str | None, ancestor: str) -> bool:
        return ancestor in self.ancestors(device_id)

    def check_failing(self, check_id: str) -> bool:
        st = self.states(check_id)
        return st is not None and st.hard_status != Status.OK

    def site_gateway_of(self, device_id: str) -> str | None:
        """The site name if `device_id` is its site's gateway."""
        device = self.devices.get(device_id)
        if device is None or device.site is None:
            return None
        gateway = self.gateways.get((device.customer, device.site))
        return device.site if gateway == device_id else None
