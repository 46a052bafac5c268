"""Check state and inventory snapshot persistence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from monitord.inventory import Inventory
from monitord.model import Status
from monitord.state import CheckState, StateType
from monitord.storage.schema import check_state, checks, customers, devices
from monitord.storage.upsert import upsert


def load_states(conn: Connection) -> dict[str, tuple[CheckState, str, float]]:
    """check id → (state, last output, last check time) as stored."""
    out: dict[str, tuple[CheckState, str, float]] = {}
    for row in conn.execute(select(check_state)):
        state = CheckState(
            status=Status(row.status),
            state_type=StateType(row.state_type),
            hard_status=Status(row.hard_status),
            attempt=row.attempt,
            last_change=row.last_change,
            last_hard_change=row.last_hard_change,
            history=row.history,
            samples=row.samples,
            flapping=bool(row.flapping),
            version=row.version,
        )
        out[row.check_id] = (state, row.output, row.last_check)
    return out


def state_row(
    check_id: str, s: CheckState, output: str, duration: float, ts: float
) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "status": int(s.status),
        "state_type": int(s.state_type),
        "hard_status": int(s.hard_status),
        "attempt": s.attempt,
        "last_check": ts,
        "last_change": s.last_change,
        "last_hard_change": s.last_hard_change,
        "history": s.history,
        "samples": s.samples,
        "flapping": s.flapping,
        "version": s.version,
        "output": output,
        "duration": duration,
    }


def sync_inventory(conn: Connection, inventory: Inventory, now: float) -> None:
    """Store the inventory snapshot; devices and checks no longer in it are
    marked retired (never deleted: their history stays)."""
    upsert(
        conn,
        customers,
        [
            {
                "name": c.name,
                "display_name": c.display_name,
                "data": c.model_dump(mode="json", exclude={"name", "display_name"}),
                "updated_at": now,
            }
            for c in inventory.customers.values()
        ],
        "name",
    )
    upsert(
        conn,
        devices,
        [
            {
                "id": d.id,
                "customer": d.customer,
                "site": d.site,
                "name": d.name,
                "address": d.address,
                "role": d.role,
                "os": d.os,
                "criticality": d.criticality,
                "tags": list(d.tags),
                "parent_id": d.parent_id,
                "source": d.source,
                "retired_at": None,
                "updated_at": now,
            }
            for d in inventory.devices.values()
        ],
        "id",
    )
    upsert(
        conn,
        checks,
        [
            {
                "id": c.id,
                "device_id": c.device_id,
                "name": c.name,
                "kind": c.kind,
                "params": c.params.model_dump(mode="json", exclude_none=True),
                "interval": c.interval,
                "retry_interval": c.retry_interval,
                "max_attempts": c.max_attempts,
                "timeout": c.timeout,
                "retired_at": None,
                "updated_at": now,
            }
            for c in inventory.checks
        ],
        "id",
    )
    # The inventory is the whole running one (config and RMM-synced devices merged):
    # whatever it no longer has is retired, whichever source it came from.
    conn.execute(
        update(devices)
        .where(devices.c.updated_at < now, devices.c.retired_at.is_(None))
        .values(retired_at=now)
    )
    conn.execute(
        update(checks)
        .where(checks.c.updated_at < now, checks.c.retired_at.is_(None))
        .values(retired_at=now)
    )
