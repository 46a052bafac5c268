"""Cross-reference rules for calendars, priority rules, maintenance windows and silences.

`check_correlation` is called by `validate.resolve` after the devices are
expanded; like the other rules it collects every problem as a (key path,
message) pair instead of raising, so `check-config` reports them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from monitord.config.model import Config, Customer, MaintenanceWindow, Silence
from monitord.config.yamlsource import Path_
from monitord.inventory import Device

Found = Iterator[tuple[Path_, str]]


def check_correlation(config: Config, devices: Mapping[str, Device]) -> list[tuple[Path_, str]]:
    """Every located problem in the calendar, priority, maintenance and silence config."""
    customers = {c.name: c for c in config.customers}
    return [
        *_check_holidays(config.customers),
        *_check_priority_rules(config, customers),
        *_check_maintenance(config.maintenance, customers, devices),
        *_check_silences(config.silences, customers, devices),
    ]


def _check_holidays(customers: tuple[Customer, ...]) -> Found:
    for i, customer in enumerate(customers):
        contract = customer.contract
        if contract.holidays_country:
            problem = _holidays_problem(contract.holidays_country, contract.holidays_subdivision)
            if problem is not None:
                yield ("customers", i, "contract", problem[0]), problem[1]


@lru_cache(maxsize=256)
def _holidays_problem(country: str, subdivision: str | None) -> tuple[str, str] | None:
    """(key, message) if the `holidays` package lacks `country` or its `subdivision`."""
    import holidays

    try:
        holidays.country_holidays(country.upper())
    except NotImplementedError:
        return (
            "holidays_country",
            f"unknown holidays country {country!r} (an ISO 3166 code such as 'CZ', or '' for none)",
        )
    try:
        if subdivision is not None:
            holidays.country_holidays(country.upper(), subdiv=subdivision)
    except NotImplementedError:
        known = holidays.list_supported_countries().get(country.upper()) or ["none"]
        return (
            "holidays_subdivision",
            f"unknown subdivision {subdivision!r} of {country!r} (known: {', '.join(known)})",
        )
    return None


def _check_priority_rules(config: Config, customers: Mapping[str, Customer]) -> Found:
    rules = config.priority_rules or ()
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        for j, name in enumerate(rule.match.customers):
            if name not in customers:
                yield ("priority_rules", i, "match", "customers", j), f"unknown customer {name!r}"
        if rule.priority is None:
            continue
        if catch_all is not None:
            # The first matching priority rule wins, so this one can never apply.
            yield (
                ("priority_rules", i),
                f"rule is never used: priority_rules[{catch_all}] before it matches everything",
            )
        elif rule.match.model_dump(exclude_defaults=True) == {}:
            catch_all = i


def _check_maintenance(
    windows: tuple[MaintenanceWindow, ...],
    customers: Mapping[str, Customer],
    devices: Mapping[str, Device],
) -> Found:
    seen: set[tuple[str | None, str]] = set()
    for i, window in enumerate(windows):
        path: Path_ = ("maintenance", i)
        if (window.customer, window.name) in seen:
            yield (*path, "name"), f"duplicate maintenance window {window.name!r}"
        seen.add((window.customer, window.name))
        if window.customer is not None and window.customer not in customers:
            yield (*path, "customer"), f"unknown customer {window.customer!r}"
            continue
        for j, site in enumerate(window.sites):
            problem = _site_problem(site, window.customer, customers)
            if problem:
                yield (*path, "sites", j), problem
        for j, device in enumerate(window.devices):
            problem = _device_problem(device, window.customer, devices)
            if problem:
                yield (*path, "devices", j), problem


def _site_problem(ref: str, customer: str | None, customers: Mapping[str, Customer]) -> str:
    owner, _, site = ref.rpartition("/")
    owner = owner or customer or ""
    if not owner:
        return f"site {ref!r} needs its customer: write 'customer/{ref}' or set 'customer'"
    if owner not in customers:
        return f"unknown customer {owner!r}"
    if customer and owner != customer:
        return f"site {ref!r} is not a site of {customer!r}"
    if site not in {s.name for s in customers[owner].sites}:
        return f"unknown site {site!r} of {owner!r}"
    return ""


def _device_problem(ref: str, customer: str | None, devices: Mapping[str, Device]) -> str:
    if "/" not in ref and not customer:
        return f"device {ref!r} needs its customer: write 'customer/{ref}' or set 'customer'"
    device_id = ref if "/" in ref else f"{customer}/{ref}"
    if device_id not in devices:
        return f"unknown device {ref!r}"
    if customer and devices[device_id].customer != customer:
        return f"device {ref!r} is not a device of {customer!r}"
    return ""


def _check_silences(
    silences: tuple[Silence, ...],
    customers: Mapping[str, Customer],
    devices: Mapping[str, Device],
) -> Found:
    # Only equality matchers name things; a typo in one silences nothing, silently.
    known = {
        "customer": set(customers),
        "device_id": set(devices),
        "device": {d.name for d in devices.values()},
        "site": {s.name for c in customers.values() for s in c.sites},
    }
    for i, silence in enumerate(silences):
        for j, matcher in enumerate(silence.matchers):
            names = known.get(matcher.name)
            if (
                matcher.op == "="
                and names is not None
                and matcher.value
                and matcher.value not in names
            ):
                yield (
                    ("silences", i, "matchers", j),
                    f"no {matcher.name.replace('_', ' ')} is named {matcher.value!r}",
                )
