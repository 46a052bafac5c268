"""The RMM feed's tables (blocking calls; the feed runs them in worker threads).

Everything the feed decides is here, so a restart (or a standby daemon) carries
on from the stored mapping, observations, verdicts and feed health, and never
raises an incident twice nor forgets one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from monitord.rmm.mapping import RETIRED, ConflictRow, DeviceRow, SyncPlan, username
from monitord.storage.schema import (
    devices,
    rmm_conflicts,
    rmm_devices,
    rmm_feeds,
    rmm_logons,
    rmm_observations,
    rmm_verdict_log,
)
from monitord.storage.upsert import upsert

_ROW_FIELDS = tuple(f.name for f in fields(DeviceRow))


def _device_row(r: Any) -> DeviceRow:
    return DeviceRow(**{f: getattr(r, f) for f in _ROW_FIELDS})


def device_rows(conn: Connection, source: str | None = None) -> dict[tuple[str, str], DeviceRow]:
    """(source, rmm id) → mapping row, of one source or all."""
    q = select(rmm_devices)
    if source is not None:
        q = q.where(rmm_devices.c.source == source)
    return {(r.source, r.rmm_id): _device_row(r) for r in conn.execute(q)}


def active_rows(conn: Connection) -> list[DeviceRow]:
    """The rows the running inventory is merged from."""
    q = select(rmm_devices).where(rmm_devices.c.state == "active")
    return [_device_row(r) for r in conn.execute(q)]


def save_plan(conn: Connection, source: str, plan: SyncPlan, now: float) -> list[ConflictRow]:
    """Write one sync's rows, conflicts and logons (in the caller's transaction);
    returns the conflicts not already open (new ones, to report)."""
    upsert(
        conn,
        rmm_devices,
        [{f: _plain(getattr(r, f)) for f in _ROW_FIELDS} for r in plan.rows],
        ("source", "rmm_id"),
    )
    retired = [
        r.device_id for r in plan.rows if r.state == RETIRED and r.device_id and not r.linked
    ]
    if retired:
        conn.execute(
            update(devices)
            .where(devices.c.id.in_(retired), devices.c.retired_at.is_(None))
            .values(retired_at=now)
        )
    new = _save_conflicts(conn, source, plan, now)
    _save_logons(conn, source, plan, now)
    return new


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _save_conflicts(conn: Connection, source: str, plan: SyncPlan, now: float) -> list[ConflictRow]:
    open_rows = {
        (r.kind, r.subject): r.id
        for r in conn.execute(
            select(rmm_conflicts.c.id, rmm_conflicts.c.kind, rmm_conflicts.c.subject).where(
                rmm_conflicts.c.source == source, rmm_conflicts.c.resolved_at.is_(None)
            )
        )
    }
    seen: set[int] = set()
    new: list[ConflictRow] = []
    for c in plan.conflicts:
        values = {"name": c.name, "customer": c.customer, "other": c.other, "detail": c.detail}
        row_id = open_rows.get((c.kind, c.subject))
        if row_id is not None:
            seen.add(row_id)
            conn.execute(
                update(rmm_conflicts)
                .where(rmm_conflicts.c.id == row_id)
                .values(last_seen=now, **values)
            )
        else:
            new.append(c)
            conn.execute(
                insert(rmm_conflicts).values(
                    source=source,
                    kind=c.kind,
                    subject=c.subject,
                    first_seen=now,
                    last_seen=now,
                    **values,
                )
            )
    gone = [i for i in open_rows.values() if i not in seen]
    if gone:
        conn.execute(
            update(rmm_conflicts).where(rmm_conflicts.c.id.in_(gone)).values(resolved_at=now)
        )
    return new


def _save_logons(conn: Connection, source: str, plan: SyncPlan, now: float) -> None:
    current = and_(rmm_logons.c.source == source, rmm_logons.c.ended_at.is_(None))
    changed = [lg.rmm_id for lg in plan.logons]
    for chunk in _chunks(changed):
        conn.execute(
            update(rmm_logons).where(current, rmm_logons.c.rmm_id.in_(chunk)).values(ended_at=now)
        )
    new = [
        {
            "source": source,
            "rmm_id": lg.rmm_id,
            "device_id": lg.device_id,
            "user": lg.user,
            "username": username(lg.user),
            "first_seen": now,
            "last_seen": now,
        }
        for lg in plan.logons
        if lg.user
    ]
    if new:
        conn.execute(insert(rmm_logons), new)
    for chunk in _chunks(plan.seen_users):
        conn.execute(
            update(rmm_logons).where(current, rmm_logons.c.rmm_id.in_(chunk)).values(last_seen=now)
        )


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# observations ----------------------------------------------------------------


@dataclass(slots=True)
class Observation:
    """One row of `rmm_observations` (see the schema)."""

    id: int | None
    source: str
    key: str
    origin: str
    rmm_device_id: str
    device_id: str | None
    customer: str | None
    kind: str
    category: str
    check_type: str
    description: str
    output: str
    status: str
    started_at: float | None
    consecutive_fails: int
    first_seen: float
    last_seen: float
    cleared_at: float | None = None
    verdict: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    rule: str = ""
    decided_at: float | None = None
    verified_at: float | None = None
    check_id: str | None = None
    fingerprint: str | None = None
    incident_id: int | None = None
    escalated_at: float | None = None


_OBS_FIELDS = tuple(f.name for f in fields(Observation))


def _observation(r: Any) -> Observation:
    return Observation(**{f: getattr(r, f) for f in _OBS_FIELDS})


def open_observations(conn: Connection, source: str | None = None) -> list[Observation]:
    q = select(rmm_observations).where(rmm_observations.c.cleared_at.is_(None))
    if source is not None:
        q = q.where(rmm_observations.c.source == source)
    return [_observation(r) for r in conn.execute(q.order_by(rmm_observations.c.id))]


def cleared_observations(conn: Connection, source: str, since: float) -> list[Observation]:
    """Observations of `source` cleared at or after `since` (what the RMM reported
    lately and stopped reporting)."""
    q = select(rmm_observations).where(
        rmm_observations.c.source == source, rmm_observations.c.cleared_at >= since
    )
    return [_observation(r) for r in conn.execute(q.order_by(rmm_observations.c.id))]


def save_observations(conn: Connection, rows: Sequence[Observation]) -> None:
    """Insert new observations (id None; they get their id) and update the others."""
    new = [o for o in rows if o.id is None]
    old = [o for o in rows if o.id is not None]
    if new:
        values = [{f: getattr(o, f) for f in _OBS_FIELDS if f != "id"} for o in new]
        ids = conn.execute(
            insert(rmm_observations).returning(rmm_observations.c.id, sort_by_parameter_order=True),
            values,
        ).scalars()
        for obs, new_id in zip(new, ids, strict=True):
            obs.id = int(new_id)
    if old:
        upsert(conn, rmm_observations, [{f: getattr(o, f) for f in _OBS_FIELDS} for o in old], "id")


def log_verdicts(conn: Connection, entries: Sequence[tuple[Observation, float]]) -> None:
    """Record each observation's (new) verdict in its history."""
    rows = [
        {"observation_id": o.id, "ts": ts, "verdict": o.verdict or "pending", "rule": o.rule}
        for o, ts in entries
    ]
    if rows:
        conn.execute(insert(rmm_verdict_log), rows)


def holders(conn: Connection, fingerprint: str, exclude: Iterable[int]) -> int:
    """How many other open observations feed the incident `fingerprint`."""
    q = select(rmm_observations.c.id).where(
        rmm_observations.c.fingerprint == fingerprint, rmm_observations.c.cleared_at.is_(None)
    )
    skip = set(exclude)
    return sum(1 for r in conn.execute(q) if r.id not in skip)


# feed health ------------------------------------------------------------------


@dataclass(slots=True)
class FeedState:
    source: str
    kind: str
    created_at: float
    last_poll_at: float | None = None
    last_good_at: float | None = None
    failing_since: float | None = None
    error: str = ""
    error_reason: str = ""
    stale_since: float | None = None
    stale_raised: bool = False
    last_sync_at: float | None = None
    last_good_sync_at: float | None = None
    sync_error: str = ""
    counts: dict[str, int] = field(default_factory=dict)


_FEED_FIELDS = tuple(f.name for f in fields(FeedState))


def feed_state(conn: Connection, source: str, kind: str, now: float) -> FeedState:
    row = conn.execute(select(rmm_feeds).where(rmm_feeds.c.source == source)).first()
    if row is None:
        state = FeedState(source, kind, created_at=now)
        save_feed(conn, state)
        return state
    return FeedState(**{f: getattr(row, f) for f in _FEED_FIELDS})


def save_feed(conn: Connection, state: FeedState) -> None:
    upsert(conn, rmm_feeds, [{f: getattr(state, f) for f in _FEED_FIELDS}], "source")
