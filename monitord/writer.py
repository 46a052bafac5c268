"""Batched writes: results, states, transitions and events, one transaction a batch.

The check path only appends to in-memory buffers; `flush()` swaps them and
writes in a worker thread (the database drivers are blocking), so SQLite's
per-transaction cost is paid once per batch rather than once per check. The
event sink (correlator + outbox) runs inside the same transaction: a crash
loses either the whole batch or nothing, never an event without its incident.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert

from correlator.model import Changes
from monitord.model import CheckResult
from monitord.state import CheckState, Transition
from monitord.storage.schema import check_state as check_state_t
from monitord.storage.schema import results, state_transitions
from monitord.storage.states import state_row
from monitord.storage.upsert import upsert

log = logging.getLogger(__name__)

ChangeSink = Callable[[Connection, Changes], None]


@dataclass
class Batch:
    results: list[tuple[str, float, int, float, str, str]] = field(default_factory=list)
    states: dict[str, tuple[CheckState, str, float, float]] = field(default_factory=dict)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Changes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results) + len(self.transitions) + len(self.changes)


def perf_text(result: CheckResult) -> str:
    if not result.perfdata:
        return ""
    return json.dumps([[p.label, p.value, p.uom] for p in result.perfdata])


class Writer:
    def __init__(self, engine: Engine, sink: ChangeSink, store_results: bool = True) -> None:
        self.engine = engine
        self.sink = sink
        self.store_results = store_results
        self.batch = Batch()
        self._lock = asyncio.Lock()
        self.rows_written = 0
        self.flushes = 0
        self.last_flush_seconds = 0.0

    def add_result(
        self, check_id: str, ts: float, result: CheckResult, duration: float, state: CheckState
    ) -> None:
        b = self.batch
        if self.store_results:
            b.results.append(
                (check_id, ts, int(result.status), duration, result.message, perf_text(result))
            )
        b.states[check_id] = (state, result.message, duration, ts)

    def add_transition(self, check_id: str, ts: float, t: Transition, output: str) -> None:
        self.batch.transitions.append(
            {
                "check_id": check_id,
                "ts": ts,
                "change": t.change.name.lower(),
                "state_type": int(t.state_type),
                "from_status": int(t.previous),
                "to_status": int(t.current),
                "attempt": t.attempt,
                "output": output,
            }
        )

    def add_changes(self, changes: Changes) -> None:
        """Correlator decisions to write in the same transaction as the results."""
        self.batch.changes.append(changes)

    @property
    def pending(self) -> int:
        return len(self.batch) + len(self.batch.states)

    async def flush(self) -> int:
        """Write everything buffered so far; returns the number of rows written.

        Raises the database error after putting the batch back, so nothing is
        lost while the database is away.
        """
        async with self._lock:
            batch, self.batch = self.batch, Batch()
            if not batch.results and not batch.states and not batch.changes:
                return 0
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                self._requeue(batch)
                raise
            self.flushes += 1
            return len(batch) + len(batch.states)

    def _requeue(self, batch: Batch) -> None:
        newer = self.batch
        batch.results.extend(newer.results)
        batch.states.update(newer.states)
        batch.transitions.extend(newer.transitions)
        batch.changes.extend(newer.changes)
        self.batch = batch

    def _write(self, batch: Batch) -> None:
        with self.engine.begin() as conn:
            if batch.results:
                conn.execute(
                    insert(results),
                    [
                        {
                            "check_id": r[0],
                            "ts": r[1],
                            "status": r[2],
                            "duration": r[3],
                            "output": r[4],
                            "perfdata": r[5],
                        }
                        for r in batch.results
                    ],
                )
            upsert(
                conn,
                check_state_t,
                [
                    state_row(cid, s, out, dur, ts)
                    for cid, (s, out, dur, ts) in batch.states.items()
                ],
                "check_id",
            )
            if batch.transitions:
                conn.execute(insert(state_transitions), batch.transitions)
            for changes in batch.changes:
                self.sink(conn, changes)

    def prune(self, before: float) -> int:
        """Delete raw results older than `before` (housekeeping; blocking)."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(results).where(results.c.ts < before)).rowcount or 0)
