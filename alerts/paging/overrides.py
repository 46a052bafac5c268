"""On-call overrides made at runtime (API, CLI), stored in `oncall_overrides`.

The effective on-call config is the loaded one with every stored override that is
not deleted added to its layer, so "who is on call" (API, CLI, escalation) sees
config and runtime overrides alike, each with who set it. A new override is
refused with every precise problem: unknown schedule, layer or engineer, an end
before the start, or an overlap with another override of the layer (config or
stored), named with its span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from monitord.config.oncall import OncallConfig, Override, Rotation, Schedule
from monitord.storage.schema import oncall_overrides

KEEP_PAST = 86400.0  # ended overrides stay in the effective config this long (shift reasons)


class OverrideRefused(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class StoredOverride:
    id: int
    schedule: str
    layer: str
    engineer: str
    start: float
    end: float
    reason: str
    created_by: str
    created_at: float
    deleted_at: float | None
    deleted_by: str | None

    def as_override(self) -> Override:
        return Override(
            engineer=self.engineer,
            start=datetime.fromtimestamp(self.start, UTC),
            end=datetime.fromtimestamp(self.end, UTC),
            reason=self.reason or f"override #{self.id}",
            set_by=self.created_by,
        )


def _row(r: Any) -> StoredOverride:
    return StoredOverride(
        r.id,
        r.schedule,
        r.layer,
        r.engineer,
        r.start,
        r.end,
        r.reason,
        r.created_by,
        r.created_at,
        r.deleted_at,
        r.deleted_by,
    )


def stored(conn: Connection, now: float, *, all_: bool = False) -> list[StoredOverride]:
    """Overrides not deleted that end after `now - KEEP_PAST` (or every one, `all_`)."""
    q = select(oncall_overrides).order_by(oncall_overrides.c.start, oncall_overrides.c.id)
    if not all_:
        q = q.where(
            oncall_overrides.c.deleted_at.is_(None), oncall_overrides.c.end > now - KEEP_PAST
        )
    return [_row(r) for r in conn.execute(q)]


def effective(oncall: OncallConfig, overrides: list[StoredOverride]) -> OncallConfig:
    """`oncall` with the stored overrides added to their layers (unknown layers skipped:
    a reload may have removed one)."""
    by_layer: dict[tuple[str, str], list[Override]] = {}
    for o in overrides:
        if o.deleted_at is None:
            by_layer.setdefault((o.schedule, o.layer), []).append(o.as_override())
    if not by_layer:
        return oncall
    schedules = []
    for schedule in oncall.schedules:
        layers = []
        for layer in schedule.layers:
            extra = by_layer.get((schedule.name, layer.name))
            layers.append(
                layer.model_copy(update={"overrides": (*layer.overrides, *extra)})
                if extra
                else layer
            )
        schedules.append(schedule.model_copy(update={"layers": tuple(layers)}))
    return oncall.model_copy(update={"schedules": tuple(schedules)})


def add(
    conn: Connection,
    oncall: OncallConfig,
    body: Mapping[str, Any],
    now: float,
) -> StoredOverride:
    """Validate and store one override; raises OverrideRefused with every problem.

    `body`: schedule, layer, engineer, start, end (ISO with offset, or local to the
    schedule's zone without one), reason, by (who sets it).
    """
    problems: list[tuple[str, str]] = []
    schedule, layer = _where(oncall, body, problems)
    engineer, by = body.get("engineer"), body.get("by")
    if isinstance(engineer, str) and oncall.engineer(engineer) is None:
        problems.append(("engineer", f"unknown engineer {engineer!r}"))
    zone = schedule.zone if schedule is not None else UTC
    start = _instant(body.get("start"), zone, "start", problems)
    end = _instant(body.get("end"), zone, "end", problems)
    if start is not None and end is not None:
        if end <= start:
            problems.append(("end", "must be after start"))
        elif end <= now:
            problems.append(("end", "is in the past"))
    if problems:
        raise OverrideRefused(problems)
    assert schedule is not None and layer is not None and start is not None and end is not None
    problems = _overlaps(conn, oncall, schedule, layer.name, start, end, now)
    if problems:
        raise OverrideRefused(problems)
    reason = body.get("reason")
    result = conn.execute(
        insert(oncall_overrides).values(
            schedule=schedule.name,
            layer=layer.name,
            engineer=engineer,
            start=start,
            end=end,
            reason=(reason if isinstance(reason, str) else "")[:500],
            created_by=by,
            created_at=now,
        )
    )
    new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    row = conn.execute(select(oncall_overrides).where(oncall_overrides.c.id == new_id)).one()
    return _row(row)


def _where(
    oncall: OncallConfig, body: Mapping[str, Any], problems: list[tuple[str, str]]
) -> tuple[Schedule | None, Rotation | None]:
    for field in ("schedule", "layer", "engineer", "by"):
        value = body.get(field)
        if not isinstance(value, str) or not 0 < len(value) <= 100:
            problems.append((field, "required (1-100 characters)"))
    name, layer_name = body.get("schedule"), body.get("layer")
    schedule = oncall.schedule(name) if isinstance(name, str) else None
    if isinstance(name, str) and schedule is None:
        problems.append(("schedule", f"unknown schedule {name!r}"))
    layer = schedule.layer(layer_name) if schedule and isinstance(layer_name, str) else None
    if schedule is not None and isinstance(layer_name, str) and layer is None:
        problems.append(("layer", f"unknown layer {layer_name!r} in {schedule.name!r}"))
    return schedule, layer


def _overlaps(
    conn: Connection,
    oncall: OncallConfig,
    schedule: Schedule,
    layer: str,
    start: float,
    end: float,
    now: float,
) -> list[tuple[str, str]]:
    current = effective(oncall, stored(conn, now)).schedule(schedule.name)
    existing = current.layer(layer) if current else None
    problems = []
    for other in existing.overrides if existing else ():
        a, b = other.span(schedule.zone)
        if start < b and a < end:
            who = other.engineer + (f", set by {other.set_by}" if other.set_by else ", config")
            problems.append(
                (
                    "start",
                    f"overlaps the override {_local(a, schedule)} to {_local(b, schedule)} "
                    f"({who}) in {schedule.name}/{layer}",
                )
            )
    return problems


def delete(conn: Connection, override_id: int, by: str, now: float) -> StoredOverride | None:
    """Mark one stored override deleted; None when there is none (or it is gone already)."""
    row = conn.execute(
        select(oncall_overrides).where(
            oncall_overrides.c.id == override_id, oncall_overrides.c.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    conn.execute(
        update(oncall_overrides)
        .where(oncall_overrides.c.id == override_id)
        .values(deleted_at=now, deleted_by=by)
    )
    return _row(
        conn.execute(select(oncall_overrides).where(oncall_overrides.c.id == override_id)).one()
    )


def _instant(value: Any, zone: Any, field: str, problems: list[tuple[str, str]]) -> float | None:
    if not isinstance(value, str):
        problems.append((field, "required: an ISO time (2026-11-23T08:00, offset optional)"))
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append((field, f"not an ISO time: {value!r}"))
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()


def _local(t: float, schedule: Any) -> str:
    return datetime.fromtimestamp(t, UTC).astimezone(schedule.zone).strftime("%Y-%m-%d %H:%M")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def view(o: StoredOverride) -> dict[str, Any]:
    iso = _iso
    return {
        "id": o.id,
        "schedule": o.schedule,
        "layer": o.layer,
        "engineer": o.engineer,
        "start": iso(o.start),
        "end": iso(o.end),
        "reason": o.reason,
        "created_by": o.created_by,
        "created_at": iso(o.created_at),
        "deleted_at": iso(o.deleted_at),
        "deleted_by": o.deleted_by,
    }
