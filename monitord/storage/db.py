"""Open the database: engine with the right pragmas, reachability check, migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from monitord.errors import StorageError
from monitord.storage.migrate import migrate

log = logging.getLogger(__name__)


def default_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'monitord.db'}"


def redact(url: str) -> str:
    """The URL without its password, for log lines and error messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets WAL, relaxed fsync and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while the writer writes; NORMAL sync is
            # durable across a process crash (only an OS crash loses the last
            # commits), which is what a kill -9 test exercises.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def open_database(url: str, *, run_migrations: bool = True) -> Engine:
    """Connect, verify reachability and migrate. Raises StorageError with a clear reason."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if run_migrations:
            migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", None)
        reason = str(orig) if orig is not None else str(exc)
        raise StorageError(
            f"database {redact(url)!r} unreachable: {reason.strip().splitlines()[0]}"
        ) from exc
    log.info("database ready", extra={"url": redact(url)})
    return engine


def scratch_engine(url: str) -> Engine:
    """An engine without pooling, for short-lived tools (tests, CLI)."""
    return create_engine(url, poolclass=NullPool)
