"""Who is on call: a rotation layer plus its overrides, at an instant.

Pure: no I/O and no clock. Instants in and out are UTC epoch floats, like
`Clock.time()`; wall-clock time exists only inside. Handoffs are laid out on
local days in the schedule's zone and only then converted to UTC (the same
way `correlator.calendar` lays out business hours), so a Monday 08:00 handoff
in Prague is 07:00 UTC in winter and 06:00 UTC in summer, and a week that
spans a DST change is 167 or 169 hours long.

An override beats the rotation for its span. The shift reported is the span
over which the engineer found stays on call without interruption in this
layer: the rotation shift cut by any override inside it, or the override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from correlator.calendar import instant, local_date
from monitord.config.oncall import Override, Rotation, Schedule

SEARCH_SHIFTS = 800
"""How many consecutive shifts `next_handover` looks through before giving up."""


@dataclass(frozen=True)
class OnCall:
    engineer: str  # the engineer's config name
    reason: str
    shift_start: float
    shift_end: float
    override: Override | None = None


@dataclass(frozen=True)
class Handover:
    at: float
    outgoing: OnCall
    incoming: OnCall


def who_is_on_call(
    schedule: Schedule,
    layer: Rotation,
    t: float,
    names: Mapping[str, str] | None = None,
) -> OnCall | None:
    """Who is on call in `layer` of `schedule` at instant `t`, and why.

    None before the rotation's first handoff with no override in force, and
    for a rotation with no engineers (config validation reports that). `names`
    maps engineers' config names to the names the reason shows ("Jan Novák").
    """
    zone = schedule.zone
    names = names or {}
    spans = sorted(
        ((*o.span(zone), o) for o in layer.overrides), key=lambda item: (item[0], item[1])
    )
    shift = _shift(layer, zone, t)
    for start, end, override in spans:
        if start <= t < end:
            covered = _rotation_text(layer, zone, shift, names) if shift else "no rotation shift"
            label = names.get(override.engineer, override.engineer)
            why = override.reason or "override"
            if override.set_by:
                why += f", set by {override.set_by}"
            return OnCall(
                override.engineer,
                f"{covered} (override: {why}, {label} covers until {_local(end, zone)})",
                start,
                end,
                override,
            )
    if shift is None:
        return None
    _, begin, finish, engineer = shift
    # An override inside the shift interrupts it.
    for start, end, _o in spans:
        if end <= t and end > begin:
            begin = end
        if start > t and start < finish:
            finish = start
    return OnCall(engineer, _rotation_text(layer, zone, shift, names), begin, finish)


def next_handover(
    schedule: Schedule,
    layer: Rotation,
    t: float,
    names: Mapping[str, str] | None = None,
) -> Handover | None:
    """The next instant after `t` at which the engineer on call in `layer` changes.

    None when nobody else takes over within `SEARCH_SHIFTS` shifts (a
    one-engineer rotation) or nobody is on call at `t`.
    """
    current = who_is_on_call(schedule, layer, t, names)
    if current is None:
        return None
    at = current.shift_end
    for _ in range(SEARCH_SHIFTS):
        following = who_is_on_call(schedule, layer, at, names)
        if following is None:
            return None
        if following.engineer != current.engineer:
            return Handover(at, current, following)
        at = following.shift_end
    return None


_Shift = tuple[int, float, float, str]  # index, start, end (UTC), engineer


def _shift(layer: Rotation, zone: ZoneInfo, t: float) -> _Shift | None:
    if not layer.engineers:
        return None
    days = 7 if layer.every == "weekly" else 1
    index = (local_date(t, zone) - layer.start).days // days
    if instant(_day(layer, index), layer.handoff_time, zone) > t:
        index -= 1
    if index < 0:
        return None
    start = instant(_day(layer, index), layer.handoff_time, zone)
    end = instant(_day(layer, index + 1), layer.handoff_time, zone)
    return index, start, end, layer.engineers[index % len(layer.engineers)]


def _day(layer: Rotation, index: int) -> date:
    days = 7 if layer.every == "weekly" else 1
    return layer.start + timedelta(days=index * days)


def _rotation_text(layer: Rotation, zone: ZoneInfo, shift: _Shift, names: Mapping[str, str]) -> str:
    _, start, _, engineer = shift
    period = "week" if layer.every == "weekly" else "day"
    return (
        f"{layer.every} rotation {layer.name!r}: {period} of {_local(start, zone)} "
        f"{zone.key}, {names.get(engineer, engineer)}"
    )


def _local(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
