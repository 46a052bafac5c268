"""Maintenance windows and silences as pure matchers over an event's labels.

Pure: no I/O and no clock. Instants are UTC epoch floats (as `Clock.time()`
and `Event.ts`); window times are wall-clock times in the window's zone (its
`timezone`, else its customer's contract zone, else UTC) and are converted
per occurrence, so a weekly 20:00 window stays at 20:00 across DST changes.

Each active window or matching silence comes back as a `Suppression` whose
`reason` is recorded with the muted alert (style principle 9) and whose
`until` says when to look again: a problem still present when the window
ends is notified then. What to mute is the caller's decision; these muters
are meant for *new* problems only; a recovery is never suppressed (§3-3).

Labels are plain strings: customer, site, device (name), device_id
(`customer/name`), check (name), category, source, severity (`critical`),
role, and tags (comma-separated). A missing label is the empty string, as in
Alertmanager. `event_labels` builds them from an event and its device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from correlator.calendar import Interval, local_date, weekly_intervals
from correlator.events import Event
from monitord.config.model import Customer, MaintenanceWindow, Matcher, Silence
from monitord.inventory import Device

LOOKAHEAD_DAYS = 31
"""How far back-to-back occurrences are followed to find where a window ends."""

_MAX_CHAIN = 10_000  # cron occurrences followed at most (`* * * * *` for a month is 44,640)


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why an event is muted, and until when (None: no end)."""

    kind: Literal["maintenance", "silence"]
    reason: str  # "maintenance 'patch tuesday' (acme, until 2026-11-24T22:00Z)"
    until: float | None
    source: MaintenanceWindow | Silence


# -- maintenance windows ----------------------------------------------------------


def active_windows(
    windows: Iterable[MaintenanceWindow],
    labels: Mapping[str, str],
    now: float,
    *,
    zones: Mapping[str, str],
) -> list[Suppression]:
    """The windows that cover an event with `labels` at `now`, in config order.

    `zones` maps customer → IANA zone (`customer_zones(config.customers)`); it
    is required because a window's wall-clock times mean nothing without it. A
    window of a customer not in it, or of none, is in UTC unless it names a
    `timezone`.
    """
    out = []
    for window in windows:
        if not in_scope(window, labels):
            continue
        span = occurrence(window, now, zone=window_zone(window, zones))
        if span is not None:
            out.append(Suppression("maintenance", _window_reason(window, span[1]), span[1], window))
    return out


def window_end(window: MaintenanceWindow, now: float, *, zones: Mapping[str, str]) -> float | None:
    """When the occurrence of `window` active at `now` ends, or None if none is active.

    Back-to-back occurrences count as one (a weekly `mon-sun 00:00-00:00`
    window ends where `LOOKAHEAD_DAYS` does).
    """
    span = occurrence(window, now, zone=window_zone(window, zones))
    return None if span is None else span[1]


def occurrence(window: MaintenanceWindow, now: float, *, zone: ZoneInfo) -> Interval | None:
    """The span of `window` containing `now` (within its `start`/`end` bounds), or None."""
    if not (window.weekly or window.cron):
        one_off = _one_off(window, zone)
        return one_off if _contains(one_off, now) else None
    span: Interval | None
    if window.weekly:
        span = _weekly_span(window, now, zone)
    else:
        span = _cron_span(window.cron or "", window.duration or 0.0, now, zone)
    if span is None:
        return None
    # `start`/`end` bound a recurring window: it is off outside them.
    low = _instant(window.start, zone) if window.start else float("-inf")
    high = _instant(window.end, zone) if window.end else float("inf")
    bounded = (max(span[0], low), min(span[1], high))
    return bounded if _contains(bounded, now) else None


def in_scope(window: MaintenanceWindow, labels: Mapping[str, str]) -> bool:
    """Whether an event with `labels` is in `window`'s scope (customer, sites, devices, tags)."""
    customer = labels.get("customer", "")
    if window.customer and customer != window.customer:
        return False
    if window.sites and not any(
        s in (labels.get("site"), f"{customer}/{labels.get('site', '')}") for s in window.sites
    ):
        return False
    if window.devices and not any(
        d in (labels.get("device"), labels.get("device_id")) for d in window.devices
    ):
        return False
    return not window.tags or bool(set(window.tags) & _tags(labels))


def window_zone(window: MaintenanceWindow, zones: Mapping[str, str]) -> ZoneInfo:
    """The zone `window`'s times are in: its own, its customer's, or UTC."""
    name = window.timezone or zones.get(window.customer or "", "UTC")
    return _zone(name)


def customer_zones(customers: Iterable[Customer]) -> dict[str, str]:
    """Customer name → contract time zone, for `active_windows(zones=...)`."""
    return {c.name: c.contract.timezone for c in customers}


def _one_off(window: MaintenanceWindow, zone: ZoneInfo) -> Interval:
    assert window.start is not None  # the model guarantees start and end or duration
    start = _instant(window.start, zone)
    end = _instant(window.end, zone) if window.end else start + (window.duration or 0.0)
    return start, end


def _weekly_span(window: MaintenanceWindow, now: float, zone: ZoneInfo) -> Interval | None:
    first = local_date(now, zone) - timedelta(days=1)
    for start, end in weekly_intervals(window.weekly, zone, first, LOOKAHEAD_DAYS):
        if start > now:
            return None
        if now < end:
            return start, end
    return None


def _cron_span(expr: str, duration: float, now: float, zone: ZoneInfo) -> Interval | None:
    # The latest firing at or before `now`: CronSim in reverse yields times
    # strictly before its start, so start one second after `now`.
    local = datetime.fromtimestamp(int(now) + 1, UTC).astimezone(zone)
    fired = next(CronSim(expr, local, reverse=True), None)
    if fired is None:
        return None
    start = fired.timestamp()
    end = start + duration
    if now >= end:
        return None
    # Follow occurrences that begin before this one ends.
    limit = now + LOOKAHEAD_DAYS * 86400.0
    later = CronSim(expr, fired)
    for _ in range(_MAX_CHAIN):
        nxt = next(later).timestamp()
        if nxt > end or end >= limit:
            break
        end = max(end, nxt + duration)
    return start, end


def _window_reason(window: MaintenanceWindow, until: float) -> str:
    scope = [window.customer or "all customers"]
    for noun, values in (("site", window.sites), ("device", window.devices), ("tag", window.tags)):
        if values:
            scope.append(f"{noun}{'s' if len(values) > 1 else ''} {' '.join(values)}")
    return f"maintenance {window.name!r} ({' '.join(scope)}, until {_iso(until)})"


# -- silences -----------------------------------------------------------------------


def matching_silences(
    silences: Iterable[Silence], labels: Mapping[str, str], now: float
) -> list[Suppression]:
    """The silences in effect at `now` whose every matcher holds for `labels`."""
    return [
        Suppression("silence", _silence_reason(s), _ts(s.expiry), s)
        for s in silences
        if silence_active(s, now) and all(matches(m, labels) for m in s.matchers)
    ]


def silence_active(silence: Silence, now: float) -> bool:
    """Whether `now` is in `[start, expiry)` (an open end is unbounded)."""
    start, expiry = _ts(silence.start), _ts(silence.expiry)
    return (start is None or start <= now) and (expiry is None or now < expiry)


def matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy `matcher`. `tags` is a set: `tags=vip` holds when
    vip is one of the tags, `tags=~win.*` when one tag matches."""
    values = sorted(_tags(labels)) if matcher.name == "tags" else [labels.get(matcher.name, "")]
    if matcher.name == "tags" and not values:
        values = [""]
    if matcher.op in ("=", "!="):
        hit = matcher.value in values
    else:
        pattern = _regex(matcher.value)
        hit = any(pattern.fullmatch(v) is not None for v in values)
    return hit == (matcher.op in ("=", "=~"))


def _silence_reason(silence: Silence) -> str:
    ident = f"silence #{silence.id}" if silence.id is not None else "silence"
    return f"{ident} by {silence.author}: {silence.reason}"


# -- labels ---------------------------------------------------------------------------


def event_labels(
    event: Event, device: Device | None = None, *, category: str | None = None
) -> dict[str, str]:
    """The labels windows and silences match on, for `event` on `device`.

    `category` overrides the event's own (a rule may have derived a better one).
    """
    labels = {
        "customer": event.customer or "",
        "check": (event.check_id or "").rsplit("/", 1)[-1],
        "category": event.category if category is None else category,
        "source": event.source,
        "severity": event.status.label,
        "device_id": event.device_id or "",
    }
    if device is not None:
        labels |= {
            "customer": device.customer,
            "site": device.site or "",
            "device": device.name,
            "device_id": device.id,
            "role": device.role,
            "tags": ",".join(device.tags),
        }
    return labels


def _tags(labels: Mapping[str, str]) -> set[str]:
    return {t for t in labels.get("tags", "").split(",") if t}


# -- time helpers -------------------------------------------------------------------------


def _instant(value: datetime, zone: ZoneInfo) -> float:
    """A config time as an instant: naive means wall-clock time in `zone`."""
    return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _contains(span: Interval, now: float) -> bool:
    return span[0] <= now < span[1]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
