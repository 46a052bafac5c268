"""Read models of the RMM feed for the API and the CLI (blocking; run in threads)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from monitord.api.views import iso
from monitord.storage.schema import (
    rmm_conflicts,
    rmm_devices,
    rmm_feeds,
    rmm_logons,
    rmm_observations,
    rmm_verdict_log,
)


def feeds(engine: Engine, now: float) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            {
                "source": r.source,
                "kind": r.kind,
                "ok": r.failing_since is None,
                "stale": r.stale_since is not None,
                "stale_since": iso(r.stale_since),
                "last_poll_at": iso(r.last_poll_at),
                "last_good_at": iso(r.last_good_at),
                "age_seconds": round(now - (r.last_good_at or r.created_at), 1),
                "failing_since": iso(r.failing_since),
                "error": r.error or None,
                "error_reason": r.error_reason or None,
                "last_sync_at": iso(r.last_sync_at),
                "last_good_sync_at": iso(r.last_good_sync_at),
                "sync_error": r.sync_error or None,
                "sync_counts": r.counts,
            }
            for r in conn.execute(select(rmm_feeds).order_by(rmm_feeds.c.source))
        ]


def observation_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "key": r.key,
        "origin": r.origin,
        "rmm_device": r.rmm_device_id,
        "device": r.device_id,
        "customer": r.customer,
        "kind": r.kind,
        "category": r.category,
        "check_type": r.check_type,
        "description": r.description,
        "output": r.output,
        "status": r.status,
        "started_at": iso(r.started_at),
        "consecutive_fails": r.consecutive_fails,
        "first_seen": iso(r.first_seen),
        "last_seen": iso(r.last_seen),
        "cleared_at": iso(r.cleared_at),
        "verdict": r.verdict or "pending",
        "rule": r.rule,
        "evidence": r.evidence,
        "decided_at": iso(r.decided_at),
        "verified_at": iso(r.verified_at),
        "check": r.check_id,
        "incident": r.incident_id,
        "escalated_at": iso(r.escalated_at),
    }


def observations(
    engine: Engine,
    *,
    state: str = "open",
    verdict: str | None = None,
    customer: str | None = None,
    device: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Observations, newest first (`state`: open or all)."""
    o = rmm_observations
    q = select(o).order_by(o.c.id.desc()).limit(limit)
    if state == "open":
        q = q.where(o.c.cleared_at.is_(None))
    if verdict is not None:
        q = q.where(o.c.verdict == verdict)
    if customer is not None:
        q = q.where(o.c.customer == customer)
    if device is not None:
        q = q.where(o.c.device_id == device)
    with engine.connect() as conn:
        return [observation_dict(r) for r in conn.execute(q)]


def observation(engine: Engine, observation_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(rmm_observations).where(rmm_observations.c.id == observation_id)
        ).first()
        if row is None:
            return None
        out = observation_dict(row)
        out["history"] = [
            {"ts": iso(h.ts), "verdict": h.verdict, "rule": h.rule}
            for h in conn.execute(
                select(rmm_verdict_log)
                .where(rmm_verdict_log.c.observation_id == observation_id)
                .order_by(rmm_verdict_log.c.id)
            )
        ]
        return out


def for_incident(conn: Connection, incident_id: int, fingerprint: str) -> list[dict[str, Any]]:
    """The RMM observations that fed an incident (the incident detail's "rmm")."""
    o = rmm_observations
    q = (
        select(o)
        .where(or_(o.c.incident_id == incident_id, o.c.fingerprint == fingerprint))
        .order_by(o.c.id)
    )
    return [observation_dict(r) for r in conn.execute(q)]


def devices(
    engine: Engine, *, source: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    q = select(rmm_devices).order_by(rmm_devices.c.source, rmm_devices.c.name)
    if source is not None:
        q = q.where(rmm_devices.c.source == source)
    if state is not None:
        q = q.where(rmm_devices.c.state == state)
    with engine.connect() as conn:
        return [
            {
                "source": r.source,
                "rmm_id": r.rmm_id,
                "device": r.device_id,
                "linked": bool(r.linked),
                "state": r.state,
                "name": r.name,
                "kind": r.kind,
                "customer": r.customer,
                "site": r.site,
                "client": r.client_name,
                "rmm_site": r.site_name,
                "address": r.address,
                "os": r.os,
                "logged_on": r.logged_on or None,
                "last_seen": iso(r.last_seen),
                "missing_since": iso(r.missing_since),
                "retired_at": iso(r.retired_at),
            }
            for r in conn.execute(q)
        ]


def conflicts(engine: Engine, *, state: str = "open") -> list[dict[str, Any]]:
    q = select(rmm_conflicts).order_by(rmm_conflicts.c.id)
    if state == "open":
        q = q.where(rmm_conflicts.c.resolved_at.is_(None))
    with engine.connect() as conn:
        return [
            {
                "id": r.id,
                "source": r.source,
                "kind": r.kind,
                "subject": r.subject,
                "name": r.name,
                "customer": r.customer,
                "other": r.other or None,
                "detail": r.detail,
                "first_seen": iso(r.first_seen),
                "last_seen": iso(r.last_seen),
                "resolved_at": iso(r.resolved_at),
            }
            for r in conn.execute(q)
        ]


def logons(
    engine: Engine, *, user: str | None = None, device: str | None = None, current: bool = True
) -> list[dict[str, Any]]:
    """Who is (or was) logged on where: `user` matches the user name without its
    domain, case-insensitively (the start of the caller lookup)."""
    lg = rmm_logons
    q = select(lg).order_by(lg.c.last_seen.desc())
    if current:
        q = q.where(lg.c.ended_at.is_(None))
    if user is not None:
        name = user.rsplit("\\", 1)[-1].split("@", 1)[0].lower()
        q = q.where(lg.c.username == name)
    if device is not None:
        q = q.where(lg.c.device_id == device)
    with engine.connect() as conn:
        return [
            {
                "user": r.user,
                "username": r.username,
                "device": r.device_id,
                "source": r.source,
                "rmm_id": r.rmm_id,
                "first_seen": iso(r.first_seen),
                "last_seen": iso(r.last_seen),
                "ended_at": iso(r.ended_at),
            }
            for r in conn.execute(q.limit(500))
        ]
