"""Frozen config models (the shape of monitord.yaml).

Per-check-type parameters are not modelled here: a check definition keeps its
type-specific keys as extras, and `validate.py` checks them against the check
type's own `Params` model, so that each plugin owns its config.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitord.config.base import (
    BusinessWindow,
    Criticality,
    Frozen,
    Priority,
    Role,
    _split_tags,
    _timezone,
    business_windows,
    parse_business_hours,
)
from monitord.config.ingest import IngestConfig, IngestHmac, IngestToken
from monitord.config.oncall import OncallConfig
from monitord.config.paging import PagingConfig
from monitord.config.rmm import RmmConfig
from monitord.config.rules import (
    SILENCE_LABELS,
    MaintenanceWindow,
    Matcher,
    PriorityMatch,
    PriorityRule,
    Severity,
    Silence,
)
from monitord.config.tickets import TicketPolicy
from monitord.config.traps import TrapRuleDef, TrapsConfig, TrapUser
from monitord.config.types import Duration, Name, Secret

# Sections live in their own modules; this one re-exports them so that
# `monitord.config.model` stays the one place to import config types from.
__all__ = [
    "SILENCE_LABELS",
    "BusinessWindow",
    "Criticality",
    "Frozen",
    "IngestConfig",
    "IngestHmac",
    "IngestToken",
    "MaintenanceWindow",
    "Matcher",
    "OncallConfig",
    "Priority",
    "PriorityMatch",
    "PriorityRule",
    "Role",
    "Severity",
    "Silence",
    "TrapRuleDef",
    "TrapUser",
    "TrapsConfig",
    "parse_business_hours",
]


class Contract(Frozen):
    """What the customer pays for: cover hours and reaction-time targets."""

    business_hours: tuple[BusinessWindow, ...] = (parse_business_hours("mon-fri 08:00-17:00"),)
    timezone: str = "Europe/Prague"
    holidays_country: str = "CZ"  # public holidays (`holidays` package); "" for none
    holidays_subdivision: str | None = None  # a region's own holidays ("BY" in DE)
    closed_days: tuple[date, ...] = ()  # further days without business hours
    after_hours_cover: bool = False
    reaction: dict[Priority, Duration] = Field(
        default_factory=lambda: {
            Priority.P1: 900.0,
            Priority.P2: 3600.0,
            Priority.P3: 8 * 3600.0,
            Priority.P4: 24 * 3600.0,
        }
    )

    @field_validator("business_hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        return business_windows(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _timezone(value)


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Contact(Frozen):
    name: str
    phones: tuple[str, ...] = ()
    email: str | None = None
    role: str = ""

    @field_validator("phones")
    @classmethod
    def _e164(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for phone in value:
            if not _E164.match(phone.replace(" ", "")):
                raise ValueError(f"phone number {phone!r} is not in E.164 form (+420…)")
        return tuple(p.replace(" ", "") for p in value)


class Site(Frozen):
    name: Name
    address: str = ""
    gateway: str | None = None


class Customer(Frozen):
    name: Name
    display_name: str = ""
    contract: Contract = Field(default_factory=Contract)
    sites: tuple[Site, ...] = ()
    contacts: tuple[Contact, ...] = ()


class CheckDef(BaseModel):
    """One check: common timing keys plus the check type's own keys (extras)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str
    name: Name | None = None
    interval: Duration | None = None
    retry_interval: Duration | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    timeout: Duration | None = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class Selector(Frozen):
    """Which devices a template applies to; every given field must match."""

    roles: tuple[Role, ...] = ()
    tags: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    os: tuple[str, ...] = ()


class Template(Frozen):
    name: Name
    match: Selector = Field(default_factory=Selector)
    checks: tuple[CheckDef, ...] = ()


class DeviceDef(Frozen):
    """A device, or a numbered series of them when `count` is given.

    A series expands `{n}` in the name (`ws-{n:02}`) from 1 to `count`, and
    gives consecutive addresses starting at `address`.
    """

    name: str
    customer: Name
    site: Name | None = None
    address: str
    role: Role = Role.OTHER
    os: str = ""
    criticality: Criticality = Criticality.NORMAL
    tags: tuple[str, ...] = ()
    parent: str | None = None
    count: int | None = Field(default=None, ge=1, le=10000)
    checks: tuple[CheckDef, ...] = ()

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return _split_tags(value)

    @model_validator(mode="after")
    def _series(self) -> DeviceDef:
        if self.count is not None and "{n" not in self.name:
            raise ValueError(f"a series (count) needs '{{n}}' in its name, got {self.name!r}")
        if self.count is None and "{" in self.name:
            raise ValueError(f"device name {self.name!r} has a '{{n}}' pattern but no count")
        return self


class CheckDefaults(Frozen):
    interval: Duration = 60.0
    retry_interval: Duration = 15.0
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout: Duration = 10.0


class FlapConfig(Frozen):
    """Nagios-style flap detection over the last `window` results (percent state change)."""

    low: float = Field(default=20.0, ge=0, le=100)
    high: float = Field(default=30.0, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> FlapConfig:
        if self.low >= self.high:
            raise ValueError(f"flap low ({self.low}) must be below high ({self.high})")
        return self


class CorrelationConfig(Frozen):
    """How events become incidents and when incidents are notified.

    Alertmanager-style grouping per customer: the first new incident of a
    customer waits `group_wait` so that related ones arriving within seconds
    go out together; later ones wait `group_interval`. A problem that returns
    within `reopen_window` reopens its incident. A child whose parent is in
    doubt is held up to `dependency_wait` for the parent's state to harden.
    `storm_threshold` new incidents at one site within `storm_window` collapse
    into one storm incident.
    """

    group_wait: Duration = 30.0
    group_interval: Duration = 60.0
    reopen_window: Duration = 3600.0
    dependency_wait: Duration = 120.0
    storm_threshold: int = Field(default=10, ge=2)
    storm_window: Duration = 60.0


class DaemonConfig(Frozen):
    listen: str = "127.0.0.1:9787"
    public_url: str | None = None
    state_dir: Path = Path("/var/lib/monitord")
    database: Secret | None = None
    max_concurrent_checks: int = Field(default=1000, ge=1, le=20000)
    # First runs after a start are spread over this (or the interval, if shorter);
    # afterwards every check settles onto its own evenly spread slot.
    # 2.5 s gives every device of a 1,200-device fleet a first result within
    # 3 s of a cold start; checks then settle on their own evenly spread
    # phases, so the short start does not recur as a burst every interval.
    initial_spread: Duration = 2.5
    result_retention: Duration = 2 * 86400.0
    housekeeping_interval: Duration = 3600.0
    write_interval: Duration = Field(default=0.5, gt=0, le=10)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value


class ConsoleChannel(Frozen):
    type: Literal["console"] = "console"
    name: Name = "console"


class TicketSystemDef(BaseModel):
    """One external ticket system: `name`, `kind` plus the kind's own keys (extras),
    which `alerts.tickets.<kind>`'s `Config` model validates (monitord.config.validate)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: Name = Field(max_length=50)
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class AlertingConfig(Frozen):
    """The alert path: the built-in ticket store, external ticket systems, pages."""

    tickets: bool = True
    # Every ticket operation also goes to each of these (none: the built-in store only).
    ticket_systems: tuple[TicketSystemDef, ...] = ()
    ticket_policy: TicketPolicy = Field(default_factory=TicketPolicy)
    page_priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2)
    channels: tuple[ConsoleChannel, ...] = (ConsoleChannel(),)


class Config(Frozen):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    defaults: CheckDefaults = Field(default_factory=CheckDefaults)
    flapping: FlapConfig = Field(default_factory=FlapConfig)
    correlation: CorrelationConfig = Field(default_factory=CorrelationConfig)
    customers: tuple[Customer, ...] = ()
    templates: tuple[Template, ...] = ()
    devices: tuple[DeviceDef, ...] = ()
    # None: the built-in rules (correlator.priority.DEFAULT_RULES); a list replaces them.
    priority_rules: tuple[PriorityRule, ...] | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    silences: tuple[Silence, ...] = ()
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    traps: TrapsConfig = Field(default_factory=TrapsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    oncall: OncallConfig = Field(default_factory=OncallConfig)
    paging: PagingConfig = Field(default_factory=PagingConfig)
    rmm: RmmConfig = Field(default_factory=RmmConfig)
