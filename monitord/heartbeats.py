"""The heartbeat book: what jobs have pinged, shared by the HTTP endpoint and the check.

`App` creates one book and lends it to check types as
`CheckContext.services["heartbeats"]`. The HTTP endpoint calls `ping()`:
the token is looked up by its SHA-256 (a dict lookup, so no comparison
leaks how much of a guess was right), the new record is stored in the
database and only then applied in memory, so what the check judges is what
a restart will load. The check only calls `record()`; it never touches the
database.

The token→check index is rebuilt from the inventory's heartbeat checks at
start and on every reload (`sync`), which also gives each new check its
creation time (its first period plus grace runs from there).

Logs name a token only by the first 8 hex digits of its hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Literal

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from checks.heartbeat import HeartbeatRecord, Ping, PingKind, apply_ping, token_key
from monitord.errors import StorageError
from monitord.inventory import Inventory
from monitord.storage.heartbeats import load_heartbeats, register_heartbeats, save_ping

log = logging.getLogger(__name__)

KIND = "heartbeat"
EXCERPT_BYTES = 10 * 1024  # of a ping's body, kept with the ping
Outcome = Literal["stored", "unknown_token", "too_large", "store_failed"]
OUTCOMES: tuple[Outcome, ...] = ("stored", "unknown_token", "too_large", "store_failed")


def body_excerpt(body: bytes) -> str:
    """The first 10 KiB of a ping body as text (invalid UTF-8 replaced)."""
    return body[:EXCERPT_BYTES].decode("utf-8", "replace")


class HeartbeatBook:
    """Token index and newest signals of every configured heartbeat check."""

    def __init__(self, now: Callable[[], float], registry: CollectorRegistry | None = None) -> None:
        self._now = now
        self.engine: Engine | None = None
        self._by_key: dict[str, str] = {}  # sha256(token) → check id
        self._records: dict[str, HeartbeatRecord] = {}  # check id → record
        # One ping at a time: each write stores the record the previous one left.
        self._lock = asyncio.Lock()
        self.pings = Counter(
            "monitord_heartbeat_pings",
            "Heartbeat signals received, by signal and what became of them.",
            ["signal", "outcome"],
            registry=registry,
        )
        for kind in PingKind:
            for outcome in OUTCOMES:
                self.pings.labels(kind.value, outcome)

    # what the check reads --------------------------------------------------
    def record(self, key: str) -> HeartbeatRecord | None:
        """The record of the check whose token hashes to `key`, if configured."""
        check_id = self._by_key.get(key)
        return None if check_id is None else self._records.get(check_id)

    def check_id(self, token: str) -> str | None:
        """The id of the check `token` belongs to, or None."""
        return self._by_key.get(token_key(token))

    # index -------------------------------------------------------------------
    def index(self, entries: Iterable[tuple[str, str, HeartbeatRecord]]) -> None:
        """Replace the index with (check id, token key, record) entries; in
        memory only (`sync` uses it; tests may too). A token claimed twice
        (config validation rejects that) stays with its first check."""
        by_key: dict[str, str] = {}
        records: dict[str, HeartbeatRecord] = {}
        for check_id, key, record in entries:
            if by_key.setdefault(key, check_id) != check_id:
                log.error(
                    "heartbeat token used twice, ignored for the second check",
                    extra={"check": check_id, "token_hash": key[:8]},
                )
                continue
            records[check_id] = record
        self._by_key, self._records = by_key, records

    def apply(self, check_id: str, ping: Ping) -> HeartbeatRecord:
        """Apply `ping` in memory only; returns the new record. KeyError for an
        unknown check."""
        record = apply_ping(self._records[check_id], ping)
        self._records[check_id] = record
        return record

    # with the database -------------------------------------------------------
    async def sync(self, engine: Engine, inventory: Inventory) -> None:
        """Rebuild the index from `inventory`'s heartbeat checks, registering new
        ones at the current time and loading stored records. Raises StorageError."""
        specs = [c for c in inventory.checks if c.kind == KIND]
        ids = [c.id for c in specs]
        async with self._lock:
            self.engine = engine
            try:
                stored = await asyncio.to_thread(self._load, engine, ids, self._now())
            except SQLAlchemyError as exc:
                raise StorageError(f"cannot load heartbeats: {_first_line(exc)}") from exc
            self.index(
                (c.id, token_key(c.params.token.get_secret_value()), stored[c.id]) for c in specs
            )

    @staticmethod
    def _load(engine: Engine, ids: list[str], now: float) -> dict[str, HeartbeatRecord]:
        with engine.begin() as conn:
            register_heartbeats(conn, ids, now)
            return load_heartbeats(conn, ids)

    async def ping(self, token: str, kind: PingKind, body: bytes = b"") -> str | None:
        """Record a signal for the check owning `token`; returns its id, or None
        for an unknown token. Stores before applying; raises StorageError (and
        applies nothing) when the database refuses."""
        key = token_key(token)
        check_id = self._by_key.get(key)
        if check_id is None or self.engine is None:
            self.pings.labels(kind.value, "unknown_token").inc()
            log.debug("heartbeat for an unknown token", extra={"token_hash": key[:8]})
            return None
        async with self._lock:
            current = self._records.get(check_id)
            if current is None:  # removed by a reload while we waited
                self.pings.labels(kind.value, "unknown_token").inc()
                return None
            ping = Ping(kind, self._now(), body_excerpt(body))
            record = apply_ping(current, ping)
            try:
                await asyncio.to_thread(self._save, self.engine, check_id, record, ping)
            except SQLAlchemyError as exc:
                self.pings.labels(kind.value, "store_failed").inc()
                raise StorageError(f"cannot store heartbeat: {_first_line(exc)}") from exc
            self._records[check_id] = record
        self.pings.labels(kind.value, "stored").inc()
        if kind is not PingKind.SUCCESS:
            log.info("heartbeat %s signal", kind.value, extra={"check": check_id})
        return check_id

    def rejected(self, kind: PingKind, outcome: Outcome) -> None:
        """Count a signal refused before it reached the book (e.g. too large)."""
        self.pings.labels(kind.value, outcome).inc()

    @staticmethod
    def _save(engine: Engine, check_id: str, record: HeartbeatRecord, ping: Ping) -> None:
        with engine.begin() as conn:
            save_ping(conn, check_id, record, ping)


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]
