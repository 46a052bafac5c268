"""Shared fixtures: free ports, real PostgreSQL databases, loopback listeners.

Tests that need a service skip with a reason when it is absent, except under
CI (CI=true), where a missing service is a failure.
"""

from __future__ import annotations

import gc
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI") == "true"
# What a loaded, shared 2-core CI machine may add to a deadline. Timing bounds are
# the deadline plus this: still far below the hangs (seconds to forever) they guard
# against, and no longer a coin toss under load.
LATE = 1.5
# Diagnosis: collect garbage after every test, so that whatever a test left unclosed
# (a socket, a transport, a database connection) fails that test, not a later one.
GC_EACH_TEST = os.environ.get("MONITORD_TEST_GC") == "1"
REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "MONITORD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    if GC_EACH_TEST:
        gc.collect()


def need(condition: bool, reason: str) -> None:
    """Skip when `condition` is false, but fail under CI: CI must run everything."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def shared_dir() -> Path:
    """The read-only shared/ of docs, fixtures and service scripts: $MONITORD_SHARED,
    else beside the checkout, else this workplace's /work/shared (a CI clone may sit
    elsewhere)."""
    if os.environ.get("MONITORD_SHARED"):
        return Path(os.environ["MONITORD_SHARED"])
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def fast_timing(tmp_path: object, db_url: str | None = None, **daemon: object) -> dict[str, object]:
    """Config sections that make a test daemon check, confirm and notify within
    about a second: sub-second intervals, retries, writes and grouping."""
    return {
        "daemon": {
            "state_dir": str(tmp_path),
            "initial_spread": "0.1s",
            "write_interval": "0.1s",
            "listen": f"127.0.0.1:{free_port()}",
            **({"database": db_url} if db_url else {}),
            **daemon,
        },
        "defaults": {
            "interval": "0.3s",
            "retry_interval": "0.1s",
            "max_attempts": 2,
            "timeout": "1s",
        },
        "correlation": {"group_wait": "0.2s", "group_interval": "0.2s"},
    }


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"monitord_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        need(False, f"PostgreSQL not reachable at 127.0.0.1:5432: {exc.orig}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            left = _connections_left(conn, name)
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if left:
        # Caught here, not when the garbage collector finds the engine later and
        # psycopg's ResourceWarning fails whichever test happens to be running then.
        pytest.fail(f"the test left {left} connection(s) open to its database: dispose its engine")


def _connections_left(conn: Any, name: str, wait: float = 2.0) -> int:
    """Connections other than ours still open to database `name`, after giving closed
    ones `wait` seconds to leave pg_stat_activity (a backend exits asynchronously)."""
    from sqlalchemy import text

    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + wait
    while True:
        left = int(conn.execute(query, {"name": name}).scalar_one())
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Both storage back-ends, for tests that must hold on each."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/monitord.db"
    return str(request.getfixturevalue("pg_url"))
