"""On-call config: engineers, schedules of rotation layers with overrides, a fallback.

A schedule has one or more layers (`primary`, `secondary`); each layer is its
own line of cover, a rotation that hands off daily or weekly at a wall-clock
time in the schedule's zone, through an ordered list of engineers from a start
date. An override puts another engineer on one layer from `start` to `end`
(a swap, a sick day); it beats the rotation.

A layer has no gaps by construction: each handoff ends one shift and starts
the next, and an override replaces the engineer but never removes cover. The
only uncovered time is before a layer's `start`; the fallback contact answers
then (and whenever a schedule or layer cannot be found).

Cross-checks (unknown engineers, overlapping overrides, a rotation with no
engineers, a weekly start off the handoff day) are in `check_oncall`, located
like every other config problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import field_validator, model_validator

from monitord.config.base import Frozen, _timezone
from monitord.config.types import Name

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

OncallPath = tuple[str | int, ...]


def _e164(value: tuple[str, ...]) -> tuple[str, ...]:
    for phone in value:
        if not _E164.match(phone.replace(" ", "")):
            raise ValueError(f"phone number {phone!r} is not in E.164 form (+420…)")
    return tuple(p.replace(" ", "") for p in value)


class Engineer(Frozen):
    """Someone who can be paged. `channels` is the order to try them in."""

    name: Name
    display_name: str = ""
    phones: tuple[str, ...] = ()
    email: str | None = None
    telegram_chat_id: int | None = None
    channels: tuple[Name, ...] = ()  # paging channels to try, in order (paging.channels)
    addresses: dict[str, str] = {}  # per channel name, where it reaches them (an ntfy topic)

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _e164(value)

    @property
    def label(self) -> str:
        return self.display_name or self.name


class Override(Frozen):
    """`engineer` is on call in this layer over `[start, end)`.

    A time without an offset is wall-clock time in the schedule's zone.
    """

    engineer: str
    start: datetime
    end: datetime
    reason: str = ""
    set_by: str = ""  # who made it through the API or the CLI ("" in the config)

    @model_validator(mode="after")
    def _order(self) -> Override:
        if self.start.tzinfo is None and self.end.tzinfo is None and self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self

    def span(self, zone: ZoneInfo) -> tuple[float, float]:
        """`[start, end)` as UTC epoch seconds."""
        return _epoch(self.start, zone), _epoch(self.end, zone)


def _epoch(value: datetime, zone: ZoneInfo) -> float:
    return (value if value.tzinfo is not None else value.replace(tzinfo=zone)).timestamp()


class Rotation(Frozen):
    """One layer: shifts of a day or a week, handed off at `handoff_time` in the
    schedule's zone (on `handoff_day` for weekly ones), through `engineers` in
    order from the handoff on `start`."""

    name: Name
    every: Literal["daily", "weekly"] = "weekly"
    handoff_day: Weekday = "mon"
    handoff_time: time = time(8, 0)
    start: date
    engineers: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()

    @model_validator(mode="after")
    def _daily(self) -> Rotation:
        if self.every == "daily" and "handoff_day" in self.model_fields_set:
            raise ValueError("handoff_day applies to weekly rotations only")
        return self


class Schedule(Frozen):
    name: Name
    timezone: str = "Europe/Prague"
    layers: tuple[Rotation, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _timezone(value)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def layer(self, name: str) -> Rotation | None:
        return next((layer for layer in self.layers if layer.name == name), None)


class OncallConfig(Frozen):
    engineers: tuple[Engineer, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    fallback: Engineer | None = None  # paged when no layer has anyone

    def engineer(self, name: str) -> Engineer | None:
        return next((e for e in self.engineers if e.name == name), None)

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)


def check_oncall(oncall: OncallConfig) -> Iterator[tuple[OncallPath, str]]:
    """Every located problem of the `oncall:` section."""
    base: OncallPath = ("oncall",)
    known: set[str] = set()
    for i, engineer in enumerate(oncall.engineers):
        if engineer.name in known:
            yield (*base, "engineers", i, "name"), f"duplicate engineer {engineer.name!r}"
        known.add(engineer.name)
    schedules: set[str] = set()
    for i, schedule in enumerate(oncall.schedules):
        path: OncallPath = (*base, "schedules", i)
        if schedule.name in schedules:
            yield (*path, "name"), f"duplicate schedule {schedule.name!r}"
        schedules.add(schedule.name)
        if not schedule.layers:
            yield (*path, "layers"), f"schedule {schedule.name!r} has no layers"
        layers: set[str] = set()
        for j, layer in enumerate(schedule.layers):
            lpath: OncallPath = (*path, "layers", j)
            if layer.name in layers:
                yield (*lpath, "name"), f"duplicate layer {layer.name!r} in {schedule.name!r}"
            layers.add(layer.name)
            yield from _check_layer(layer, schedule.zone, known, lpath)


def _check_layer(
    layer: Rotation, zone: ZoneInfo, known: set[str], path: OncallPath
) -> Iterator[tuple[OncallPath, str]]:
    if not layer.engineers:
        yield (*path, "engineers"), f"rotation {layer.name!r} has no engineers"
    for k, name in enumerate(layer.engineers):
        if name not in known:
            yield (*path, "engineers", k), f"unknown engineer {name!r}"
    if layer.every == "weekly" and WEEKDAYS[layer.start.weekday()] != layer.handoff_day:
        yield (
            (*path, "start"),
            f"{layer.start} is a {WEEKDAYS[layer.start.weekday()]}, "
            f"not the handoff day {layer.handoff_day}",
        )
    spans: list[tuple[float, float]] = []
    for k, override in enumerate(layer.overrides):
        opath: OncallPath = (*path, "overrides", k)
        if override.engineer not in known:
            yield (*opath, "engineer"), f"unknown engineer {override.engineer!r}"
        start, end = override.span(zone)
        if end <= start:
            yield opath, "an override must end after it starts"
        for m, (other_start, other_end) in enumerate(spans):
            if start < other_end and other_start < end:
                yield (
                    opath,
                    (
                        f"overlaps overrides[{m}] ({_local(other_start, zone)} to "
                        f"{_local(other_end, zone)}) in layer {layer.name!r}"
                    ),
                )
                break
        spans.append((start, end))


def _local(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
