"""Business time per customer: contract hours in the customer's zone, minus holidays.

Pure: no I/O and no clock. Every instant in and out is a UTC epoch float
(seconds), the same unit as `Clock.time()` and `Event.ts`; local wall-clock
time exists only inside this module. Hours are laid out per local day and only
then converted to UTC, so a DST change moves them with the wall clock
(08:00 is 07:00 UTC in winter and 06:00 UTC in summer in Prague).

A day is closed when it is a public holiday of the contract's country (and
subdivision, from the `holidays` package) or one of its `closed_days`. A
closed day has no windows *starting* on it: an overnight window that starts
the evening before a holiday still runs until its end.

Questions this answers: "is it business time for acme now?"
(`is_business_time`), "when may a non-covered customer's P1 at 02:00 Saturday
page?" (`next_business_start`), and the business-time SLA clock
(`business_seconds_between`, `add_business_seconds`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from monitord.config.model import BusinessWindow, Contract, Customer

Interval = tuple[float, float]
"""A half-open UTC span `[start, end)` in epoch seconds."""

HORIZON_DAYS = 400
"""How far ahead a search looks; past that there is no business time at all."""

_CACHE_DAYS = 4096  # per calendar; days are tiny, this only bounds a years-long run


def local_date(t: float, zone: ZoneInfo) -> date:
    """The calendar date in `zone` at instant `t`."""
    return datetime.fromtimestamp(t, UTC).astimezone(zone).date()


def instant(day: date, clock: time, zone: ZoneInfo) -> float:
    """The instant of wall-clock `clock` on `day` in `zone`.

    A time in the spring-forward gap (02:30 on the last Sunday of March in
    Prague) maps to the instant that the same offset as before the gap gives
    (03:30 CEST); an ambiguous autumn time maps to its first occurrence.
    """
    return datetime.combine(day, clock, tzinfo=zone).timestamp()


def day_intervals(windows: Iterable[BusinessWindow], zone: ZoneInfo, day: date) -> list[Interval]:
    """UTC intervals of the `windows` that start on local `day`, sorted by start.

    A window whose end is at or before its start runs into the next day. One
    that lies wholly inside a spring-forward gap is empty and left out.
    """
    out = []
    for window in windows:
        if day.weekday() not in window.days:
            continue
        end_day = day if window.end > window.start else day + timedelta(days=1)
        start, end = instant(day, window.start, zone), instant(end_day, window.end, zone)
        if end > start:
            out.append((start, end))
    return sorted(out)


def merged(per_day: Iterable[list[Interval]]) -> Iterator[Interval]:
    """Merge per-day interval lists (in day order) into disjoint, ordered intervals.

    Touching intervals merge too, so 24/7 hours form one long interval rather
    than a series that ends at every midnight.
    """
    current: Interval | None = None
    for intervals in per_day:
        for start, end in intervals:
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                yield current
            current = (start, end)
    if current is not None:
        yield current


def weekly_intervals(
    windows: tuple[BusinessWindow, ...],
    zone: ZoneInfo,
    first: date,
    days: int,
) -> Iterator[Interval]:
    """Merged UTC intervals of `windows` starting on the `days` local days from `first`."""
    return merged(day_intervals(windows, zone, first + timedelta(days=n)) for n in range(days))


class BusinessCalendar:
    """Business time of one contract. Build through `Calendars`, which caches.

    Never raises for a time; an unknown holidays country raises
    NotImplementedError at construction (config validation reports it first).
    """

    def __init__(self, contract: Contract, public: holidays.HolidayBase | None = None) -> None:
        self.contract = contract
        self.zone = ZoneInfo(contract.timezone)
        self._public = public if public is not None else public_holidays(contract)
        self._closed_days = frozenset(contract.closed_days)
        self._days: dict[date, list[Interval]] = {}

    def closed_reason(self, day: date) -> str | None:
        """Why local `day` has no business hours ("Christmas Eve", "closed day"), or None."""
        if day in self._closed_days:
            return "closed day"
        if self._public is not None and day in self._public:
            return str(self._public.get(day))
        return None

    def is_business_time(self, t: float) -> bool:
        """Whether instant `t` falls inside the contract's business hours."""
        for start, end in self.intervals(t, days=3):
            if start > t:
                break
            if t < end:
                return True
        return False

    def next_business_start(self, t: float) -> float | None:
        """`t` itself when it is business time, else the next instant that is.

        None when there is no business time within `HORIZON_DAYS` (a contract
        with no hours at all).
        """
        for start, end in self.intervals(t):
            if end > t:
                return max(start, t)
        return None

    def business_seconds_between(self, a: float, b: float) -> float:
        """Seconds of business time in `[a, b)`; 0 when `b <= a`."""
        if b <= a:
            return 0.0
        span = (local_date(b, self.zone) - local_date(a, self.zone)).days + 2
        total = 0.0
        for start, end in self.intervals(a, days=span):
            if start >= b:
                break
            total += max(0.0, min(end, b) - max(start, a))
        return total

    def add_business_seconds(self, t: float, seconds: float) -> float | None:
        """The instant at which `seconds` of business time have passed since `t`.

        This is the due time of a business-hours SLA clock started at `t`; with
        `seconds == 0` it is `next_business_start(t)`. None past `HORIZON_DAYS`.
        """
        left = seconds
        for start, end in self.intervals(t):
            if end <= t:
                continue
            begin = max(start, t)
            if left <= end - begin:
                return begin + left
            left -= end - begin
        return None

    def intervals(self, t: float, days: int = HORIZON_DAYS) -> Iterator[Interval]:
        """Merged business intervals starting on the local days from the day before
        `t`'s (whose overnight window may still run) on, in order; the first may
        end before `t`."""
        first = local_date(t, self.zone) - timedelta(days=1)
        return merged(self._day(first + timedelta(days=n)) for n in range(days + 1))

    def _day(self, day: date) -> list[Interval]:
        cached = self._days.get(day)
        if cached is None:
            cached = (
                []
                if self.closed_reason(day)
                else day_intervals(self.contract.business_hours, self.zone, day)
            )
            if len(self._days) >= _CACHE_DAYS:
                self._days.clear()
            self._days[day] = cached
        return cached


def public_holidays(contract: Contract) -> holidays.HolidayBase | None:
    """The contract's public holidays (English names), or None for `holidays_country: ""`.

    Raises NotImplementedError for a country or subdivision the package lacks.
    """
    if not contract.holidays_country:
        return None
    return holidays.country_holidays(
        contract.holidays_country.upper(),
        subdiv=contract.holidays_subdivision,
        language="en_US",
    )


class Calendars:
    """Business calendars by customer name, built on first use and kept.

    Build one per loaded config (a reload builds a new one). A customer the
    config does not know, or None, gets the default contract's calendar.
    """

    def __init__(self, customers: Iterable[Customer]) -> None:
        self._contracts = {c.name: c.contract for c in customers}
        self._calendars: dict[str | None, BusinessCalendar] = {}
        self._public: dict[tuple[str, str | None], holidays.HolidayBase | None] = {}

    def get(self, customer: str | None) -> BusinessCalendar:
        """The calendar of `customer`'s contract."""
        key = customer if customer in self._contracts else None
        calendar = self._calendars.get(key)
        if calendar is None:
            contract = self._contracts[key] if key is not None else Contract()
            # Customers in one country share one holiday table.
            country = (contract.holidays_country.upper(), contract.holidays_subdivision)
            if country not in self._public:
                self._public[country] = public_holidays(contract)
            calendar = BusinessCalendar(contract, self._public[country])
            self._calendars[key] = calendar
        return calendar
