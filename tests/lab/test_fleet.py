"""The fleet generator: determinism, counts, shape invariants, JSON round trip."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitord.lab import CRITICALITIES, ROLES, Fleet, generate_fleet


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate_fleet()


def check_invariants(fleet: Fleet) -> None:
    """Everything that must hold for any generated fleet."""
    names = [d.name for d in fleet.devices]
    addresses = [d.address for d in fleet.devices]
    assert len(set(names)) == len(names)
    assert len(set(addresses)) == len(addresses)
    assert len({s.name for s in fleet.sites}) == len(fleet.sites)
    assert len({c.name for c in fleet.customers}) == len(fleet.customers)
    for customer in fleet.customers:
        assert customer.sites, customer.name
        for site in customer.sites:
            check_site(fleet, customer.name, site.name)


def check_site(fleet: Fleet, customer: str, site_name: str) -> None:
    site = fleet.site_by_name[site_name]
    network = ipaddress.ip_network(site.network)
    router = site.gateway
    assert router.role == "network" and router.parent is None
    assert router.name.startswith(f"{site_name}-rtr-")
    for device in site.devices:
        assert (device.customer, device.site) == (customer, site_name)
        assert device.role in ROLES and device.criticality in CRITICALITIES
        address = ipaddress.ip_address(device.address)
        assert address in ipaddress.ip_network("127.0.0.0/8")
        assert address not in ipaddress.ip_network("127.0.0.0/24")
        assert address in network
        # the parent chain stays in the site and ends at the router
        seen = {device.name}
        current = device
        while current.parent is not None:
            current = fleet.device_by_name[current.parent]
            assert current.site == site_name
            assert current.name not in seen, "parent cycle"
            seen.add(current.name)
        assert current is router


def test_default_fleet_counts(fleet: Fleet) -> None:
    assert len(fleet.devices) == 1200
    assert len(fleet.customers) == 40
    assert len(fleet.sites) == 100
    per_customer = [len(c.sites) for c in fleet.customers]
    assert min(per_customer) >= 1 and max(per_customer) <= 15
    assert sum(1 <= n <= 3 for n in per_customer) >= 30  # most have 1-3 sites
    assert max(per_customer) >= 10  # and a few have many
    after_hours = [c.after_hours for c in fleet.customers]
    assert any(after_hours) and not all(after_hours)


def test_default_fleet_invariants(fleet: Fleet) -> None:
    check_invariants(fleet)


def test_site_composition(fleet: Fleet) -> None:
    roles = Counter(d.role for d in fleet.devices)
    assert set(roles) == set(ROLES)
    assert roles["network"] >= len(fleet.sites)  # a router per site, plus switches
    assert roles["workstation"] > len(fleet.devices) / 2
    for site in fleet.sites:
        per_role = Counter(d.role for d in site.devices)
        assert sum(d.parent is None for d in site.devices) == 1
        assert per_role["server"] <= 4
        assert per_role["printer"] <= 1 and per_role["ups"] <= 1
    with_switch = [s for s in fleet.sites if any("-sw-" in d.name for d in s.devices)]
    assert len(with_switch) >= 0.8 * len(fleet.sites)


def test_example_names_and_addresses(fleet: Fleet) -> None:
    first = fleet.customers[0].sites[0]
    assert first.name == "acme-hq"
    assert first.gateway.name == "acme-hq-rtr-01"
    assert first.gateway.address == "127.10.1.1"
    assert first.network == "127.10.1.0/24"
    assert first.address  # a postal address
    assert fleet.customers[0].display_name.startswith("Acme ")
    assert all(d.os for d in fleet.devices)


def test_deterministic() -> None:
    assert generate_fleet() == generate_fleet()
    assert generate_fleet().to_json() == generate_fleet().to_json()
    assert generate_fleet(seed=2) != generate_fleet(seed=1)


def test_json_round_trip(fleet: Fleet) -> None:
    again = Fleet.from_json(fleet.to_json())
    assert again == fleet
    assert again.device_by_name["acme-hq-rtr-01"] == fleet.device_by_name["acme-hq-rtr-01"]


def test_from_json_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match="not a lab fleet document"):
        Fleet.from_json('{"customers": []}')


def test_scales_to_ten_thousand() -> None:
    big = generate_fleet(devices=10_000)
    assert len(big.devices) == 10_000
    assert len(big.customers) == 40
    check_invariants(big)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers must be between 1 and 246, got 0"),
        ({"customers": 300}, "customers must be between 1 and 246, got 300"),
        (
            {"devices": 10, "customers": 20},
            "devices must be between 20 (one router per site) and 5080, got 10",
        ),
        (
            {"devices": 30, "customers": 3, "sites": 40},
            "devices must be between 40 (one router per site) and 10160, got 30",
        ),
        (
            {"devices": 100_000, "customers": 1},
            "sites must be between 1 (one per customer) and 254, got 8333",
        ),
    ],
)
def test_impossible_sizes(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError) as info:
        generate_fleet(**kwargs)
    assert str(info.value) == message


@settings(max_examples=25, deadline=None)
@given(
    customers=st.integers(1, 60),
    per_customer=st.integers(1, 40),
    seed=st.integers(0, 2**32),
)
def test_any_size_keeps_invariants(customers: int, per_customer: int, seed: int) -> None:
    devices = customers * per_customer
    fleet = generate_fleet(devices=devices, customers=customers, seed=seed)
    assert len(fleet.devices) == devices
    assert len(fleet.customers) == customers
    check_invariants(fleet)
