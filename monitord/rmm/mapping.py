"""An RMM inventory snapshot → the device mapping rows, conflicts and logons (pure).

Rules, in order, for each RMM device:

1. its client maps to a customer by `rmm.clients` (id or exact name); an unmapped
   client is skipped and reported (`unmapped_clients: skip`) or becomes a customer
   named after it (`create`) — never matched by similarity;
2. its site maps to a configured site by `rmm.sites`, or by name (the RMM site's
   name, slugged, *is* a configured site's name); otherwise it is an RMM-only site
   named after the RMM's (its devices get a synthetic uplink as parent, see merge);
3. a config device of that customer with the same name (case-insensitively) is the
   same device: the two are *linked* and the config's fields win;
4. otherwise it is a synced device `customer/name`. A config device of that name
   at *another* customer is reported as a conflict (the RMM device is still
   synced under its own customer, nothing is linked across customers); the same
   name twice in one customer of one source is a conflict too, and only the first
   (lowest RMM id) is synced;
5. a device gone from the RMM is kept (missing) and retired after
   `rmm.retire_after`; one coming back is active again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from monitord.config.model import Config
from monitord.inventory import Device
from monitord.sources.rmm.base import RmmClient, RmmDevice, RmmInventory, RmmSite

ACTIVE, UNMAPPED, CONFLICT, RETIRED = "active", "unmapped", "conflict", "retired"

_SLUG = re.compile(r"[^a-z0-9]+")
_UNSAFE = re.compile(r"[\s/\\]+")


def slug(text: str) -> str:
    """`"Head Office"` → `head-office`: a config-style name from an RMM label."""
    return _SLUG.sub("-", text.lower()).strip("-")[:60] or "unnamed"


def device_name(rmm_name: str) -> str:
    """The RMM's device name, safe inside ids (`customer/name/check`)."""
    return _UNSAFE.sub("-", rmm_name.strip()).strip("-")[:100] or "unnamed"


def username(user: str) -> str:
    """`DOMAIN\\Peter` or `peter@corp.example` → `peter` (for caller lookup)."""
    user = user.strip()
    user = user.rsplit("\\", 1)[-1]
    return user.split("@", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One row of `rmm_devices`: an RMM device and what monitord made of it."""

    source: str
    rmm_id: str
    device_id: str | None
    linked: bool
    state: str
    customer: str | None
    site: str | None
    name: str
    kind: str
    client_id: str
    client_name: str
    site_id: str
    site_name: str
    address: str
    external_ip: str
    os: str
    data: Mapping[str, Any]
    last_seen: float | None
    logged_on: str
    first_synced: float
    updated_at: float
    missing_since: float | None = None
    retired_at: float | None = None

    @property
    def uplink(self) -> str:
        """The address of the device's site link as the RMM knows it ("" if none)."""
        return str(self.data.get("uplink", ""))


@dataclass(frozen=True, slots=True)
class ConflictRow:
    kind: str  # other-customer | duplicate | unmapped-client
    subject: str  # the RMM device id (or client id)
    name: str
    customer: str | None
    other: str
    detail: str


@dataclass(frozen=True, slots=True)
class Logon:
    """A user seen logged on to a device (`user` ""  ends the previous one)."""

    rmm_id: str
    device_id: str | None
    user: str


@dataclass
class SyncPlan:
    rows: list[DeviceRow] = field(default_factory=list)
    conflicts: list[ConflictRow] = field(default_factory=list)
    logons: list[Logon] = field(default_factory=list)  # changed users only
    seen_users: list[str] = field(default_factory=list)  # rmm ids whose user is unchanged
    counts: Counter[str] = field(default_factory=Counter)


class Mapper:
    """Maps one source's RMM records onto the config (built per sync, cheap)."""

    def __init__(self, source: str, config: Config) -> None:
        self.source = source
        self.config = config
        self.rmm = config.rmm
        self.customers = {c.name: c for c in config.customers}
        # customer → lower-case device name → device id, of the config's own devices
        self.by_name: dict[str, dict[str, str]] = {}
        self.name_owners: dict[str, list[str]] = {}  # lower-case name → device ids

    def use_devices(self, devices: Iterable[Device]) -> None:
        for d in devices:
            if d.source != "config":
                continue
            self.by_name.setdefault(d.customer, {})[d.name.lower()] = d.id
            self.name_owners.setdefault(d.name.lower(), []).append(d.id)

    def customer(self, client: RmmClient) -> str | None:
        for entry in self.rmm.clients:
            if entry.matches(self.source, client.id, client.name):
                return entry.customer
        if self.rmm.unmapped_clients == "create":
            return slug(client.name)
        return None

    def site(self, customer: str, site: RmmSite | None) -> str:
        if site is None:
            return "unknown-site"
        for entry in self.rmm.sites:
            if entry.matches(self.source, customer, site.id, site.name):
                return entry.site
        return slug(site.name)


def plan_sync(
    mapper: Mapper,
    snapshot: RmmInventory,
    existing: Mapping[str, DeviceRow],
    now: float,
) -> SyncPlan:
    """The rows, conflicts and logon changes one inventory snapshot calls for."""
    plan = SyncPlan()
    clients = {c.id: c for c in snapshot.clients}
    sites = {s.id: s for s in snapshot.sites}
    uplinks = _site_uplinks(snapshot)
    claimed: dict[str, str] = {}  # device id → rmm id (duplicates within this source)
    reported_clients: set[str] = set()
    for dev in sorted(snapshot.devices, key=lambda d: _id_key(d.id)):
        client = clients.get(dev.client_id, RmmClient(dev.client_id, dev.client_id))
        customer = mapper.customer(client)
        old = existing.get(dev.id)
        row = _row(mapper.source, dev, client, sites.get(dev.site_id), old, now)
        row = replace(row, data={**row.data, "uplink": uplinks.get(dev.site_id, "")})
        if customer is None:
            if client.id not in reported_clients:
                reported_clients.add(client.id)
                plan.conflicts.append(
                    ConflictRow(
                        "unmapped-client",
                        client.id,
                        client.name,
                        None,
                        "",
                        f"RMM client {client.name!r} (id {client.id}) maps to no customer "
                        "(rmm.clients); its devices and failures are skipped",
                    )
                )
            plan.rows.append(replace(row, state=UNMAPPED, device_id=None, customer=None))
            plan.counts["unmapped"] += 1
            continue
        row = replace(row, customer=customer, site=mapper.site(customer, sites.get(dev.site_id)))
        row = _place(mapper, row, claimed, plan)
        plan.rows.append(row)
        _count(plan, old, row)
        _logon(plan, old, row)
    _missing(mapper, snapshot, existing, now, plan)
    return plan


def _id_key(rmm_id: str) -> tuple[int, str]:
    # Numeric ids in numeric order (N-sight), others as text (Tactical).
    return (int(rmm_id), "") if rmm_id.isdigit() else (1 << 62, rmm_id)


def _row(
    source: str,
    dev: RmmDevice,
    client: RmmClient,
    site: RmmSite | None,
    old: DeviceRow | None,
    now: float,
) -> DeviceRow:
    address = dev.addresses[0] if dev.addresses else dev.name
    return DeviceRow(
        source=source,
        rmm_id=dev.id,
        device_id=None,
        linked=False,
        state=ACTIVE,
        customer=None,
        site=None,
        name=device_name(dev.name),
        kind=dev.kind,
        client_id=client.id,
        client_name=client.name,
        site_id=dev.site_id,
        site_name=site.name if site else "",
        address=address[:255],
        external_ip=dev.external_ip[:64],
        os=dev.os,
        data={
            "rmm_name": dev.name,
            "addresses": list(dev.addresses),
            "description": dev.description,
            "extra": dict(dev.extra),
        },
        last_seen=dev.last_seen,
        logged_on=dev.logged_on_user,
        first_synced=old.first_synced if old else now,
        updated_at=now,
    )


def _place(mapper: Mapper, row: DeviceRow, claimed: dict[str, str], plan: SyncPlan) -> DeviceRow:
    """Link to a config device, sync as its own, or hold back as a conflict."""
    assert row.customer is not None
    own = mapper.by_name.get(row.customer, {}).get(row.name.lower())
    if own is not None:
        return replace(row, device_id=own, linked=True)
    device_id = f"{row.customer}/{row.name}"
    first = claimed.get(device_id.lower())
    if first is not None:
        plan.conflicts.append(
            ConflictRow(
                "duplicate",
                row.rmm_id,
                row.name,
                row.customer,
                first,
                f"{row.name!r} is also RMM device {first} of {row.customer!r}; "
                "only the first is synced",
            )
        )
        return replace(row, state=CONFLICT)
    claimed[device_id.lower()] = row.rmm_id
    others = [o for o in mapper.name_owners.get(row.name.lower(), ()) if o != device_id]
    if others:
        plan.conflicts.append(
            ConflictRow(
                "other-customer",
                row.rmm_id,
                row.name,
                row.customer,
                ", ".join(others),
                f"{row.name!r} is in the RMM under {row.client_name!r} → {row.customer!r}, "
                f"but the config has {', '.join(others)}; synced as {device_id}, not linked",
            )
        )
    return replace(row, device_id=device_id)


def _count(plan: SyncPlan, old: DeviceRow | None, row: DeviceRow) -> None:
    if row.state == CONFLICT:
        plan.counts["conflict"] += 1
    elif old is None or old.state in (RETIRED, UNMAPPED, CONFLICT):
        plan.counts["linked" if row.linked else "added"] += 1
    elif _changed(old, row):
        plan.counts["updated"] += 1


def _changed(old: DeviceRow, new: DeviceRow) -> bool:
    fields = ("device_id", "customer", "site", "name", "kind", "address", "os", "linked")
    return any(getattr(old, f) != getattr(new, f) for f in fields) or old.uplink != new.uplink


def _logon(plan: SyncPlan, old: DeviceRow | None, row: DeviceRow) -> None:
    before = old.logged_on if old is not None and old.state != RETIRED else ""
    if row.logged_on != before:
        plan.logons.append(Logon(row.rmm_id, row.device_id, row.logged_on))
    elif row.logged_on:
        plan.seen_users.append(row.rmm_id)


def _missing(
    mapper: Mapper,
    snapshot: RmmInventory,
    existing: Mapping[str, DeviceRow],
    now: float,
    plan: SyncPlan,
) -> None:
    present = {d.id for d in snapshot.devices}
    grace = mapper.rmm.retire_after
    for rmm_id, old in existing.items():
        if rmm_id in present or old.state == RETIRED:
            continue
        since = old.missing_since if old.missing_since is not None else now
        if now - since >= grace:
            plan.rows.append(replace(old, state=RETIRED, retired_at=now, missing_since=since))
            plan.counts["retired"] += 1
            if old.logged_on:
                plan.logons.append(Logon(rmm_id, old.device_id, ""))
        elif old.missing_since is None:
            plan.rows.append(replace(old, missing_since=now))
            plan.counts["missing"] += 1


def _site_uplinks(snapshot: RmmInventory) -> dict[str, str]:
    """Site id → the address of its link: the RMM's router address, else the
    public address most of its devices report (the site's internet line)."""
    out = {s.id: s.routers[0] for s in snapshot.sites if s.routers and s.routers[0]}
    public: dict[str, Counter[str]] = {}
    for dev in snapshot.devices:
        if dev.external_ip and dev.site_id not in out:
            public.setdefault(dev.site_id, Counter())[dev.external_ip] += 1
    for site_id, counts in public.items():
        out[site_id] = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    return out
