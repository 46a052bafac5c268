"""The composition root: builds every stage from a config and runs them.

`App` never installs signal handlers (the CLI translates signals into
`reload()`/`stop()`), so tests embed it directly. Stores outlive reloads:
a reload is build-then-swap of the inventory, the schedule, the ticket systems
and the paging channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine, func, select

from alerts.channels.console import ConsoleChannel
from alerts.notify import Notifier
from alerts.outbox import Deliverer, Dispatcher
from alerts.paging.delivery import PageDeliverers
from alerts.paging.service import BuiltChannels, Paging
from alerts.tickets.base import TicketDeliverer, TicketSystem
from alerts.tickets.builtin import BuiltinTickets
from alerts.tickets.health import TicketHealth, TicketMetrics, unreachable_key
from alerts.tickets.plan import TicketPlanner
from alerts.tickets.refs import DbTicketMap
from checks.base import CheckContext
from correlator import store as incident_store
from correlator.engine import Correlator, Rules
from correlator.events import Event, internal_event
from correlator.model import Changes
from correlator.rules import build_mute, build_prioritize
from correlator.topology import Topology
from monitord.clock import Clock, SystemClock
from monitord.config import LoadedConfig, load_config
from monitord.config.model import AlertingConfig, Config, TicketSystemDef
from monitord.config.validate import ticket_system_settings
from monitord.executor import Executor, LocalExecutor
from monitord.heartbeats import HeartbeatBook
from monitord.inventory import Inventory
from monitord.metrics import CheckRow, CheckStateCollector, Metrics
from monitord.pipeline import ResultPipeline
from monitord.rmm.feed import RmmFeed
from monitord.rmm.priority import cap_rmm_noise
from monitord.scheduler import Scheduler, stable_offset
from monitord.sources.traps import TrapReceiver
from monitord.storage.db import default_url, open_database
from monitord.storage.schema import incidents, outbox
from monitord.storage.states import load_states, sync_inventory
from monitord.suppressions import SuppressionBook
from monitord.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketSystems:
    """External ticket systems built from `defs`, over one session (None: no systems)."""

    defs: tuple[TicketSystemDef, ...]
    systems: dict[str, TicketSystem]
    http: aiohttp.ClientSession | None


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        config_path: Path | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.loaded = loaded
        self.config_path = config_path
        self.clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry()
        # Filled by the /hb endpoints, read by heartbeat checks (never the database).
        self.heartbeats = HeartbeatBook(self.clock.time, self.registry)
        # Config silences and windows plus those made through the API (stored).
        self.suppressions = SuppressionBook(loaded.config, self.clock.time)
        self.executor = executor or LocalExecutor(
            CheckContext(now=self.clock.time, services={"heartbeats": self.heartbeats})
        )
        self.inventory: Inventory = loaded.inventory
        self.metrics = Metrics(self.registry, {c.kind for c in self.inventory.checks})
        self.registry.register(CheckStateCollector(self.check_rows))
        self.engine: Engine | None = None
        self.writer: Writer | None = None
        self.pipeline: ResultPipeline | None = None
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None
        # External ticket systems (alerting.ticket_systems) by name, built at start
        # over one shared HTTP session; rebuilt by a reload that changes them; closed
        # at stop. An outbox round holds `_outbox_lock`, so none runs mid-swap.
        self.ticket_systems: dict[str, TicketSystem] = {}
        self._outbox_lock = asyncio.Lock()
        self.ticket_health: TicketHealth | None = None  # outages, parked operations
        self.ticket_metrics = TicketMetrics(self.registry)
        self._ticket_defs: tuple[TicketSystemDef, ...] = ()  # those running
        self.http: aiohttp.ClientSession | None = None
        self.correlator: Correlator | None = None
        self._pending_events: list[Event] = []
        # Paging: routing, escalations, acks and page delivery (alerts.paging).
        self.paging = Paging(self)
        # The notify stage: what each committed notification calls for (tickets, pages).
        self.notifier = Notifier(
            (
                TicketPlanner(self._alerting, lambda: self.loaded.config.daemon.public_url),
                self.paging.planner,
            ),
            failed=lambda planner, exc: self.internal(
                f"notify:{planner}", f"{planner} failed: {exc}"[:300], ok=False
            ),
        )
        self.jobs: AsyncIOScheduler | None = None
        self.traps: TrapReceiver | None = None
        self.rmm = RmmFeed(self)  # RMM sources: synced devices, verdicts on failures
        self._tasks: list[asyncio.Task[Any]] = []
        self._job_tasks: set[asyncio.Future[Any]] = set()
        self.started = False

    # lifecycle -------------------------------------------------------------
    @property
    def database_url(self) -> str:
        d = self.loaded.config.daemon
        return d.database.get_secret_value() if d.database else default_url(d.state_dir)

    async def start(self) -> None:
        """Open storage, restore state, start checking. Raises StorageError (or the
        error of whatever else could not start) after closing what had started."""
        try:
            await self._start()
        except BaseException:
            await self._abandon_start()
            raise

    async def _abandon_start(self) -> None:
        """Close what a failed start opened. Nothing was checked yet, so nothing is
        drained or flushed; each step is tried even if an earlier one fails."""
        steps: list[Callable[[], Awaitable[Any]]] = []
        if self.traps is not None:
            steps.append(self.traps.stop)
        if self.jobs is not None and self.jobs.running:
            jobs = self.jobs

            async def shutdown() -> None:
                jobs.shutdown(wait=False)

            steps.append(shutdown)
        steps += [self.rmm.stop, self.paging.stop, self._cancel_tasks, self._close_ticket_systems]
        if isinstance(self.executor, LocalExecutor):
            steps.append(self.executor.close)
        for step in steps:
            try:
                await step()
            except Exception as exc:  # the start's own error is the one to report
                log.warning("cleaning up a failed start: %s failed: %s", step.__name__, exc)
        await self._close_engine()

    async def _close_engine(self, wait: float = 5.0) -> None:
        """Dispose of the engine once the database work still running in threads
        (a cancelled task's to_thread call runs on) has given its connections back:
        dispose() closes only the pooled ones, and one checked in later stays open
        until the garbage collector finds it."""
        engine = self.engine
        if engine is None:
            return
        checked_out = getattr(engine.pool, "checkedout", lambda: 0)
        deadline = time.monotonic() + wait
        # Polled: the connections come back in worker threads, not on this loop.
        while checked_out() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        engine.dispose()

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _start(self) -> None:
        cfg = self.loaded.config
        self.engine = await asyncio.to_thread(open_database, self.database_url)
        self.loaded = await self.rmm.merged(self.loaded)  # devices synced from an RMM
        self.inventory = self.loaded.inventory
        self.writer = Writer(self.engine, self._sink)
        self.pipeline = ResultPipeline(
            self.submit,
            self.writer,
            self.metrics,
            self.clock.time,
            cfg.flapping.low,
            cfg.flapping.high,
        )
        restored = await asyncio.to_thread(self._restore)
        await self.suppressions.load(self.engine)
        incidents_loaded, next_id = await asyncio.to_thread(self._load_incidents)
        self.correlator = Correlator(self._rules(), self._topology(self.inventory), next_id)
        self.correlator.restore(incidents_loaded)
        self.scheduler = Scheduler(
            self.executor,
            self.pipeline.handle,
            cfg.daemon.max_concurrent_checks,
            self.clock.monotonic,
            cfg.daemon.initial_spread,
        )
        await self.heartbeats.sync(self.engine, self.inventory)
        await self._apply_inventory(self.loaded, restored)
        if cfg.traps.enabled:
            # After storage (the sink needs it), before the loops: a trap port
            # in use fails the start before anything runs. Raises SourceError.
            self.traps = TrapReceiver(
                cfg.traps, lambda: self.inventory, self.submit, self.registry, self.clock
            )
            await self.traps.start()
        self._install_ticket_systems(self._build_ticket_systems(cfg.alerting.ticket_systems))
        self.ticket_health = TicketHealth(
            self.engine,
            self.ticket_systems,
            lambda: self.loaded.config.alerting.ticket_policy,
            lambda key, message, ok: self.internal(key, message, ok=ok),
            self.clock,
            self.ticket_metrics,
        )
        self.dispatcher = Dispatcher(self.engine, self.paging.deliverers(self._deliverers()))
        await self.paging.start()
        self.ticket_health.wake = self.dispatcher.wake.set
        self._tasks = [
            asyncio.create_task(self.ticket_health.run(), name="tickets"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._outbox_loop(), name="outbox"),
        ]
        self.jobs = AsyncIOScheduler(timezone="UTC")
        jobs: tuple[tuple[Callable[[], Awaitable[Any]], float], ...] = (
            (self.flush, cfg.daemon.write_interval),
            (self.housekeeping, cfg.daemon.housekeeping_interval),
            (self.refresh_gauges, 10.0),
        )
        for job, seconds in jobs:
            self.jobs.add_job(
                self._shielded(job),
                "interval",
                seconds=seconds,
                id=job.__name__,
                max_instances=1,
                coalesce=True,
            )
        self.jobs.start()
        await self.rmm.start()
        self.metrics.reload_ok.set(1)
        self.metrics.config_hash.labels(self.loaded.digest).set(1)
        self.started = True
        log.info(
            "monitord started",
            extra={"checks": len(self.inventory.checks), "devices": len(self.inventory.devices)},
        )

    def _shielded(self, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """Wrap a periodic job so that stopping the job scheduler (which cancels
        running jobs) never interrupts a write half-way; `stop()` awaits them."""

        async def run() -> None:
            task = asyncio.ensure_future(job())
            self._job_tasks.add(task)
            task.add_done_callback(self._job_tasks.discard)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

        run.__name__ = job.__name__
        return run

    def _restore(self) -> dict[str, float]:
        """Load stored states; returns each check's next due time (monotonic)."""
        assert self.engine is not None and self.pipeline is not None
        with self.engine.begin() as conn:
            sync_inventory(conn, self.inventory, self.clock.time())
            stored = load_states(conn)
        now_wall, now_mono = self.clock.time(), self.clock.monotonic()
        spread = self.loaded.config.daemon.initial_spread
        due: dict[str, float] = {}
        specs = {c.id: c for c in self.inventory.checks}
        for check_id, (state, output, last) in stored.items():
            self.pipeline.states[check_id] = state
            self.pipeline.outputs[check_id] = output
            self.pipeline.last_check[check_id] = last
            spec = specs.get(check_id)
            if spec is not None:
                # Resume the cadence instead of re-checking everything at once.
                age = max(0.0, now_wall - last)
                due[check_id] = (
                    now_mono + spec.interval - age
                    if age < spec.interval
                    else now_mono + stable_offset(check_id, min(spec.interval, spread))
                )
        return due

    def _load_incidents(self) -> tuple[list[Any], int]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return incident_store.load(
                conn, self.clock.time(), self.loaded.config.correlation.reopen_window
            )

    def _topology(self, inventory: Inventory) -> Topology:
        assert self.pipeline is not None
        return Topology(inventory, self.pipeline.states.get)

    def _rules(self, config: Config | None = None) -> Rules:
        config = config or self.loaded.config
        return Rules(
            config.correlation,
            cap_rmm_noise(config, build_prioritize(config, self._current_topology)),
            build_mute(
                config,
                self._current_topology,
                windows=self.suppressions.windows,
                silences=self.suppressions.silences,
            ),
        )

    def _current_topology(self) -> Topology:
        assert self.correlator is not None
        return self.correlator.topology

    async def _apply_inventory(self, loaded: LoadedConfig, due: dict[str, float] | None) -> None:
        assert self.scheduler is not None and self.pipeline is not None
        kinds = {c.kind for c in loaded.inventory.checks}
        if isinstance(self.executor, LocalExecutor):
            await self.executor.ensure(kinds)
        for kind in kinds:
            self.metrics.ensure_kind(kind)
        self.inventory = loaded.inventory
        self.pipeline.devices = loaded.inventory.devices
        self.scheduler.load(loaded.inventory, due)
        if self.correlator is not None:
            self.correlator.topology = self._topology(loaded.inventory)
            self.suppressions.use_config(loaded.config)
            self.correlator.rules = self._rules(loaded.config)

    def _build_ticket_systems(self, defs: tuple[TicketSystemDef, ...]) -> TicketSystems:
        """The external ticket systems of `defs` over one shared HTTP session (raises,
        building nothing, if a definition cannot be built, e.g. a secret file is gone).

        The session's total timeout is the longest configured one (an adapter applies
        its own `timeout` only to a session it opens itself).
        """
        configured = [(system.name, *ticket_system_settings(system)) for system in defs]
        if not configured:
            return TicketSystems(defs, {}, None)
        longest = max(float(getattr(settings, "timeout", 10.0)) for _, _, settings in configured)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=longest))
        systems = {name: cls(s, session=http, clock=self.clock) for name, cls, s in configured}
        return TicketSystems(defs, systems, http)

    def _install_ticket_systems(self, built: TicketSystems) -> None:
        self._ticket_defs = built.defs
        self.ticket_systems.update(built.systems)  # the same dict TicketHealth reads
        self.http = built.http

    async def _close_ticket_systems(self) -> None:
        systems, http = dict(self.ticket_systems), self.http
        self.ticket_systems.clear()
        self.http = None
        for name, system in systems.items():
            try:
                await system.aclose()
            except Exception as exc:  # closing one must not keep the others open
                log.warning(
                    "closing ticket system failed", extra={"system": name, "error": str(exc)}
                )
        if http is not None:
            await http.close()

    async def _swap_ticket_systems(self, built: TicketSystems) -> None:
        """Changed `alerting.ticket_systems` take effect between two outbox rounds: the
        old systems are closed, the new ones handed to the dispatcher. The queue is in
        the database, so nothing is lost; operations queued for a system the new config
        no longer has are parked ("no deliverer") for `monitord tickets retry`."""
        assert self.dispatcher is not None
        gone = {s.name for s in self._ticket_defs} - set(built.systems)
        async with self._outbox_lock:
            await self._close_ticket_systems()
            self._install_ticket_systems(built)
            deliverers = self.dispatcher.deliverers
            assert isinstance(deliverers, PageDeliverers)  # what `start` handed it
            deliverers.base = dict(self._deliverers())
        for name in sorted(gone):
            log.warning("ticket system %s removed from the config", name)
            self.internal(unreachable_key(name), f"ticket system {name} removed", ok=True)
        log.info("ticket systems reloaded", extra={"systems": sorted(self.ticket_systems)})

    def _deliverers(self) -> dict[tuple[str, str], Deliverer]:
        assert self.engine is not None
        out: dict[tuple[str, str], Deliverer] = {
            ("ticket", "builtin"): BuiltinTickets(self.engine, self.clock.time)
        }
        refs = DbTicketMap(self.engine, self.clock.time)
        assert self.ticket_health is not None
        for name, system in self.ticket_systems.items():
            deliverer = TicketDeliverer(name, system, refs)
            out[("ticket", name)] = self.ticket_health.guard(name, deliverer)
        for ch in self.loaded.config.alerting.channels:
            out[("page", ch.name)] = ConsoleChannel(self.engine, ch.name)
        return out

    async def stop(self) -> None:
        """Stop checking, finish what is in flight, write everything, close."""
        if not self.started:
            return
        self.started = False
        if self.traps is not None:
            await self.traps.stop()  # first: no new events while the rest drains
        if self.jobs is not None:
            # Pause, let jobs already handed to the executor finish, then shut down:
            # shutting down cancels (and logs) whatever job is still pending.
            self.jobs.pause()
            for _ in range(3):
                await asyncio.sleep(0)
                await asyncio.gather(*self._job_tasks, return_exceptions=True)
            self.jobs.shutdown(wait=False)
        await self.rmm.stop()
        await self.paging.stop()
        await self._cancel_tasks()
        if self.scheduler is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.scheduler.drain()
        await self.flush()
        await self.deliver_outbox()
        await self._close_ticket_systems()
        if isinstance(self.executor, LocalExecutor):
            await self.executor.close()
        await self._close_engine()
        log.info("monitord stopped")

    async def reload(self, path: Path | None = None) -> None:
        """Build-then-swap: parse and validate the config, then swap inventory and
        schedule. Raises ConfigErrors and keeps the running config on any error."""
        path = path or self.config_path
        if path is None:
            raise ValueError("no config path to reload from")
        try:
            loaded = await asyncio.to_thread(load_config, path)
        except Exception:
            self.metrics.reload_ok.set(0)
            raise
        loaded = await self.rmm.merged(loaded)
        # Build what changed before anything is swapped: a failure keeps all running.
        tickets = loaded.config.alerting.ticket_systems
        channels = loaded.config.paging.channels
        built: TicketSystems | None = None
        built_channels: BuiltChannels | None = None
        try:
            if tickets != self._ticket_defs:
                built = self._build_ticket_systems(tickets)
            if channels != self.paging.defs:
                built_channels = await self.paging.build(channels)
            built_rmm = self.rmm.build(loaded.config.rmm)
        except Exception:
            self.metrics.reload_ok.set(0)
            if built is not None and built.http is not None:
                await built.http.close()
            raise
        await self.swap_inventory(loaded)
        await self.rmm.swap(loaded, built_rmm)
        if built is not None:
            await self._swap_ticket_systems(built)
        if built_channels is not None:
            await self.paging.swap(built_channels, self._outbox_lock)
        self.paging.reloaded()
        self.metrics.config_hash.clear()
        self.metrics.config_hash.labels(loaded.digest).set(1)
        self.loaded = loaded
        self.metrics.reload_ok.set(1)
        log.info("config reloaded", extra={"checks": len(loaded.inventory.checks)})

    async def swap_inventory(self, loaded: LoadedConfig) -> None:
        """Make `loaded`'s inventory the running one: stored, heartbeats synced,
        checks scheduled (a reload, or devices an RMM sync added or retired)."""
        assert self.engine is not None
        await asyncio.to_thread(self._sync, loaded.inventory)
        await self.heartbeats.sync(self.engine, loaded.inventory)
        await self._apply_inventory(loaded, None)
        self.loaded = loaded

    def _sync(self, inventory: Inventory) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            sync_inventory(conn, inventory, self.clock.time())

    def submit(self, event: Event) -> None:
        """Feed an event from a non-check source (traps, heartbeats, ingest) into
        the pipeline; it is written, correlated and notified with the next batch."""
        if self.correlator is None:
            raise RuntimeError("the daemon is not started")
        self._pending_events.append(event)

    def internal(self, key: str, message: str, *, ok: bool) -> None:
        """Raise (or clear, `ok=True`) monitord's own problem `key`, such as
        "ticket-system:zammad" or "rmm-feed:nsight": one incident while it lasts."""
        self.submit(internal_event(key, message, ok=ok, ts=self.clock.time()))

    async def suppressions_changed(self) -> None:
        """A silence or window ended early: look at what the mutes hold now, not
        at their next periodic re-check, and write what that decided."""
        if self.correlator is None:
            return
        self.correlator.recheck_muted(self.clock.time())
        await self.flush()

    # periodic jobs ---------------------------------------------------------
    def _alerting(self) -> AlertingConfig:
        """The alerting config, its ticket systems those running (mid-reload, a new
        system must not get rows queued before its deliverer exists)."""
        alerting = self.loaded.config.alerting
        if alerting.ticket_systems == self._ticket_defs:
            return alerting
        return alerting.model_copy(update={"ticket_systems": self._ticket_defs})

    def _sink(self, conn: Connection, changes: Changes) -> None:
        now = self.clock.time()
        incident_store.persist(conn, changes, lambda c, note: self.notifier(c, note, now))

    def correlate(self) -> Changes:
        """Run pending events and the notification tick through the correlator
        (on the event loop: it is in-memory and takes microseconds an event)."""
        assert self.correlator is not None
        events, self._pending_events = self._pending_events, []
        now = self.clock.time()
        for event in events:
            self.correlator.handle(event, now)
        self.correlator.tick(now)
        return self.correlator.take_changes()

    async def flush(self) -> None:
        """Write buffered results; on a database error keep them and retry later."""
        if self.writer is None or self.correlator is None:
            return
        changes = self.correlate()
        if changes:
            self.writer.add_changes(changes)
        with self.metrics.flush_seconds.time():
            try:
                await self.writer.flush()
            except Exception as exc:  # the database may be away; the batch is kept
                self.metrics.flush_errors.inc()
                log.error("storage write failed, will retry: %s", str(exc).splitlines()[0])
                return
        self.metrics.pending_rows.set(self.writer.pending)
        if changes.notifications and self.dispatcher is not None:
            self.dispatcher.wake.set()
        self._recheck(changes.rechecks)

    def _recheck(self, devices: set[str]) -> None:
        """Run the reachability checks of `devices` now (the dependency race guard)."""
        if not devices or self.scheduler is None or self.correlator is None:
            return
        reach = self.correlator.topology.reachability
        for device in devices:
            for check_id in reach.get(device, ()):
                self.scheduler.run_soon(check_id)

    async def deliver_outbox(self) -> int:
        if self.dispatcher is None:
            return 0
        try:
            async with self._outbox_lock:
                return await self.dispatcher.run_once(self.clock.time())
        except Exception as exc:  # keep the loop alive through a database outage
            log.error("outbox delivery failed: %s", str(exc).splitlines()[0])
            return 0

    async def _outbox_loop(self) -> None:
        assert self.dispatcher is not None
        while True:
            # New work wakes the loop at once; the timeout only picks up retries
            # (soon while something is failing, otherwise as a slow safety net).
            idle = 2.0 if self.dispatcher.retrying else 30.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self.dispatcher.wake.wait()
            self.dispatcher.wake.clear()
            await self.deliver_outbox()

    async def housekeeping(self) -> None:
        if self.writer is None:
            return
        cutoff = self.clock.time() - self.loaded.config.daemon.result_retention
        try:
            removed = await asyncio.to_thread(self.writer.prune, cutoff)
        except Exception as exc:
            log.error("housekeeping failed: %s", str(exc).splitlines()[0])
            return
        if removed:
            log.info("pruned old results", extra={"rows": removed})

    async def refresh_gauges(self) -> None:
        if self.engine is None:
            return
        try:
            counts = await asyncio.to_thread(self._counts)
        except Exception as exc:
            log.error("metrics refresh failed: %s", str(exc).splitlines()[0])
            return
        self.metrics.incidents_open.clear()
        for priority in ("P1", "P2", "P3", "P4"):
            self.metrics.incidents_open.labels(priority).set(counts["incidents"].get(priority, 0))
        self.metrics.outbox_pending.set(counts["outbox"])
        if self.scheduler is not None:
            self.metrics.in_flight.set(self.scheduler.in_flight)
            self.metrics.scheduler_up.set(self.clock.monotonic() - self.scheduler.last_tick)

    def _counts(self) -> dict[str, Any]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(incidents.c.priority, func.count())
                .where(incidents.c.state != "resolved")
                .group_by(incidents.c.priority)
            ).all()
            pending = conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.delivered_at.is_(None), outbox.c.parked.is_(False))
            ).scalar_one()
        return {"incidents": {r[0]: r[1] for r in rows}, "outbox": pending}

    # views -----------------------------------------------------------------
    def healthy(self) -> bool:
        """The scheduler loop ran recently (or has nothing to do)."""
        if self.scheduler is None or not self.started:
            return False
        idle = self.scheduler.in_flight == 0 and not self.scheduler.heap
        age = self.clock.monotonic() - self.scheduler.last_tick
        next_due = self.scheduler.heap[0][0] - self.clock.monotonic() if self.scheduler.heap else 0
        return idle or age < 30 or next_due > 0

    def check_rows(self) -> list[CheckRow]:
        if self.pipeline is None:
            return []
        states = self.pipeline.states
        out = []
        for spec in self.inventory.checks:
            device = self.inventory.devices[spec.device_id]
            st = states.get(spec.id)
            out.append(
                CheckRow(
                    device.customer,
                    device.site or "",
                    device.name,
                    spec.name,
                    spec.kind,
                    int(st.status) if st else -1,
                    int(st.hard_status) if st else 0,
                    bool(st and st.flapping),
                )
            )
        return out
