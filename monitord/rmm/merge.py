"""The running inventory: the config's, plus the devices synced from RMM sources (pure).

A synced device gets the config's template checks for its role (the same
matching as a configured device: `validate.template_checks`) and, as its
implicit parent, its site's gateway: the configured one (`customers[].sites[].
gateway`), or a synthetic uplink device `<site>-uplink` at the address the RMM
gives for the site's link (its router, else the public address its devices
report), checked by `rmm.uplink_check`. So a site-link outage is one incident
with every synced device behind it, without hand-written dependencies. A site
with neither keeps its devices without a parent.

Devices of the config always win: a linked RMM device is not added again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from monitord.config.load import LoadedConfig
from monitord.config.model import Config, Customer, Site
from monitord.config.validate import template_checks
from monitord.inventory import CheckSpec, Device, Inventory
from monitord.rmm.mapping import ACTIVE, DeviceRow
from monitord.rmm.specs import SpecBook

RMM_TAG = "rmm"
UPLINK_TAG = "uplink"


def uplink_name(site: str) -> str:
    return f"{site}-uplink"


def merge(config: Config, base: Inventory, rows: Iterable[DeviceRow]) -> Inventory:
    """`base` (the config's inventory) with the active, unlinked `rows` added."""
    configured = {s for s in config.rmm.sources if s.enabled}
    sources = {s.name for s in configured}
    synced = [
        r
        for r in sorted(rows, key=lambda r: (r.source, r.rmm_id))
        if r.state == ACTIVE and not r.linked and r.device_id and r.source in sources
    ]
    if not synced:
        return base
    customers = dict(base.customers)
    for row in synced:
        if row.customer is not None and row.customer not in customers:
            # `unmapped_clients: create`: a customer named after the client.
            customers[row.customer] = Customer(name=row.customer, display_name=row.client_name)
    gateways, uplinks = _gateways(config, customers, synced, base)
    devices = dict(base.devices)
    added: list[Device] = []
    for row in synced:
        assert row.device_id is not None and row.customer is not None
        if row.device_id in devices:
            continue  # the first source wins; a config device always does
        device = Device(
            id=row.device_id,
            name=row.name,
            customer=row.customer,
            site=row.site,
            address=row.address,
            role=row.kind,
            os=row.os,
            criticality="normal",
            tags=(RMM_TAG,),
            parent_id=gateways.get((row.customer, row.site or "")),
            source=f"rmm:{row.source}",
        )
        devices[device.id] = device
        added.append(device)
    checks: list[CheckSpec] = list(base.checks)
    book = SpecBook(config.defaults)
    for uplink in uplinks:
        if uplink.id not in base.devices:
            devices[uplink.id] = uplink
            checks.append(book.spec(config.rmm.uplink_check, uplink.id))
    checks.extend(template_checks(config, added))
    for uplink in uplinks:
        assert uplink.site is not None
        customers[uplink.customer] = _with_gateway(
            customers[uplink.customer], uplink.site, uplink.name
        )
    return Inventory(customers=customers, devices=devices, checks=tuple(checks))


def _gateways(
    config: Config,
    customers: dict[str, Customer],
    synced: list[DeviceRow],
    base: Inventory,
) -> tuple[dict[tuple[str, str], str], list[Device]]:
    """(customer, site) → gateway device id, and the synthetic uplinks to add."""
    out: dict[tuple[str, str], str] = {}
    addresses: dict[tuple[str, str], Counter[str]] = {}
    sources: dict[tuple[str, str], str] = {}
    for row in synced:
        assert row.customer is not None
        key = (row.customer, row.site or "")
        configured = next((s for s in customers[row.customer].sites if s.name == row.site), None)
        if configured is not None and configured.gateway:
            out[key] = f"{row.customer}/{configured.gateway}"
        elif row.uplink:
            addresses.setdefault(key, Counter())[row.uplink] += 1
            sources.setdefault(key, row.source)
    uplinks: list[Device] = []
    for (customer, site), counts in sorted(addresses.items()):
        if (customer, site) in out or not site:
            continue
        address = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        device = Device(
            id=f"{customer}/{uplink_name(site)}",
            name=uplink_name(site),
            customer=customer,
            site=site,
            address=address,
            role="network",
            os="",
            criticality="high",
            tags=(RMM_TAG, UPLINK_TAG),
            parent_id=None,
            source=f"rmm:{sources[(customer, site)]}",
        )
        existing = base.devices.get(device.id)
        if existing is not None and existing.source == "config":
            out[(customer, site)] = existing.id  # configured under that name already
            continue
        out[(customer, site)] = device.id
        uplinks.append(device)
    return out, uplinks


def _with_gateway(customer: Customer, site: str, gateway: str) -> Customer:
    """`customer` with `site` (added if the config lacks it) having `gateway`."""
    sites = list(customer.sites)
    for i, s in enumerate(sites):
        if s.name == site:
            if s.gateway:
                return customer
            sites[i] = s.model_copy(update={"gateway": gateway})
            break
    else:
        sites.append(Site(name=site, gateway=gateway))
    return customer.model_copy(update={"sites": tuple(sites)})


def merged(loaded: LoadedConfig, rows: Iterable[DeviceRow]) -> LoadedConfig:
    """`loaded` with its inventory merged with the synced `rows`."""
    inventory = merge(loaded.config, loaded.inventory, rows)
    return loaded if inventory is loaded.inventory else replace(loaded, inventory=inventory)
