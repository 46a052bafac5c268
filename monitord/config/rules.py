"""Correlation rules in the config: priority rules, maintenance windows, silences."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
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
)
from monitord.config.types import Duration, Name

# Priority rules, maintenance windows and silences (logic: correlator/priority.py,
# correlator/windows.py; cross-checks: config/correlation.py) ----------------------

Severity = Literal["ok", "warning", "critical", "unknown"]  # Status names, lowercase


class PriorityMatch(Frozen):
    """Facts a priority rule matches: every given field must match, any listed value does."""

    severity: tuple[Severity, ...] = ()
    roles: tuple[Role, ...] = ()
    criticality: tuple[Criticality, ...] = ()
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # open: "backup-failed", "disk-full", …
    customers: tuple[Name, ...] = ()
    after_hours_cover: bool | None = None

    @field_validator(
        "severity", "roles", "criticality", "tags", "categories", "customers", mode="before"
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_tags(value)


class PriorityRule(Frozen):
    """Facts to match and an effect: a `priority`, or an `adjust`ment (+1 = more urgent).

    The first matching rule with a `priority` sets it; then every matching rule
    with `adjust` moves it, unless that priority rule is `final`.
    """

    name: str = ""
    match: PriorityMatch = Field(default_factory=PriorityMatch)
    priority: Priority | None = None
    adjust: int | None = Field(default=None, ge=-3, le=3)
    final: bool = False

    @model_validator(mode="after")
    def _effect(self) -> PriorityRule:
        if (self.priority is None) == (self.adjust is None):
            raise ValueError("a priority rule needs exactly one of 'priority' or 'adjust'")
        if self.adjust == 0:
            raise ValueError("adjust must not be 0 (+1 raises urgency, -1 lowers it)")
        if self.final and self.priority is None:
            raise ValueError("'final' applies only to a rule with a 'priority'")
        return self


class MaintenanceWindow(Frozen):
    """Planned work: while active, new problems in its scope are muted.

    One-off (`start` plus `end` or `duration`), weekly (`weekly: tue 20:00-22:00`,
    the business-hours syntax) or cron (`cron` plus `duration`). Times are local
    to `timezone`, by default the customer's contract time zone (UTC without a
    customer); a time with an offset is taken as given. On a recurring window,
    `start`/`end` bound the period it recurs in. Scope: `customer`, narrowed by
    `sites`, `devices` (name, or `customer/name`) and `tags`.
    """

    name: str = Field(min_length=1)
    customer: Name | None = None
    sites: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    duration: Duration | None = None
    weekly: tuple[BusinessWindow, ...] = ()
    cron: str | None = None
    author: str = ""
    reason: str = ""

    @field_validator("sites", "devices", "tags", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_tags(value)

    @field_validator("weekly", mode="before")
    @classmethod
    def _weekly(cls, value: Any) -> Any:
        return business_windows(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return value if value is None else _timezone(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        from cronsim import CronSim, CronSimError

        try:
            if value is not None:
                CronSim(value, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ValueError(f"bad cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _kind(self) -> MaintenanceWindow:
        if self.weekly and self.cron:
            raise ValueError("a window is either 'weekly' or 'cron', not both")
        if self.cron and self.duration is None:
            raise ValueError("a cron window needs a 'duration'")
        if self.weekly and self.duration is not None:
            raise ValueError("a weekly window takes its length from its hours, not 'duration'")
        if not (self.weekly or self.cron):
            if self.start is None:
                raise ValueError("a window needs 'start' and 'end' (or 'weekly' or 'cron')")
            if (self.end is None) == (self.duration is None):
                raise ValueError("a one-off window needs either 'end' or 'duration'")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        return self._order()

    def _order(self) -> MaintenanceWindow:
        if self.start is None or self.end is None:
            return self
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("give 'start' and 'end' both with or both without a UTC offset")
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self


SILENCE_LABELS = (
    *("customer", "site", "device", "device_id", "check", "category"),
    *("source", "severity", "role", "tags"),
)
_MATCHER = re.compile(r"^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class Matcher(Frozen):
    """An Alertmanager-style label matcher: `name=value`, `name!=value`, `name=~regex`,
    `name!~regex`. Regexes match the whole value; a missing label is the empty value."""

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = _MATCHER.match(data)
        if match is None:
            raise ValueError(
                f"expected a matcher like 'device=srv-1' or 'check=~disk.*', got {data!r}"
            )
        value = match.group(3)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return {"name": match.group(1), "op": match.group(2), "value": value}

    @model_validator(mode="after")
    def _check(self) -> Matcher:
        if self.name not in SILENCE_LABELS:
            known = ", ".join(SILENCE_LABELS)
            raise ValueError(f"unknown label {self.name!r} (known: {known})")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"bad regex {self.value!r}: {exc}") from None
        return self

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


class Silence(Frozen):
    """Mutes new problems whose labels match every matcher, from `start` (default:
    always) until `expiry` (default: never). Config silences are permanent entries;
    API-made ones carry their stored `id`. Times need a UTC offset."""

    id: int | None = None
    matchers: tuple[Matcher, ...]
    author: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    start: AwareDatetime | None = None
    expiry: AwareDatetime | None = None

    @field_validator("matchers", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> Silence:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher")
        if all(_matches_empty(m) for m in self.matchers):
            raise ValueError(
                "these matchers also match events without such labels, so the silence would"
                " mute everything: add one that needs a value (like customer=acme)"
            )
        if self.start and self.expiry and self.expiry <= self.start:
            raise ValueError(f"silence expires ({self.expiry}) before it starts ({self.start})")
        return self


def _matches_empty(m: Matcher) -> bool:
    if m.op in ("=", "!="):
        return (m.value == "") == (m.op == "=")
    return (re.fullmatch(m.value, "") is not None) == (m.op == "=~")
