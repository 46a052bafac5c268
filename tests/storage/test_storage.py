"""Storage on both back-ends: migrations, batched writes, restore, retire, prune."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, inspect, select

from monitord.config.load import config_from_dict
from monitord.errors import StorageError
from monitord.model import Status, critical, ok
from monitord.state import CheckState, Policy, StateType, step
from monitord.storage.db import open_database, redact
from monitord.storage.schema import check_state, checks, devices, results, state_transitions
from monitord.storage.states import load_states, sync_inventory
from monitord.writer import Writer


def inventory(n: int = 3) -> object:
    return config_from_dict(
        {
            "customers": [{"name": "acme", "sites": [{"name": "hq"}]}],
            "devices": [
                {
                    "name": "d{n}",
                    "count": n,
                    "customer": "acme",
                    "site": "hq",
                    "address": "127.30.0.1",
                    "checks": [{"type": "tcp", "port": 22}],
                }
            ],
        }
    ).inventory


def test_migrations_create_schema_and_are_idempotent(db_url: str) -> None:
    engine = open_database(db_url)
    open_database(db_url).dispose()  # second start: nothing to do, no error
    tables = set(inspect(engine).get_table_names())
    assert {
        "check_state",
        "results",
        "events",
        "incidents",
        "outbox",
        "tickets",
        "alembic_version",
    } <= tables
    engine.dispose()


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StorageError) as info:
        open_database("postgresql+psycopg://monitord:hunter2@127.0.0.1:1/monitord")
    assert "unreachable" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


async def test_batched_writes_restore_and_prune(db_url: str) -> None:
    engine = open_database(db_url)
    inv = inventory()
    with engine.begin() as conn:
        sync_inventory(conn, inv, 1000.0)  # type: ignore[arg-type]
    writer = Writer(engine, sink=lambda conn, events: None)
    state = CheckState()
    policy = Policy(2)
    for ts, result in enumerate([ok("up"), critical("down"), critical("down")], start=1000):
        state, changes = step(state, result.status, float(ts), policy)
        writer.add_result("acme/d1/tcp:22", float(ts), result, 0.01, state)
        for change in changes:
            writer.add_transition("acme/d1/tcp:22", float(ts), change, result.message)
    written = await writer.flush()
    assert written == 3 + 2 + 1  # results + transitions + one state row
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(state_transitions)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(check_state)).scalar_one() == 1
        restored, output, last = load_states(conn)["acme/d1/tcp:22"]
    assert restored == state and restored.state_type == StateType.HARD
    assert restored.hard_status == Status.CRITICAL and output == "down" and last == 1002.0
    assert await asyncio.to_thread(writer.prune, 1002.0) == 2
    engine.dispose()


async def test_failed_flush_keeps_the_batch(tmp_path: object) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/x.db")
    calls = []

    def sink(conn: object, changes: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")

    from correlator.model import Changes, LogEntry

    writer = Writer(engine, sink)
    writer.add_result("c", 1.0, ok("x"), 0.0, CheckState())
    writer.add_changes(Changes(log=[LogEntry(1, 1.0, "monitord", "opened", "x")]))
    with pytest.raises(RuntimeError):
        await writer.flush()
    assert len(writer.batch.results) == 1 and len(writer.batch.changes) == 1
    await writer.flush()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == 1
    assert len(calls) == 2
    engine.dispose()


def test_inventory_sync_retires_instead_of_deleting(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.begin() as conn:
        sync_inventory(conn, inventory(3), 1000.0)  # type: ignore[arg-type]
    with engine.begin() as conn:
        sync_inventory(conn, inventory(2), 2000.0)  # type: ignore[arg-type]
    with engine.connect() as conn:
        rows = dict(conn.execute(select(devices.c.id, devices.c.retired_at)).all())
        check_rows = dict(conn.execute(select(checks.c.id, checks.c.retired_at)).all())
    assert rows == {"acme/d1": None, "acme/d2": None, "acme/d3": 2000.0}
    assert check_rows["acme/d3/tcp:22"] == 2000.0
    engine.dispose()
