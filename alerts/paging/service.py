"""Paging in the daemon: the planner, the escalation job, the deliverers, acks.

`Paging(app)` is built by the App. It gives the notify stage its planner, the
outbox its `engineer:<name>` deliverer, and runs one task that advances
escalations (`advance()`: at once when the planner queued something, else every
`paging.tick`) and one getUpdates poller per Telegram channel that asks for it.
Every acknowledgement, whatever its origin, goes through `acknowledge()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import Connection, select

from alerts.channels.base import Channel
from alerts.outbox import Deliverer
from alerts.paging.channels import build_channels
from alerts.paging.delivery import PageDeliverer, PageDeliverers
from alerts.paging.escalation import Escalator, engineers_of
from alerts.paging.metrics import PagingMetrics
from alerts.paging.model import Env, Outcome
from alerts.paging.overrides import effective, stored
from correlator.calendar import Calendars
from correlator.model import Notification
from monitord.config.model import Config
from monitord.config.oncall import Engineer, OncallConfig
from monitord.config.paging import ChannelDef

log = logging.getLogger(__name__)


class PagePlanner:
    """The notify stage's page planner: `Escalator.on_note` in the incident's transaction;
    what it decided beyond the database goes to `sink` (the daemon applies it)."""

    def __init__(
        self,
        escalator: Escalator,
        via: dict[int, str] | None = None,
        sink: Callable[[Outcome], None] = lambda _: None,
    ) -> None:
        self.escalator = escalator
        self.via = via if via is not None else {}
        self.sink = sink

    def plan(self, conn: Connection, note: Notification, now: float) -> None:
        via = self.via.pop(note.incident, "api") if note.action == "acknowledge" else ""
        self.sink(self.escalator.on_note(conn, note, now, via))


class Paging:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.metrics = PagingMetrics(app.registry)
        self.escalator = Escalator(self._env)
        self.via: dict[int, str] = {}  # incident → how its pending acknowledgement came in
        self.planner = PagePlanner(self.escalator, self.via, self.after)
        self.channels: dict[str, Channel] = {}
        self.http: aiohttp.ClientSession | None = None
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Outcome] = []  # outcomes of planner runs, applied on the loop
        self._tasks: list[asyncio.Task[Any]] = []
        self._pollers: list[asyncio.Task[Any]] = []  # Telegram getUpdates, per channel
        self.defs: tuple[ChannelDef, ...] = ()  # the channels running
        self._advancing: asyncio.Future[Outcome] | None = None
        self._failing = False  # the escalation job failed last time (internal incident up)
        self._calendars: tuple[int, Calendars] | None = None
        self.pager: PageDeliverer | None = None

    # config views ----------------------------------------------------------------
    @property
    def config(self) -> Config:
        config: Config = self.app.loaded.config
        return config

    def calendars(self) -> Calendars:
        config = self.config
        if self._calendars is None or self._calendars[0] != id(config):
            self._calendars = (id(config), Calendars(config.customers))
        return self._calendars[1]

    def oncall(self, conn: Connection, now: float) -> OncallConfig:
        """The on-call config in force: the loaded one plus the stored overrides."""
        return effective(self.config.oncall, stored(conn, now))

    def current_oncall(self) -> OncallConfig:
        """The on-call config in force now (blocking: a database read)."""
        with self.app.engine.connect() as conn:
            return self.oncall(conn, self.app.clock.time())

    def _env(self, conn: Connection, now: float) -> Env:
        return Env(
            self.config,
            self.oncall(conn, now),
            self.calendars(),
            self._muted,
            self.config.daemon.public_url,
        )

    def _muted(self, incident_id: int, now: float) -> str:
        correlator = self.app.correlator
        if correlator is None:
            return ""
        inc = correlator.by_id.get(incident_id)
        if inc is None:
            return ""
        reason: str = correlator.rules.mute(inc, now)
        return reason

    def people(self) -> Mapping[str, Engineer]:
        return engineers_of(self.config.oncall)

    # lifecycle ---------------------------------------------------------------------
    def deliverers(self, base: Mapping[tuple[str, str], Deliverer]) -> PageDeliverers:
        assert self.app.engine is not None
        self.pager = PageDeliverer(
            self.app.engine,
            lambda: self.channels,
            lambda: self.config.paging,
            self.people,
            lambda key, message, ok: self.app.internal(key, message, ok=ok),
            self.app.clock.time,
            self.metrics,
        )
        return PageDeliverers(base, self.pager)

    async def build(self, defs: tuple[ChannelDef, ...]) -> BuiltChannels:
        """The channels of `defs` over one new HTTP session (raises, leaving nothing
        open, when one cannot be built)."""
        if not defs:
            return BuiltChannels(defs, {}, None)
        longest = max(float(c.params.get("timeout", 10.0)) for c in defs)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=longest + 60))
        try:
            return BuiltChannels(defs, build_channels(defs, http, self.app.clock), http)
        except BaseException:
            await http.close()
            raise

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._install(await self.build(self.config.paging.channels))
        self._tasks = [asyncio.create_task(self._run(), name="paging")]

    def _install(self, built: BuiltChannels) -> None:
        from alerts.paging.telegram_updates import pollers

        self.defs, self.channels, self.http = built.defs, built.channels, built.http
        self._pollers = pollers(self)

    async def _uninstall(self) -> None:
        await _cancel(self._pollers)
        self._pollers = []
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def swap(self, built: BuiltChannels, quiet: asyncio.Lock) -> None:
        """Changed paging channels take effect: while `quiet` (the outbox's lock) is
        held no page is being sent; the old channels' pollers and session are closed.
        Telegram's update offsets are stored, so a poller restarts where it stopped."""
        async with quiet:
            await self._uninstall()
            self._install(built)
        log.info("paging channels reloaded", extra={"channels": sorted(self.channels)})

    async def stop(self) -> None:
        await _cancel(self._tasks)
        self._tasks = []
        if self._advancing is not None:
            await asyncio.gather(self._advancing, return_exceptions=True)
        await self._uninstall()

    def reloaded(self) -> None:
        self.wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.paging.tick):
                    await self.wake.wait()
            self.wake.clear()
            # shielded: stopping never abandons a transaction half-way in its thread
            self._advancing = asyncio.ensure_future(self.advance())
            await asyncio.shield(self._advancing)

    # the job ---------------------------------------------------------------------
    async def advance(self) -> Outcome:
        """Advance every escalation to the daemon clock's now; apply what it decided."""
        engine = self.app.engine
        if engine is None:
            return Outcome()
        now = self.app.clock.time()

        def run() -> Outcome:
            with engine.begin() as conn:
                return self.escalator.advance(conn, now)

        try:
            outcome = await asyncio.to_thread(run)
        except Exception as exc:  # the database may be away: the next tick retries
            log.error("paging: advancing escalations failed: %s", str(exc).splitlines()[0])
            if not self._failing:  # on the dashboard and in tickets, whatever pages
                self._failing = True
                self.app.internal("paging-job", f"the escalation job fails: {exc}"[:300], ok=False)
            return Outcome()
        if self._failing:
            self._failing = False
            self.app.internal("paging-job", "the escalation job runs again", ok=True)
        # Applied here, not through `after`: its wake-up would run this job again at
        # once, and again, a busy loop of transactions (it doubled the daemon's CPU).
        self._pending.append(outcome)
        await self._apply()
        return outcome

    def after(self, outcome: Outcome) -> None:
        """Take what a transaction decided; planner outcomes (inside the writer's
        transaction, maybe in a worker thread) are applied by the next `_apply`."""
        self._pending.append(outcome)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    async def _apply(self) -> None:
        pending, self._pending = self._pending, []
        total = Outcome()
        for outcome in pending:
            total.merge(outcome)
        for policy in total.escalations:
            self.metrics.escalations.labels(policy).inc()
        for seconds in total.acked:
            self.metrics.ack_seconds.observe(seconds)
        if total.summaries:
            self.metrics.summaries.inc(total.summaries)
        for key, message, ok in total.internal:
            self.app.internal(key, message, ok=ok)
        correlator = self.app.correlator
        now = self.app.clock.time()
        for incident_id, why in total.unack:
            if correlator is not None:
                correlator.unacknowledge(incident_id, why, now)
        if total.internal or total.unack:
            await self.app.flush()
        if total.paged and self.app.dispatcher is not None:
            self.app.dispatcher.wake.set()

    # acknowledgement -------------------------------------------------------------
    async def acknowledge(self, incident_ids: tuple[int, ...], who: str, via: str) -> list[Any]:
        """Acknowledge each open incident for `who`; the others are skipped. Returns the
        incidents acknowledged (the correlator's records)."""
        correlator = self.app.correlator
        if correlator is None:
            return []
        now = self.app.clock.time()
        done = []
        for incident_id in incident_ids:
            self.via[incident_id] = via
            inc = correlator.acknowledge(incident_id, who, now)
            if inc is None:
                self.via.pop(incident_id, None)
                continue
            self.metrics.acks.labels(via).inc()
            done.append(inc)
        if done:
            await self.app.flush()
        return done

    def engineer_for_chat(self, chat_id: int) -> Engineer | None:
        return next((e for e in self.people().values() if e.telegram_chat_id == chat_id), None)

    def incidents_of_key(self, conn: Connection, key: str) -> tuple[int, ...]:
        """The incidents a page's dedup key stands for (one, or a summary's)."""
        from monitord.storage.schema import outbox

        if key.startswith("monitord-incident-") and key.rsplit("-", 1)[-1].isdigit():
            return (int(key.rsplit("-", 1)[-1]),)
        rows = conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.kind == "page", outbox.c.op == "trigger")
            .order_by(outbox.c.id.desc())
            .limit(2000)
        ).all()
        for (payload,) in rows:
            if isinstance(payload, dict) and payload.get("dedup_key") == key:
                return tuple(int(i) for i in payload.get("incidents", []))
        return ()


@dataclass(frozen=True)
class BuiltChannels:
    """Paging channels built from `defs`, over one session (None: no channels)."""

    defs: tuple[ChannelDef, ...]
    channels: dict[str, Channel]
    http: aiohttp.ClientSession | None


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
