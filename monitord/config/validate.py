"""Cross-reference rules and resolution of the config into an `Inventory`.

Every rule appends to one error list instead of raising, so `check-config`
reports all problems at once, each with the key path it concerns.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from checks.base import CheckType, load_check_class
from monitord.config.correlation import check_correlation
from monitord.config.model import (
    CheckDef,
    Config,
    DeviceDef,
    Selector,
    Template,
    TicketSystemDef,
    TrapsConfig,
)
from monitord.config.oncall import check_oncall
from monitord.config.paging import check_paging
from monitord.config.rmm import check_rmm
from monitord.config.tickets import check_ticket_policy
from monitord.config.types import resolve_secret
from monitord.config.yamlsource import Path_
from monitord.inventory import CheckSpec, Device, Inventory


@dataclass(frozen=True)
class Problem:
    path: Path_
    message: str


class _Resolver:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.problems: list[Problem] = []
        self.devices: dict[str, Device] = {}
        self.device_paths: dict[str, Path_] = {}
        self.device_specs: dict[str, DeviceDef] = {}
        self.kinds: dict[str, type[CheckType] | None] = {}

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(path, message))

    # customers and sites -------------------------------------------------
    def check_customers(self) -> None:
        seen: set[str] = set()
        for i, customer in enumerate(self.config.customers):
            if customer.name in seen:
                self.error(("customers", i, "name"), f"duplicate customer {customer.name!r}")
            seen.add(customer.name)
            sites: set[str] = set()
            for j, site in enumerate(customer.sites):
                if site.name in sites:
                    self.error(
                        ("customers", i, "sites", j, "name"), f"duplicate site {site.name!r}"
                    )
                sites.add(site.name)

    # devices ---------------------------------------------------------------
    def expand_devices(self) -> None:
        customers = {c.name: c for c in self.config.customers}
        for i, spec in enumerate(self.config.devices):
            path: Path_ = ("devices", i)
            customer = customers.get(spec.customer)
            if customer is None:
                self.error((*path, "customer"), f"unknown customer {spec.customer!r}")
                continue
            if spec.site and spec.site not in {s.name for s in customer.sites}:
                self.error((*path, "site"), f"unknown site {spec.site!r} of {customer.name!r}")
                continue
            for name, address in self._series(spec, path):
                device_id = f"{spec.customer}/{name}"
                if device_id in self.devices:
                    self.error((*path, "name"), f"duplicate device {name!r} in {spec.customer!r}")
                    continue
                self.devices[device_id] = Device(
                    id=device_id,
                    name=name,
                    customer=spec.customer,
                    site=spec.site,
                    address=address,
                    role=spec.role.value,
                    os=spec.os,
                    criticality=spec.criticality.value,
                    tags=spec.tags,
                    parent_id=spec.parent,
                )
                self.device_paths[device_id] = path
                self.device_specs[device_id] = spec

    def _series(self, spec: DeviceDef, path: Path_) -> Iterator[tuple[str, str]]:
        if spec.count is None:
            yield spec.name, spec.address
            return
        try:
            first = ipaddress.ip_address(spec.address)
        except ValueError:
            self.error((*path, "address"), f"a series needs an IP address, got {spec.address!r}")
            return
        for n in range(1, spec.count + 1):
            try:
                name = spec.name.format(n=n)
            except (KeyError, IndexError, ValueError) as exc:
                self.error((*path, "name"), f"bad name pattern {spec.name!r}: {exc}")
                return
            yield name, str(first + (n - 1))

    def resolve_parents(self) -> None:
        gateways: dict[tuple[str, str], str] = {}
        for i, customer in enumerate(self.config.customers):
            for j, site in enumerate(customer.sites):
                if not site.gateway:
                    continue
                gateway_id = self._ref(customer.name, site.gateway)
                if gateway_id is None:
                    self.error(
                        ("customers", i, "sites", j, "gateway"), f"unknown device {site.gateway!r}"
                    )
                    continue
                gateways[(customer.name, site.name)] = gateway_id
        for device_id, device in list(self.devices.items()):
            parent = device.parent_id
            if parent is not None:
                resolved = self._ref(device.customer, parent)
                if resolved is None:
                    self.error(
                        (*self.device_paths[device_id], "parent"), f"unknown device {parent!r}"
                    )
                parent = resolved
            elif device.site is not None:
                # Devices at a site hang off its gateway unless told otherwise, so a
                # dead site router is one problem, not one per device behind it.
                gateway = gateways.get((device.customer, device.site))
                parent = gateway if gateway != device_id else None
            self.devices[device_id] = _replace_parent(device, parent)

    def _ref(self, customer: str, ref: str) -> str | None:
        for candidate in (ref, f"{customer}/{ref}"):
            if candidate in self.devices and "/" in candidate:
                return candidate
        return None

    def check_cycles(self) -> None:
        reported: set[str] = set()
        for start in self.devices:
            chain: list[str] = []
            node: str | None = start
            while node is not None and node not in chain:
                chain.append(node)
                node = self.devices[node].parent_id if node in self.devices else None
            if node is None or node in reported:
                continue
            cycle = [*chain[chain.index(node) :], node]
            reported.update(cycle)
            self.error(
                (*self.device_paths[node], "parent"), "dependency cycle: " + " -> ".join(cycle)
            )

    # checks ------------------------------------------------------------------
    def build_checks(self) -> tuple[CheckSpec, ...]:
        checks: list[CheckSpec] = []
        paths: dict[str, Path_] = {}
        templates = self._templates()
        for device_id, device in self.devices.items():
            path = self.device_paths[device_id]
            spec = self.device_specs[device_id]
            defs: list[tuple[Path_, CheckDef]] = []
            for t_index, template in templates:
                if _matches(template.match, device):
                    defs.extend(
                        (("templates", t_index, "checks", k), c)
                        for k, c in enumerate(template.checks)
                    )
            defs.extend(((*path, "checks", k), c) for k, c in enumerate(spec.checks))
            names: dict[str, CheckSpec] = {}
            for def_path, check in defs:
                built = self._check(device, def_path, check)
                if built is None:
                    continue
                # A device's own check replaces a template check of the same name.
                names[built.name] = built
                paths[built.id] = def_path
            checks.extend(names.values())
        self._check_exclusive(checks, paths)
        return tuple(checks)

    def _check_exclusive(self, checks: list[CheckSpec], paths: dict[str, Path_]) -> None:
        # A kind's params may hold a value only one check can own (a heartbeat's
        # token): `exclusive_key() -> (field, key)`, the key safe to print or compare.
        owners: dict[tuple[str, str], str] = {}
        for spec in checks:
            claim = getattr(spec.params, "exclusive_key", None)
            if claim is None:
                continue
            field, key = claim()
            owner = owners.setdefault((spec.kind, key), spec.id)
            if owner != spec.id:
                self.error(
                    (*paths[spec.id], field),
                    f"already used by check {owner!r}; every {spec.kind} check needs its own",
                )

    def _templates(self) -> list[tuple[int, Template]]:
        seen: set[str] = set()
        out = []
        for i, template in enumerate(self.config.templates):
            if template.name in seen:
                self.error(("templates", i, "name"), f"duplicate template {template.name!r}")
            seen.add(template.name)
            out.append((i, template))
        return out

    def _kind(self, kind: str) -> type[CheckType] | None:
        if kind not in self.kinds:
            try:
                self.kinds[kind] = load_check_class(kind)
            except KeyError:
                self.kinds[kind] = None
            except ImportError as exc:
                # A registered kind whose module cannot load (a missing optional
                # dependency) is a config problem at the check that uses it.
                self.problems.append(
                    Problem(("checks",), f"check type {kind!r} unavailable: {exc}")
                )
                self.kinds[kind] = None
        return self.kinds[kind]

    def _secrets(
        self, cls: type[CheckType], params: dict[str, Any], path: Path_
    ) -> dict[str, Any] | None:
        """Resolve `env:`/`file:` references in a check's secret params (SNMP
        communities, HTTP passwords), so that no secret has to sit in the file."""
        out = dict(params)
        for name in _secret_fields(cls) & out.keys():
            try:
                out[name] = resolve_secret(out[name])
            except ValueError as exc:
                self.error((*path, name), str(exc))
                return None
        return out

    def _check(self, device: Device, path: Path_, check: CheckDef) -> CheckSpec | None:
        cls = self._kind(check.type)
        if cls is None:
            from checks import REGISTRY

            self.error(
                (*path, "type"),
                f"unknown check type {check.type!r} (known: {', '.join(sorted(REGISTRY))})",
            )
            return None
        raw = self._secrets(cls, check.params, path)
        if raw is None:
            return None
        try:
            params = cls.Params.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                self.error((*path, *err["loc"]), _message(err))
            return None
        name = check.name or params.default_name(check.type)
        d = self.config.defaults
        # A kind may bring its own timing defaults (a heartbeat is hard at once).
        kd: Mapping[str, Any] = getattr(cls, "timing_defaults", {})
        return CheckSpec(
            id=f"{device.id}/{name}",
            device_id=device.id,
            name=name,
            kind=check.type,
            params=params,
            interval=check.interval or kd.get("interval", d.interval),
            retry_interval=check.retry_interval or kd.get("retry_interval", d.retry_interval),
            max_attempts=check.max_attempts or kd.get("max_attempts", d.max_attempts),
            timeout=check.timeout or kd.get("timeout", d.timeout),
        )


def template_checks(config: Config, devices: Iterable[Device]) -> list[CheckSpec]:
    """The checks the config's templates give `devices` that the config itself does
    not list (synced from an RMM): the same matching and params as config devices.
    Each template check is validated once, not once per device; a config that
    `resolve` accepted has no bad ones (any left are skipped)."""
    r = _Resolver(config)
    templates = r._templates()
    built: dict[tuple[int, int], CheckSpec | None] = {}
    out: list[CheckSpec] = []
    for device in devices:
        names: dict[str, CheckSpec] = {}
        for t_index, template in templates:
            if not _matches(template.match, device):
                continue
            for k, check in enumerate(template.checks):
                if (t_index, k) not in built:
                    path = ("templates", t_index, "checks", k)
                    built[(t_index, k)] = r._check(device, path, check)
                proto = built[(t_index, k)]
                if proto is not None:
                    names[proto.name] = replace(
                        proto, id=f"{device.id}/{proto.name}", device_id=device.id
                    )
        out.extend(names.values())
    return out


def _check_traps(traps: TrapsConfig, devices: Mapping[str, Device]) -> Iterator[Problem]:
    """Cross-checks of the trap receiver: senders, users, and rule OIDs."""
    if traps.enabled and not traps.communities and not traps.users:
        yield Problem(("traps",), "traps are enabled but no communities or users are configured")
    for device_id in traps.engine_ids:
        if device_id not in devices:
            yield Problem(
                ("traps", "engine_ids", device_id),
                f"unknown device {device_id!r} (expected 'customer/name')",
            )
    users: set[str] = set()
    for i, user in enumerate(traps.users):
        if user.name in users:
            yield Problem(("traps", "users", i, "name"), f"duplicate trap user {user.name!r}")
        users.add(user.name)
    yield from _check_trap_rules(traps)


def _check_trap_rules(traps: TrapsConfig) -> Iterator[Problem]:
    # One OID must mean one thing: a trap that both opened and cleared a problem
    # would resolve what it had just opened.
    opens: dict[str, int] = {}
    for i, rule in enumerate(traps.rules):
        if rule.oid in opens:
            yield Problem(
                ("traps", "rules", i, "oid"),
                f"duplicate trap rule for {rule.oid!r} (also rules[{opens[rule.oid]}])",
            )
        opens.setdefault(rule.oid, i)
    for i, rule in enumerate(traps.rules):
        if rule.clear_oid is not None and rule.clear_oid in opens:
            yield Problem(
                ("traps", "rules", i, "clear_oid"),
                f"{rule.clear_oid!r} is also the oid of rules[{opens[rule.clear_oid]}]"
                " (one trap cannot both open and clear)",
            )


def _check_ticket_systems(systems: tuple[TicketSystemDef, ...]) -> Iterator[Problem]:
    """Each `alerting.ticket_systems[]` entry: a unique name, a known kind, and keys
    the kind's own `Config` model accepts, with its `env:`/`file:` secrets resolvable."""
    names: dict[str, int] = {}
    for i, system in enumerate(systems):
        path: Path_ = ("alerting", "ticket_systems", i)
        if system.name == "builtin":
            yield Problem((*path, "name"), "'builtin' is the built-in ticket store's name")
        elif system.name in names:
            also = names[system.name]
            yield Problem(
                (*path, "name"),
                f"duplicate ticket system {system.name!r} (also ticket_systems[{also}])",
            )
        names.setdefault(system.name, i)
        yield from _check_ticket_system(system, path)


def _check_ticket_system(system: TicketSystemDef, path: Path_) -> Iterator[Problem]:
    from alerts.tickets import EXTERNAL, load_ticket_class

    try:
        cls = load_ticket_class(system.kind)
    except KeyError:
        yield Problem(
            (*path, "kind"),
            f"unknown ticket system kind {system.kind!r} (known: {', '.join(EXTERNAL)})",
        )
        return
    except ImportError as exc:
        yield Problem((*path, "kind"), f"ticket system kind {system.kind!r} unavailable: {exc}")
        return
    raw = dict(system.params)
    bad_secret = False
    for name in sorted(_model_secret_fields(cls.Config) & raw.keys()):
        try:
            raw[name] = resolve_secret(raw[name])
        except ValueError as exc:
            yield Problem((*path, name), str(exc))
            bad_secret = True
    if bad_secret:
        return
    try:
        cls.Config.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            yield Problem((*path, *err["loc"]), _message(err))


def ticket_system_settings(system: TicketSystemDef) -> tuple[Any, BaseModel]:
    """(class, validated settings) of a configured ticket system, secrets resolved.

    Only for a config that `resolve` accepted; raises KeyError/ValueError otherwise.
    """
    from alerts.tickets import load_ticket_class

    cls = load_ticket_class(system.kind)
    raw = dict(system.params)
    for name in _model_secret_fields(cls.Config) & raw.keys():
        raw[name] = resolve_secret(raw[name])
    settings: BaseModel = cls.Config.model_validate(raw)
    return cls, settings


def _secret_fields(cls: type[CheckType]) -> set[str]:
    return _model_secret_fields(cls.Params)


def _model_secret_fields(model: type[BaseModel]) -> set[str]:
    return {
        name for name, field in model.model_fields.items() if "SecretStr" in str(field.annotation)
    }


def _replace_parent(device: Device, parent: str | None) -> Device:
    from dataclasses import replace

    return replace(device, parent_id=parent)


def _matches(selector: Selector, device: Device) -> bool:
    return (
        (not selector.roles or device.role in {r.value for r in selector.roles})
        and (not selector.tags or bool(set(selector.tags) & set(device.tags)))
        and (not selector.customers or device.customer in selector.customers)
        and (not selector.sites or (device.site or "") in selector.sites)
        and (not selector.os or any(o.lower() in device.os.lower() for o in selector.os))
    )


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


def _message(err: Any) -> str:
    """A pydantic error as a short lowercase message, never echoing secret input."""
    kind = err.get("type", "")
    if kind in _MESSAGES:
        return str(_MESSAGES[kind])
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def resolve(config: Config) -> tuple[Inventory, list[Problem]]:
    """Cross-check `config` and build its inventory; problems are collected, not raised."""
    r = _Resolver(config)
    r.check_customers()
    r.expand_devices()
    r.resolve_parents()
    r.check_cycles()
    r.problems.extend(_check_traps(config.traps, r.devices))
    r.problems.extend(Problem(p, m) for p, m in check_correlation(config, r.devices))
    r.problems.extend(Problem(p, m) for p, m in check_oncall(config.oncall))
    r.problems.extend(Problem(p, m) for p, m in check_paging(config))
    r.problems.extend(_check_ticket_systems(config.alerting.ticket_systems))
    r.problems.extend(Problem(p, m) for p, m in check_ticket_policy(config))
    r.problems.extend(Problem(p, m) for p, m in check_rmm(config))
    checks = r.build_checks()
    # A bad template check is found once per device it applies to; report it once.
    problems = list(dict.fromkeys(r.problems))
    customers = {c.name: c for c in config.customers}
    return Inventory(customers=customers, devices=dict(r.devices), checks=checks), problems
