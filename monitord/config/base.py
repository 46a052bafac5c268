"""The base of every config model, and the value types several sections share."""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Role(StrEnum):
    SERVER = "server"
    WORKSTATION = "workstation"
    NETWORK = "network"
    PRINTER = "printer"
    UPS = "ups"
    OTHER = "other"


class Criticality(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")


class BusinessWindow(Frozen):
    """Weekdays (0 = Monday) and a local time range, parsed from `mon-fri 08:00-17:00`.

    An `end` at or before `start` runs past midnight into the next day: the
    days are the days it starts on (`fri 22:00-06:00` ends on Saturday), and
    `00:00-00:00` is a whole day.
    """

    days: frozenset[int]
    start: time
    end: time


def parse_business_hours(text: str) -> BusinessWindow:
    match = _HOURS.match(text.strip().lower())
    if not match or match.group(1) not in _DAYS or (match.group(2) or "mon") not in _DAYS:
        raise ValueError(f"expected business hours like 'mon-fri 08:00-17:00', got {text!r}")
    first = _DAYS.index(match.group(1))
    last = _DAYS.index(match.group(2)) if match.group(2) else first
    days = (
        frozenset(range(first, last + 1))
        if first <= last
        else frozenset([*range(first, 7), *range(0, last + 1)])
    )
    start, end = (
        time.fromisoformat(match.group(3).zfill(5)),
        time.fromisoformat(match.group(4).zfill(5)),
    )
    # An end at or before the start is an overnight range (see BusinessWindow).
    return BusinessWindow(days=days, start=start, end=end)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _split_tags(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(t for t in re.split(r"[;,\s]+", value) if t)
    return value


def business_windows(value: Any) -> Any:
    """`"mon-fri 08:00-17:00"` or a list of such → BusinessWindows (validator body)."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        return tuple(parse_business_hours(v) if isinstance(v, str) else v for v in items)
    return value
