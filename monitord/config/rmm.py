"""RMM config (`rmm:`): the RMM accounts to read, how their clients and sites map onto
monitord's customers, and the verdict rules that cross-check every RMM failure.

A minimal section works on defaults:

    rmm:
      sources:
        - {name: nsight, kind: nsight, server: www.systemmonitor.eu.com, api_key: env:NSIGHT_KEY}
      clients:
        - {client: "Northfield Logistics Ltd", customer: northfield}

Each source's own keys (besides name, kind and the intervals) are validated by
its adapter's `Config` model (`monitord.sources.rmm.REGISTRY`), located like
every other config problem. A source's `min_poll_interval` (N-sight's 90-second
API etiquette) is the floor of its poll interval: a default below it is raised
to it, a configured value below it is an error.

Clients the mapping does not name are never guessed: `unmapped_clients: skip`
(the default) leaves them out and reports them (API, log, metric), `create`
makes a customer of each, named after the client.

Verdict rules are keyed by the RMM check category (`monitord.sources.rmm.base.
Category`); a configured rule overrides only the keys it sets on the built-in
one (`DEFAULT_VERDICTS`).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from monitord.config.base import Frozen, Priority
from monitord.config.ingest import IngestConfig
from monitord.config.types import Duration, Name

if TYPE_CHECKING:
    from monitord.config.model import Config

RmmPath = tuple[str | int, ...]
Found = Iterator[tuple[RmmPath, str]]


def _source_name(value: str) -> str:
    # Recorded as `rmm:<name>` in events.source, a String(30) column.
    if len(value) > 26:
        raise ValueError(f"source name {value!r} is longer than 26 characters")
    return value


SourceName = Annotated[Name, AfterValidator(_source_name)]


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value!r}: {exc}") from exc
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]


class RmmSourceDef(BaseModel):
    """One RMM account: `name`, `kind`, intervals, plus the kind's own keys (extras)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: SourceName
    kind: str
    enabled: bool = True
    poll_interval: Duration | None = None  # failing checks; default rmm.poll_interval
    sync_interval: Duration | None = None  # inventory; default rmm.sync_interval

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class ClientMap(Frozen):
    """An RMM client (by its name as the RMM writes it, or its id) → a customer."""

    client: str | None = None
    client_id: str | None = None
    customer: Name
    source: Name | None = None  # only for this source (ids differ between RMMs)

    @model_validator(mode="after")
    def _one(self) -> ClientMap:
        if (self.client is None) == (self.client_id is None):
            raise ValueError("give exactly one of 'client' (its name) or 'client_id'")
        return self

    def matches(self, source: str, client_id: str, client_name: str) -> bool:
        if self.source is not None and self.source != source:
            return False
        if self.client_id is not None:
            return self.client_id == client_id
        return self.client == client_name


class SiteMap(Frozen):
    """An RMM site (by name or id) of a mapped customer → one of its configured sites,
    whose `gateway` then parents every device synced from that RMM site."""

    customer: Name
    rmm_site: str | None = None
    rmm_site_id: str | None = None
    site: Name
    source: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> SiteMap:
        if (self.rmm_site is None) == (self.rmm_site_id is None):
            raise ValueError("give exactly one of 'rmm_site' (its name) or 'rmm_site_id'")
        return self

    def matches(self, source: str, customer: str, site_id: str, site_name: str) -> bool:
        if self.customer != customer or (self.source is not None and self.source != source):
            return False
        if self.rmm_site_id is not None:
            return self.rmm_site_id == site_id
        return self.rmm_site == site_name


class VerifyDef(BaseModel):
    """An on-demand verification check: a check `type` with its own keys (extras),
    run against the device's address when an RMM failure needs evidence. `when`
    (a regex on the RMM check's description) limits it to some failures."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str
    name: Name | None = None
    timeout: Duration | None = None
    when: Regex = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class EvidenceDef(Frozen):
    """Which of the device's own scheduled checks speak to an RMM failure: those of
    `kinds` whose name matches one of `names` (globs; none: any name), or (with
    `reachability`) the device's reachability checks; `when` as in VerifyDef."""

    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    reachability: bool = False
    when: Regex = None


class VerdictRule(Frozen):
    """How failures of one RMM check category are cross-checked.

    `category` is the correlator category their incidents get (priority rules key
    on it: av-outdated, backup-failed and disk-full rank high). An `unverifiable`
    category is passed on with the RMM's severity, labelled as such. Otherwise the
    failure is judged on `evidence` and `verify`; a *disputed* one (monitord sees
    it fine) is ticketed at `rmm.low_priority` once it has lasted `persist`.
    """

    category: str | None = None
    unverifiable: bool | None = None
    evidence: tuple[EvidenceDef, ...] | None = None
    verify: tuple[VerifyDef, ...] | None = None
    persist: Duration | None = None


class Verdicts(Frozen):
    """A complete rule, after the config's overrides were laid over the default."""

    category: str
    unverifiable: bool
    evidence: tuple[EvidenceDef, ...]
    verify: tuple[VerifyDef, ...]
    persist: float


def _ev(kinds: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> EvidenceDef:
    return EvidenceDef(kinds=kinds, names=names)


_REACH = EvidenceDef(reachability=True)
_UNVERIFIABLE = {"unverifiable": True, "evidence": (), "verify": ()}

# category → (correlator category, rule keys). What monitord can check by default:
# availability by its reachability checks and a ping; services and web pages by its
# own TCP/HTTP checks of the device; disk, backup, hardware and performance by SNMP,
# plugin or local checks named for them. Antivirus, patches, event logs, scripts and
# tasks are the agent's own view: monitord cannot see them from outside.
DEFAULT_VERDICTS: dict[str, dict[str, Any]] = {
    "availability": {
        "category": "host-down",
        "evidence": (_REACH,),
        "verify": (VerifyDef(type="icmp", name="rmm-verify-ping"),),
    },
    "ping": {"category": "host-down", **_UNVERIFIABLE},
    "service": {"category": "service-down", "evidence": (_ev(("tcp", "http", "dns", "tls")),)},
    "web": {"category": "service-down", "evidence": (_ev(("http", "tls")),)},
    "disk-space": {
        "category": "disk-full",
        "evidence": (_ev(("snmp", "plugin", "local"), ("*disk*", "*fs*", "*storage*")),),
    },
    "backup": {
        "category": "backup-failed",
        "evidence": (_ev(("heartbeat", "plugin", "local", "snmp"), ("*backup*",)),),
    },
    "hardware": {
        "category": "raid-degraded",
        "evidence": (_ev(("snmp", "plugin", "local"), ("*raid*", "*smart*", "*hardware*")),),
    },
    "performance": {
        "category": "performance",
        "evidence": (_ev(("snmp", "plugin", "local"), ("*cpu*", "*load*", "*mem*")),),
    },
    "antivirus": {"category": "av-outdated", **_UNVERIFIABLE},
    "patch": {"category": "patch-failed", **_UNVERIFIABLE},
    "event-log": {"category": "event-log", **_UNVERIFIABLE},
    "script": {"category": "script-failed", **_UNVERIFIABLE},
    "task": {"category": "task-failed", **_UNVERIFIABLE},
    "other": {"category": "rmm-other", **_UNVERIFIABLE},
}

AGENT_CATEGORY = "rmm-agent"  # "RMM agent not reporting on X" (the device answers)
DISPUTED_CATEGORY = "rmm-disputed"  # an RMM failure monitord's evidence contradicts
LOW_CATEGORIES = frozenset({AGENT_CATEGORY, DISPUTED_CATEGORY})


class RmmConfig(Frozen):
    """`rmm:` (see the module docstring)."""

    sources: tuple[RmmSourceDef, ...] = ()
    poll_interval: Duration = Field(default=120.0, gt=0)
    sync_interval: Duration = Field(default=900.0, gt=0)
    # One failures poll, every call of it (N-sight: a call per client, paced).
    poll_timeout: Duration = Field(default=300.0, gt=0)
    # One inventory sync, every call of it. N-sight needs a call per site and device
    # list: 441 calls for 40 clients with 200 sites, 7.5 min at its 60 calls a minute.
    sync_timeout: Duration = Field(default=1800.0, gt=0)
    retire_after: Duration = 7 * 86400.0  # gone from the RMM this long: retired
    stale_after: Duration = Field(default=600.0, gt=0)  # no good poll: "RMM feed stale"
    reverify_after: Duration = Field(default=600.0, gt=0)  # evidence older than this
    blind_spot_after: Duration = 900.0  # own fault unreported by the RMM this long
    low_priority: Priority = Priority.P4  # agent problems and disputed failures
    verify_concurrency: int = Field(default=50, ge=1, le=1000)
    clients: tuple[ClientMap, ...] = ()
    unmapped_clients: Literal["skip", "create"] = "skip"
    sites: tuple[SiteMap, ...] = ()
    # The check of a synthetic site uplink (a site without a configured gateway).
    uplink_check: VerifyDef = VerifyDef(type="icmp", name="uplink")
    verdicts: dict[str, VerdictRule] = Field(default_factory=dict)
    webhook: IngestConfig = Field(default_factory=IngestConfig)

    def rule(self, category: str) -> Verdicts:
        """The effective rule of an RMM check category (unknown ones as "other")."""
        base = dict(DEFAULT_VERDICTS.get(category, DEFAULT_VERDICTS["other"]))
        base.setdefault("evidence", ())
        base.setdefault("verify", ())
        base.setdefault("unverifiable", False)
        base.setdefault("persist", 4 * 3600.0)
        override = self.verdicts.get(category)
        if override is not None:
            base.update({k: getattr(override, k) for k in override.model_fields_set})
        return Verdicts.model_validate(base)

    def poll_interval_of(self, source: RmmSourceDef, floor: float) -> float:
        return max(source.poll_interval or self.poll_interval, floor)

    def sync_interval_of(self, source: RmmSourceDef, floor: float) -> float:
        return max(source.sync_interval or self.sync_interval, floor)


# cross-checks --------------------------------------------------------------------


def check_rmm(config: Config) -> Found:
    """Every located problem of the `rmm:` section (called by `validate.resolve`)."""
    rmm = config.rmm
    customers = {c.name: c for c in config.customers}
    base: RmmPath = ("rmm",)
    names: dict[str, int] = {}
    floors: dict[str, float] = {}
    for i, source in enumerate(rmm.sources):
        path = (*base, "sources", i)
        if source.name in names:
            yield (
                (*path, "name"),
                f"duplicate RMM source {source.name!r} (also sources[{names[source.name]}])",
            )
        names.setdefault(source.name, i)
        floor = yield from _check_source(source, path)
        if floor is not None:
            floors[source.name] = floor
            yield from _check_intervals(rmm, source, path, floor)
    yield from _check_clients(rmm, customers, names)
    yield from _check_sites(rmm, customers, names)
    yield from _check_verdicts(rmm)
    yield from _check_check_def(rmm.uplink_check, (*base, "uplink_check"))
    if rmm.low_priority in config.alerting.page_priorities:
        yield (
            (*base, "low_priority"),
            f"{rmm.low_priority.value} is paged (alerting.page_priorities): RMM agent "
            "problems and disputed failures must never page",
        )


def _check_source(
    source: RmmSourceDef, path: RmmPath
) -> Generator[tuple[RmmPath, str], None, float | None]:
    """The source's kind and own keys; returns (as the generator's value) its
    poll-interval floor, or None when the kind is unusable."""
    from pydantic import ValidationError

    from monitord.config.types import resolve_secret
    from monitord.config.validate import _message, _model_secret_fields
    from monitord.sources.rmm import REGISTRY, load_source_class

    try:
        cls = load_source_class(source.kind)
    except KeyError:
        yield (
            (*path, "kind"),
            f"unknown RMM kind {source.kind!r} (known: {', '.join(sorted(REGISTRY))})",
        )
        return None
    except ImportError as exc:
        yield (*path, "kind"), f"RMM kind {source.kind!r} unavailable: {exc}"
        return None
    raw = dict(source.params)
    bad = False
    for key in sorted(_model_secret_fields(cls.Config) & raw.keys()):
        try:
            raw[key] = resolve_secret(raw[key])
        except ValueError as exc:
            yield (*path, key), str(exc)
            bad = True
    if not bad:
        try:
            cls.Config.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                yield (*path, *err["loc"]), _message(err)
    return float(cls.min_poll_interval)


def _check_intervals(
    rmm: RmmConfig, source: RmmSourceDef, path: RmmPath, floor: float
) -> Iterator[tuple[RmmPath, str]]:
    why = f"{floor:g} s is the shortest poll interval {source.kind} tolerates"
    if source.poll_interval is not None:
        if source.poll_interval < floor:
            yield (*path, "poll_interval"), f"{why}; got {source.poll_interval:g} s"
    elif "poll_interval" in rmm.model_fields_set and rmm.poll_interval < floor:
        yield (
            ("rmm", "poll_interval"),
            f"{why} (source {source.name!r}); got {rmm.poll_interval:g} s",
        )


def _check_clients(
    rmm: RmmConfig, customers: Mapping[str, Any], sources: Mapping[str, int]
) -> Iterator[tuple[RmmPath, str]]:
    seen: dict[tuple[str | None, str, str], int] = {}
    for i, entry in enumerate(rmm.clients):
        path: RmmPath = ("rmm", "clients", i)
        if entry.customer not in customers:
            yield (*path, "customer"), f"unknown customer {entry.customer!r}"
        if entry.source is not None and entry.source not in sources:
            yield (*path, "source"), f"unknown RMM source {entry.source!r}"
        key = (
            entry.source,
            "id" if entry.client_id is not None else "name",
            entry.client_id or entry.client or "",
        )
        if key in seen:
            yield path, f"client mapped twice (also clients[{seen[key]}])"
        seen.setdefault(key, i)


def _check_sites(
    rmm: RmmConfig, customers: Mapping[str, Any], sources: Mapping[str, int]
) -> Iterator[tuple[RmmPath, str]]:
    for i, entry in enumerate(rmm.sites):
        path: RmmPath = ("rmm", "sites", i)
        customer = customers.get(entry.customer)
        if customer is None:
            yield (*path, "customer"), f"unknown customer {entry.customer!r}"
        elif entry.site not in {s.name for s in customer.sites}:
            yield (*path, "site"), f"unknown site {entry.site!r} of {entry.customer!r}"
        if entry.source is not None and entry.source not in sources:
            yield (*path, "source"), f"unknown RMM source {entry.source!r}"


def _check_verdicts(rmm: RmmConfig) -> Iterator[tuple[RmmPath, str]]:
    from checks import REGISTRY as CHECKS

    for category, rule in rmm.verdicts.items():
        path: RmmPath = ("rmm", "verdicts", category)
        if category not in DEFAULT_VERDICTS:
            yield (
                path,
                f"unknown RMM check category {category!r} (known: {', '.join(DEFAULT_VERDICTS)})",
            )
            continue
        for j, ev in enumerate(rule.evidence or ()):
            for kind in ev.kinds:
                if kind not in CHECKS:
                    yield (*path, "evidence", j, "kinds"), f"unknown check type {kind!r}"
        for j, verify in enumerate(rule.verify or ()):
            yield from _check_check_def(verify, (*path, "verify", j))


def _check_check_def(check: VerifyDef, path: RmmPath) -> Iterator[tuple[RmmPath, str]]:
    from pydantic import ValidationError

    from checks import REGISTRY as CHECKS
    from checks.base import load_check_class
    from monitord.config.validate import _message

    try:
        cls = load_check_class(check.type)
    except KeyError:
        yield (
            (*path, "type"),
            f"unknown check type {check.type!r} (known: {', '.join(sorted(CHECKS))})",
        )
        return
    except ImportError as exc:
        yield (*path, "type"), f"check type {check.type!r} unavailable: {exc}"
        return
    try:
        cls.Params.model_validate(check.params)
    except ValidationError as exc:
        for err in exc.errors():
            yield (*path, *err["loc"]), _message(err)


def source_settings(source: RmmSourceDef) -> tuple[Any, BaseModel]:
    """(class, validated settings) of a configured source, secrets resolved.

    Only for a config that `validate.resolve` accepted; raises otherwise.
    """
    from monitord.config.types import resolve_secret
    from monitord.config.validate import _model_secret_fields
    from monitord.sources.rmm import load_source_class

    cls = load_source_class(source.kind)
    raw = dict(source.params)
    for key in _model_secret_fields(cls.Config) & raw.keys():
        raw[key] = resolve_secret(raw[key])
    settings: BaseModel = cls.Config.model_validate(raw)
    return cls, settings
