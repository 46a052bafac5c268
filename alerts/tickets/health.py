"""The health of each external ticket system, and what follows from it.

`TicketHealth.guard(name, deliverer)` wraps a system's outbox deliverer:

- **outage** (network, timeout, 5xx): the operation stays queued (the Dispatcher
  retries with backoff and keeps the system's order); the system is "failing since"
  the first failure. Once it has failed for `ticket_policy.unreachable_after`, the
  internal incident `ticket-system:<name>` ("ticket system <name> unreachable") is
  raised; the next delivery that goes through clears it. While failing, `run()`
  probes the system every `probe_interval` and, when it answers, makes its queue
  due at once, so recovery does not wait for the longest backoff.
- **refusal** (4xx: bad credentials, unknown queue, a validation error): no retry
  storm. The operation is parked with the system's own error text, which also goes
  on the incident's timeline, and the internal incident `ticket-parked:<name>` is
  raised. Later operations of the same incident wait parked behind it (their order
  is kept), and after an auth refusal (401/403) every later operation of the system
  does, without a request, until an operator retries (`monitord tickets retry`).
  The internal incident clears when nothing of the system is parked any more.

Every decision is in the database (`ticket_systems`, outbox rows), so a restart
carries on; the internal incidents are incidents like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from alerts.outbox import Deliverer, OutboxItem
from alerts.tickets.base import TicketSystem
from correlator.events import INTERNAL, fingerprint
from monitord.clock import Clock
from monitord.config.tickets import TicketPolicy
from monitord.errors import DeliveryError, Reason
from monitord.storage.schema import incident_log, outbox, ticket_attempts, ticket_systems

log = logging.getLogger(__name__)

ATTEMPTS_KEPT = 30 * 86400.0  # intent-log rows of delivered operations are pruned after this


def unreachable_key(name: str) -> str:
    return f"ticket-system:{name}"


def parked_key(name: str) -> str:
    return f"ticket-parked:{name}"


def own_incident_fingerprints(name: str) -> set[str]:
    """Fingerprints of the internal incidents about system `name` (not ticketed there)."""
    return {
        fingerprint(None, None, f"{INTERNAL}:{key}")
        for key in (unreachable_key(name), parked_key(name))
    }


class TicketMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.operations = Counter(
            "monitord_ticket_operations",
            "Ticket operations per external system and outcome "
            "(delivered, retry, parked, held: parked behind an earlier one without a request)",
            ["system", "result"],
            registry=registry,
        )
        self.up = Gauge(
            "monitord_ticket_system_up",
            "1 while the ticket system takes operations, 0 while failing or blocked",
            ["system"],
            registry=registry,
        )


class TicketHealth:
    def __init__(
        self,
        engine: Engine,
        systems: Mapping[str, TicketSystem],
        policy: Callable[[], TicketPolicy],
        internal: Callable[[str, str, bool], None],
        clock: Clock,
        metrics: TicketMetrics,
    ) -> None:
        self.engine = engine
        self.systems = systems
        self.policy = policy
        self.internal = internal  # App.internal(key, message, ok=)
        self.clock = clock
        self.metrics = metrics
        self.wake: Callable[[], None] = lambda: None  # the Dispatcher's, set by the App
        self._next_probe: dict[str, float] = {}
        self._pruned_at = 0.0

    # -- the deliverer wrapper -----------------------------------------------------------

    def guard(self, name: str, inner: Deliverer) -> Deliverer:
        return _Guarded(self, name, inner)

    async def before(self, name: str, item: OutboxItem) -> None:
        """Raise a permanent DeliveryError (no request) if `item` must wait parked."""
        held = await asyncio.to_thread(self._held, name, item)
        if held:
            self.metrics.operations.labels(name, "held").inc()
            raise DeliveryError(held, permanent=True, reason=Reason.CLIENT_ERROR)

    def _held(self, name: str, item: OutboxItem) -> str:
        with self.engine.connect() as conn:
            blocked = conn.execute(
                select(ticket_systems.c.blocked).where(ticket_systems.c.name == name)
            ).scalar_one_or_none()
            if blocked:
                return f"held: {name} refused an earlier operation ({blocked[:300]})"
            if item.incident_id is None:
                return ""
            earlier = conn.execute(
                select(outbox.c.id)
                .where(
                    outbox.c.kind == "ticket",
                    outbox.c.target == name,
                    outbox.c.incident_id == item.incident_id,
                    outbox.c.parked.is_(True),
                    outbox.c.delivered_at.is_(None),
                    outbox.c.id < item.id,
                )
                .order_by(outbox.c.id)
                .limit(1)
            ).scalar_one_or_none()
        return f"held behind parked operation #{earlier}" if earlier is not None else ""

    async def delivered(self, name: str) -> None:
        self.metrics.operations.labels(name, "delivered").inc()
        self.metrics.up.labels(name).set(1)
        raised, clear_parked = await asyncio.to_thread(self._ok, name)
        if raised:
            self.internal(unreachable_key(name), f"ticket system {name} answers again", True)
        if clear_parked:
            self.internal(parked_key(name), f"nothing of ticket system {name} is parked", True)

    def _ok(self, name: str) -> tuple[bool, bool]:
        now = self.clock.time()
        with self.engine.begin() as conn:
            row = _row(conn, name, now)
            if not (row["failing_since"] or row["unreachable_raised"] or row["parked_raised"]):
                return False, False  # healthy already: nothing to write
            parked_cleared = bool(row["parked_raised"]) and _parked_count(conn, name) == 0
            conn.execute(
                update(ticket_systems)
                .where(ticket_systems.c.name == name)
                .values(
                    failing_since=None,
                    last_ok_at=now,
                    unreachable_raised=False,
                    parked_raised=bool(row["parked_raised"]) and not parked_cleared,
                    updated_at=now,
                )
            )
        self._next_probe.pop(name, None)
        return bool(row["unreachable_raised"]), parked_cleared

    async def failed(self, name: str, item: OutboxItem, error: DeliveryError) -> None:
        self.metrics.up.labels(name).set(0)
        if error.permanent:
            self.metrics.operations.labels(name, "parked").inc()
            await asyncio.to_thread(self._park, name, item, error)
            self.internal(
                parked_key(name),
                f"ticket system {name} refused an operation, parked: {error}"[:900],
                False,
            )
        else:
            self.metrics.operations.labels(name, "retry").inc()
            await asyncio.to_thread(self._failing, name, str(error))
            await self.check(name)

    def _park(self, name: str, item: OutboxItem, error: DeliveryError) -> None:
        now = self.clock.time()
        text = str(error)[:1500]
        with self.engine.begin() as conn:
            _row(conn, name, now)
            values: dict[str, Any] = {"parked_raised": True, "last_error": text, "updated_at": now}
            if error.reason == Reason.AUTH:
                values["blocked"] = text  # the same credentials refuse everything after it
            conn.execute(
                update(ticket_systems).where(ticket_systems.c.name == name).values(**values)
            )
            if item.incident_id is not None:
                conn.execute(
                    insert(incident_log).values(
                        incident_id=item.incident_id,
                        ts=now,
                        actor=f"tickets:{name}"[:100],
                        action="ticket-parked",
                        detail=(
                            f"{item.op} parked (outbox #{item.id}): {text}; "
                            "retry with `monitord tickets retry` once fixed"
                        )[:2000],
                    )
                )
        log.warning("ticket operation parked", extra={"system": name, "item": item.id})

    def _failing(self, name: str, text: str) -> None:
        now = self.clock.time()
        with self.engine.begin() as conn:
            row = _row(conn, name, now)
            conn.execute(
                update(ticket_systems)
                .where(ticket_systems.c.name == name)
                .values(
                    failing_since=row["failing_since"] or now,
                    last_error=text[:1500],
                    updated_at=now,
                )
            )
        self._next_probe.setdefault(name, now + self.policy().probe_interval)

    async def check(self, name: str) -> None:
        """Raise the unreachable incident once `name` has failed for the threshold."""
        message = await asyncio.to_thread(self._overdue, name)
        if message:
            self.internal(unreachable_key(name), message, False)

    def _overdue(self, name: str) -> str:
        now = self.clock.time()
        threshold = self.policy().unreachable_after
        with self.engine.begin() as conn:
            row = _row(conn, name, now)
            since = row["failing_since"]
            if since is None or row["unreachable_raised"] or now - since < threshold:
                return ""
            conn.execute(
                update(ticket_systems)
                .where(ticket_systems.c.name == name)
                .values(unreachable_raised=True, updated_at=now)
            )
        return (f"ticket system {name} unreachable for {now - since:.0f}s: {row['last_error']}")[
            :900
        ]

    # -- the watch loop ------------------------------------------------------------------

    async def run(self, every: float = 1.0) -> None:
        """Until cancelled: raise overdue incidents, probe failing systems."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a database hiccup must not end the watch
                log.warning("ticket health check failed: %s", str(exc).splitlines()[0])
            await asyncio.sleep(every)

    async def tick(self) -> None:
        now = self.clock.time()
        states = await asyncio.to_thread(self._states)
        for name, (failing, blocked) in states.items():
            if name not in self.systems:
                continue
            self.metrics.up.labels(name).set(0 if failing or blocked else 1)
            if not failing or blocked:
                continue
            await self.check(name)
            due = self._next_probe.setdefault(name, now + self.policy().probe_interval)
            if now >= due:
                self._next_probe[name] = now + self.policy().probe_interval
                await self._probe(name)
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            await asyncio.to_thread(self._prune, now)

    async def _probe(self, name: str) -> None:
        try:
            await self.systems[name].probe()
        except DeliveryError:
            return
        moved = await asyncio.to_thread(self._due_now, name)
        log.info("ticket system answers again", extra={"system": name, "queued": moved})
        if moved:
            self.wake()

    def _due_now(self, name: str) -> int:
        now = self.clock.time()
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.kind == "ticket",
                        outbox.c.target == name,
                        outbox.c.delivered_at.is_(None),
                        outbox.c.parked.is_(False),
                        outbox.c.next_attempt_at > now,
                    )
                    .values(next_attempt_at=now)
                ).rowcount
            )

    def _states(self) -> dict[str, tuple[bool, bool]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ticket_systems)).all()
        return {r.name: (r.failing_since is not None, bool(r.blocked)) for r in rows}

    def _prune(self, now: float) -> None:
        delivered = select(outbox.c.id).where(outbox.c.delivered_at.is_not(None))
        with self.engine.begin() as conn:
            conn.execute(
                delete(ticket_attempts).where(
                    and_(
                        ticket_attempts.c.attempted_at < now - ATTEMPTS_KEPT,
                        ticket_attempts.c.outbox_id.in_(delivered),
                    )
                )
            )


class _Guarded:
    """A system's deliverer behind its health: held, delivered, failed."""

    def __init__(self, health: TicketHealth, name: str, inner: Deliverer) -> None:
        self.health = health
        self.name = name
        self.inner = inner

    async def deliver(self, item: OutboxItem) -> None:
        await self.health.before(self.name, item)
        try:
            await self.inner.deliver(item)
        except DeliveryError as exc:
            await self.health.failed(self.name, item, exc)
            raise
        await self.health.delivered(self.name)


def _row(conn: Connection, name: str, now: float) -> dict[str, Any]:
    """The system's health row, created on first use."""
    row = conn.execute(select(ticket_systems).where(ticket_systems.c.name == name)).first()
    if row is not None:
        return dict(row._mapping)
    values: dict[str, Any] = {
        "name": name,
        "failing_since": None,
        "last_error": "",
        "last_ok_at": None,
        "unreachable_raised": False,
        "blocked": "",
        "parked_raised": False,
        "updated_at": now,
    }
    conn.execute(insert(ticket_systems).values(**values))
    return values


def _parked_count(conn: Connection, name: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.kind == "ticket",
                outbox.c.target == name,
                outbox.c.parked.is_(True),
                outbox.c.delivered_at.is_(None),
            )
        ).scalar_one()
    )
