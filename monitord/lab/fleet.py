"""The lab's simulated MSP fleet: frozen value types, a seeded generator, JSON.

`generate_fleet()` is a pure function of its arguments: the same arguments give
the same fleet, byte for byte, on every run and machine (it only uses its own
`random.Random(seed)`). The default is the demo fleet: 40 customers, 100 sites
(1 to 15 per customer, most with 1 to 3), exactly 1,200 devices.

Addresses: device n (1-based) of site s (1-based) of customer c (0-based) is
`127.{10 + c}.{s}.{n}`; the router is `.1`. Nothing is ever in 127.0.0.0/24,
which belongs to real services on this machine. Linux routes the whole of
127/8 to `lo`, so the addresses need no set-up to bind or reach.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast, get_args

Role = Literal["server", "workstation", "network", "printer", "ups", "other"]
Criticality = Literal["low", "normal", "high"]
ROLES: tuple[Role, ...] = get_args(Role)
CRITICALITIES: tuple[Criticality, ...] = get_args(Criticality)

FORMAT = "monitord-lab-fleet/1"
FIRST_OCTET = 10  # customer c lives in 127.{FIRST_OCTET + c}.0.0/16
MAX_CUSTOMERS = 255 - FIRST_OCTET + 1
MAX_SITES_PER_CUSTOMER = 254
MAX_DEVICES_PER_SITE = 254


@dataclass(frozen=True, slots=True)
class LabDevice:
    """One simulated device. `name` is unique across the fleet; `parent` is the
    name of the device it depends on (None only for a site's router)."""

    name: str
    customer: str
    site: str
    role: Role
    os: str
    criticality: Criticality
    tags: tuple[str, ...]
    parent: str | None
    address: str


@dataclass(frozen=True, slots=True)
class LabSite:
    """A customer location. `name` is unique across the fleet (`acme-hq`);
    `address` is a postal address; `network` is the site's /24 on loopback.
    The first device is always the router, the site's gateway."""

    name: str
    customer: str
    address: str
    network: str
    devices: tuple[LabDevice, ...]

    @property
    def gateway(self) -> LabDevice:
        """The site's router: parent (directly or via switches) of every other device."""
        return self.devices[0]


@dataclass(frozen=True, slots=True)
class LabCustomer:
    """A customer. `after_hours` says whether the contract includes out-of-hours cover."""

    name: str
    display_name: str
    after_hours: bool
    sites: tuple[LabSite, ...]

    def devices(self) -> Iterator[LabDevice]:
        """Every device of every site of this customer, in fleet order."""
        for site in self.sites:
            yield from site.devices


@dataclass(frozen=True)
class Fleet:
    """The whole simulated fleet. Lookups are indexed on first use."""

    customers: tuple[LabCustomer, ...]

    @cached_property
    def devices(self) -> tuple[LabDevice, ...]:
        """All devices in fleet order (customer, site, then position in the site)."""
        return tuple(d for c in self.customers for d in c.devices())

    @cached_property
    def sites(self) -> tuple[LabSite, ...]:
        """All sites in fleet order."""
        return tuple(s for c in self.customers for s in c.sites)

    @cached_property
    def device_by_name(self) -> dict[str, LabDevice]:
        return {d.name: d for d in self.devices}

    @cached_property
    def site_by_name(self) -> dict[str, LabSite]:
        return {s.name: s for s in self.sites}

    @cached_property
    def customer_by_name(self) -> dict[str, LabCustomer]:
        return {c.name: c for c in self.customers}

    def to_json(self) -> str:
        """Serialise to JSON; `Fleet.from_json(f.to_json()) == f` always holds."""
        return json.dumps(
            {"format": FORMAT, "customers": [_customer_dict(c) for c in self.customers]}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Fleet:
        """Parse `to_json()` output. Raises ValueError on another format or a bad role."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a lab fleet document (expected format {FORMAT!r})")
        return cls(tuple(_customer_from(c) for c in doc["customers"]))


def _customer_dict(c: LabCustomer) -> dict[str, Any]:
    sites = [
        {
            "name": s.name,
            "address": s.address,
            "network": s.network,
            "devices": [_device_dict(d) for d in s.devices],
        }
        for s in c.sites
    ]
    return {
        "name": c.name,
        "display_name": c.display_name,
        "after_hours": c.after_hours,
        "sites": sites,
    }


def _device_dict(d: LabDevice) -> dict[str, Any]:
    return {
        "name": d.name,
        "customer": d.customer,
        "site": d.site,
        "role": d.role,
        "os": d.os,
        "criticality": d.criticality,
        "tags": list(d.tags),
        "parent": d.parent,
        "address": d.address,
    }


def _customer_from(c: dict[str, Any]) -> LabCustomer:
    sites = tuple(
        LabSite(
            name=s["name"],
            customer=c["name"],
            address=s["address"],
            network=s["network"],
            devices=tuple(_device_from(d) for d in s["devices"]),
        )
        for s in c["sites"]
    )
    return LabCustomer(c["name"], c["display_name"], bool(c["after_hours"]), sites)


def _device_from(d: dict[str, Any]) -> LabDevice:
    if d["role"] not in ROLES:
        raise ValueError(f"device {d['name']!r}: unknown role {d['role']!r}")
    if d["criticality"] not in CRITICALITIES:
        raise ValueError(f"device {d['name']!r}: unknown criticality {d['criticality']!r}")
    return LabDevice(
        name=d["name"],
        customer=d["customer"],
        site=d["site"],
        role=cast(Role, d["role"]),
        os=d["os"],
        criticality=cast(Criticality, d["criticality"]),
        tags=tuple(d["tags"]),
        parent=d["parent"],
        address=d["address"],
    )


def generate_fleet(
    devices: int = 1200, customers: int = 40, seed: int = 1, *, sites: int | None = None
) -> Fleet:
    """Generate a fleet of exactly `devices` devices for `customers` customers.

    `sites` defaults to about one per 12 devices (at least one per customer).
    Raises ValueError when the numbers cannot fit the address plan: at most
    246 customers, 254 sites per customer and 254 devices per site.
    """
    n_sites = sites if sites is not None else max(customers, round(devices / 12))
    _check_sizes(devices, customers, n_sites)
    rng = random.Random(seed)
    per_customer = _sites_per_customer(rng, customers, n_sites)
    hq_flags = [i == 0 for n in per_customer for i in range(n)]
    sizes = _site_sizes(rng, hq_flags, devices)
    names = _customer_names(customers)
    out: list[LabCustomer] = []
    pos = 0
    for ci, (cname, count) in enumerate(zip(names, per_customer, strict=True)):
        labels = _site_labels(rng, count)
        built = tuple(
            _build_site(rng, ci, si, cname, labels[si], sizes[pos + si]) for si in range(count)
        )
        pos += count
        display = f"{cname.capitalize()} {rng.choice(_LEGAL_FORMS)}"
        out.append(LabCustomer(cname, display, rng.random() < 0.3, built))
    return Fleet(tuple(out))


def _check_sizes(devices: int, customers: int, sites: int) -> None:
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS}, got {customers}")
    if not customers <= sites <= customers * MAX_SITES_PER_CUSTOMER:
        raise ValueError(
            f"sites must be between {customers} (one per customer) and "
            f"{customers * MAX_SITES_PER_CUSTOMER}, got {sites}"
        )
    if not sites <= devices <= sites * MAX_DEVICES_PER_SITE:
        raise ValueError(
            f"devices must be between {sites} (one router per site) and "
            f"{sites * MAX_DEVICES_PER_SITE}, got {devices}"
        )


def _sites_per_customer(rng: random.Random, customers: int, sites: int) -> list[int]:
    """Skewed: every customer has one site; the extra ones follow 1/rank (Zipf),
    so a few customers have many sites and most have one to three."""
    cap = min(MAX_SITES_PER_CUSTOMER, max(15, math.ceil(3 * sites / customers)))
    extra = sites - customers
    total_w = sum(1 / (k + 1) for k in range(customers))
    by_rank = [min(cap, 1 + int(extra / (k + 1) / total_w)) for k in range(customers)]
    left = sites - sum(by_rank)
    k = 0
    while left > 0:  # cap * customers >= sites, so this ends
        if by_rank[k % customers] < cap:
            by_rank[k % customers] += 1
            left -= 1
        k += 1
    ranks = list(range(customers))
    rng.shuffle(ranks)
    return [by_rank[r] for r in ranks]


def _site_sizes(rng: random.Random, hq: list[bool], devices: int) -> list[int]:
    """Split `devices` over the sites (head offices weigh ~2.5x a branch); every
    site gets at least its router and at most MAX_DEVICES_PER_SITE."""
    weights = [rng.lognormvariate(0, 0.5) * (2.5 if h else 1.0) for h in hq]
    sizes = [1] * len(hq)
    left = devices - len(hq)
    while left > 0:
        open_ = [i for i, s in enumerate(sizes) if s < MAX_DEVICES_PER_SITE]
        total = sum(weights[i] for i in open_)
        shares = {i: left * weights[i] / total for i in open_}
        for i in open_:
            sizes[i] = min(MAX_DEVICES_PER_SITE, sizes[i] + int(shares[i]))
        left = devices - sum(sizes)
        # largest remainders first, one device each, so the total is exact
        for i in sorted(open_, key=lambda i: shares[i] % 1, reverse=True)[:left]:
            if sizes[i] < MAX_DEVICES_PER_SITE:
                sizes[i] += 1
        left = devices - sum(sizes)
    return sizes


def _customer_names(n: int) -> list[str]:
    return [
        _CUSTOMERS[i % len(_CUSTOMERS)]
        + (str(i // len(_CUSTOMERS) + 1) if i >= len(_CUSTOMERS) else "")
        for i in range(n)
    ]


def _site_labels(rng: random.Random, count: int) -> list[str]:
    """`hq` then branch towns; a repeated town gets a number (`brno2`)."""
    labels = ["hq"]
    seen: dict[str, int] = {}
    for _ in range(count - 1):
        town = rng.choice(_TOWNS)
        seen[town] = seen.get(town, 0) + 1
        labels.append(town if seen[town] == 1 else f"{town}{seen[town]}")
    return labels


def _build_site(
    rng: random.Random, ci: int, si: int, customer: str, label: str, size: int
) -> LabSite:
    name = f"{customer}-{label}"
    prefix = f"127.{FIRST_OCTET + ci}.{si + 1}"
    town = rng.choice(_TOWNS) if label == "hq" else label.rstrip("0123456789")
    address = f"{rng.choice(_STREETS)} {rng.randint(1, 180)}, {town.capitalize()}"
    devices = _SiteBuilder(rng, customer, name, prefix, is_hq=label == "hq").build(size)
    return LabSite(name, customer, address, f"{prefix}.0/24", devices)


class _SiteBuilder:
    """Composes one site of exactly `size` devices: router, switches, servers,
    UPS, printer, other, then workstations fill the rest."""

    def __init__(
        self, rng: random.Random, customer: str, site: str, prefix: str, *, is_hq: bool
    ) -> None:
        self.rng, self.customer, self.site, self.prefix, self.is_hq = (
            rng,
            customer,
            site,
            prefix,
            is_hq,
        )
        self.out: list[LabDevice] = []
        self.counts: dict[str, int] = {}

    def add(
        self, kind: str, role: Role, parent: str | None, crit: Criticality, tags: tuple[str, ...]
    ) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        name = f"{self.site}-{kind}-{self.counts[kind]:02d}"
        os_name = self.rng.choice(_OS[kind])
        address = f"{self.prefix}.{len(self.out) + 1}"
        self.out.append(
            LabDevice(name, self.customer, self.site, role, os_name, crit, tags, parent, address)
        )
        return name

    def build(self, size: int) -> tuple[LabDevice, ...]:
        rng = self.rng
        router = self.add("rtr", "network", None, "high", _pick_tags(rng, ("gateway",), ("vpn",)))
        left = size - 1
        access = [router]
        if left >= 3 or (left >= 1 and rng.random() < 0.5):
            core = self.add("sw", "network", router, "high", ("core",))
            left -= 1
            access = [core]
            for _ in range(left // 40):  # big sites: an access switch per ~40 ports
                access.append(self.add("sw", "network", core, "normal", ("access", "poe")))
                left -= 1
        left = self._infra(left, access[0])
        for i in range(left):
            self._workstation(access[i % len(access)])
        return tuple(self.out)

    def _infra(self, left: int, parent: str) -> int:
        rng = self.rng
        servers = min(left, rng.choice((1, 2, 2, 3, 4) if self.is_hq else (0, 0, 0, 1, 2)))
        for i in range(servers):
            crit: Criticality = "high" if i == 0 or rng.random() < 0.4 else "normal"
            self.add("srv", "server", parent, crit, (_SERVER_JOBS[i % len(_SERVER_JOBS)],))
        left -= servers
        for kind, role, chance, crit in _EXTRAS:
            if left > 0 and rng.random() < chance:
                self.add(kind, role, parent, crit, ())
                left -= 1
        return left

    def _workstation(self, parent: str) -> None:
        roll = self.rng.random()
        crit: Criticality = "high" if roll < 0.03 else "normal" if roll < 0.15 else "low"
        tags: tuple[str, ...] = ("vip",) if crit == "high" else ()
        if self.rng.random() < 0.3:
            tags += ("laptop",)
        self.add("ws", "workstation", parent, crit, tags)


def _pick_tags(
    rng: random.Random, always: tuple[str, ...], maybe: tuple[str, ...]
) -> tuple[str, ...]:
    return always + tuple(t for t in maybe if rng.random() < 0.5)


_EXTRAS: tuple[tuple[str, Role, float, Criticality], ...] = (
    ("ups", "ups", 0.45, "normal"),
    ("prn", "printer", 0.5, "low"),
    ("cam", "other", 0.15, "low"),
)
_SERVER_JOBS = ("dc", "file", "app", "backup")
_OS: dict[str, tuple[str, ...]] = {
    "rtr": ("routeros 7.14", "fortios 7.2", "ios-xe 17.9", "pfsense 2.7"),
    "sw": ("arubaos-cx 10.13", "ios 15.2", "routeros 7.14", "procurve k.16"),
    "srv": (
        "windows server 2022",
        "windows server 2022",
        "windows server 2019",
        "ubuntu 22.04",
        "debian 12",
        "esxi 8.0",
    ),
    "ws": ("windows 11", "windows 11", "windows 11", "windows 10", "windows 10", "macos 14"),
    "prn": ("hp futuresmart 5", "ricoh smart 3", "brother fw 1.4"),
    "ups": ("apc nmc 7.0", "eaton gn3 2.1"),
    "cam": ("hikvision 5.7", "synology surveillance 9"),
}
_LEGAL_FORMS = ("s.r.o.", "a.s.", "Ltd", "GmbH", "Inc")
_STREETS = ("Hlavni", "Namesti Miru", "Nadrazni", "Skolni", "Husova", "Palackeho", "Polni")
_TOWNS = (
    "praha", "brno", "ostrava", "plzen", "liberec", "olomouc", "budejovice", "hradec",
    "usti", "pardubice", "zlin", "kladno", "most", "opava", "jihlava", "teplice",
    "decin", "chomutov", "prerov", "trebic", "tabor", "znojmo", "pribram", "cheb",
    "kolin", "trutnov", "pisek", "kromeriz", "vsetin", "beroun",
)  # fmt: skip
_CUSTOMERS = (
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wayne", "stark",
    "wonka", "tyrell", "cyberdyne", "soylent", "gringotts", "oceanic", "monarch",
    "sterling", "piedpiper", "aperture", "blackmesa", "dunder", "krusty", "nakatomi",
    "oscorp", "prestige", "rekall", "sirius", "tricell", "virtucon", "weyland",
    "yoyodyne", "massive", "bluth", "cogswell", "spacely", "duff", "gekko", "lacroix",
    "ollivander", "zorg", "kerbal", "wernham", "fringe", "contoso", "fabrikam",
    "northwind", "tailspin", "litware", "adatum",
)  # fmt: skip
