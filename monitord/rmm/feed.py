"""The RMM feed in the daemon: inventory syncs, failure polls, verdicts, feed health.

Per configured source, two periodic jobs on the App's job scheduler:

- *sync* (`sync_interval`): the RMM's clients, sites and devices → the mapping
  table (`mapping.plan_sync`), then the running inventory is re-merged
  (`merge`) and swapped in when its devices changed;
- *poll* (`poll_interval`, never below the source's `min_poll_interval`): the
  RMM's current failures → observations, judged by `judge.Judge` (a failure seen
  for the first time, or whose evidence is older than `rmm.reverify_after`, is
  verified on monitord's evidence; one that is gone is a clearance). Webhooks
  (`push`) feed the same path with single failures and clearances.

A poll that fails (timeout, a WAF's HTML page, FAIL code 3, a 50 MB body: the
adapter raises `RmmError` with its reason) marks the feed failing with that
reason; once no good poll came for `rmm.stale_after`, the internal incident
"RMM feed stale" opens (`App.internal("rmm-feed:<name>")`), and the next good
poll clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from pydantic import BaseModel

from monitord.config.load import LoadedConfig
from monitord.config.rmm import (
    DEFAULT_VERDICTS,
    RmmConfig,
    RmmSourceDef,
    source_settings,
)
from monitord.executor import LocalExecutor
from monitord.rmm import store
from monitord.rmm.judge import Judge, iso
from monitord.rmm.mapping import DeviceRow, Mapper, plan_sync
from monitord.rmm.merge import merged
from monitord.rmm.metrics import RmmMetrics, read_counts
from monitord.rmm.store import FeedState, Observation
from monitord.sources.rmm.base import RmmError, RmmFailure, RmmSource
from monitord.sources.rmm.webhooks import Webhook

if TYPE_CHECKING:
    from monitord.app import App

log = logging.getLogger(__name__)

TICK = 5.0  # seconds between staleness checks and metric refreshes


@dataclass
class Runner:
    """One running source: its adapter and a lock per kind of pass, so that a sync
    and a poll of one source never run twice at once. A poll does not wait behind a
    sync: at N-sight's etiquette an MSP's inventory takes minutes of paced calls,
    and the adapter's own pacing (shared by both) keeps the call rate in bounds."""

    defn: RmmSourceDef
    settings: BaseModel  # the adapter's, secrets resolved
    source: RmmSource
    poll_interval: float
    sync_interval: float
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    poll_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    synced: bool = False


class RmmFeed:
    """The RMM side of one App (created by it; started after the App's jobs)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.metrics = RmmMetrics(app.registry, app.clock.time)
        self.runners: dict[str, Runner] = {}
        self.base: LoadedConfig | None = None  # the config's own inventory
        self.judge = Judge(app, self.metrics)
        self._background: set[asyncio.Future[Any]] = set()

    # lifecycle ---------------------------------------------------------------
    async def merged(self, loaded: LoadedConfig) -> LoadedConfig:
        """`loaded` with the stored synced devices merged in (at start and reload)."""
        if self.base is not None and self.base.digest != loaded.digest:
            # A reload may map clients or sites anew, or add a device to link to.
            self._sync_soon({d.name for d in loaded.config.rmm.sources if d.enabled})
        self.base = loaded
        return await self._merge(loaded)

    def _sync_soon(self, names: set[str]) -> None:
        jobs = self.app.jobs
        if jobs is None:
            return
        for name in names & self.runners.keys():  # a source the reload removes: no
            try:
                jobs.modify_job(f"rmm-sync-{name}", next_run_time=datetime.now(UTC))
            except JobLookupError:  # not scheduled (a test drives it)
                continue

    async def _merge(self, loaded: LoadedConfig) -> LoadedConfig:
        engine = self.app.engine
        assert engine is not None

        def rows() -> list[DeviceRow]:
            with engine.connect() as conn:
                return store.active_rows(conn)

        return merged(loaded, await asyncio.to_thread(rows))

    async def start(self) -> None:
        """Build the configured sources and schedule their jobs (never waits for an RMM)."""
        config = self.app.loaded.config
        self.judge.configure(self.app.loaded)
        await self._ensure_kinds(config.rmm)
        await self._install(self.build(config.rmm))

    def build(self, rmm: RmmConfig) -> dict[str, Runner]:
        """Runners for the enabled sources of `rmm` that are not running as defined
        (all of them at start; those a reload adds or changes). Swaps nothing."""
        built: dict[str, Runner] = {}
        for defn in rmm.sources:
            if not defn.enabled:
                continue
            # Compared resolved: a key rotated in the file `api_key: file:...` names
            # changes the settings, not the definition.
            cls, settings = source_settings(defn)
            running = self.runners.get(defn.name)
            if running is not None and (running.defn, running.settings) == (defn, settings):
                continue
            source: RmmSource = cls(settings, session=None, clock=self.app.clock)
            floor = float(cls.min_poll_interval)
            built[defn.name] = Runner(
                defn,
                settings,
                source,
                rmm.poll_interval_of(defn, floor),
                rmm.sync_interval_of(defn, floor),
            )
        return built

    async def swap(self, loaded: LoadedConfig, built: dict[str, Runner]) -> None:
        """A reload: make `loaded`'s sources the running ones. A removed source stops
        being synced and polled (its devices leave the running inventory, as for a
        disabled source; their rows and history stay); a changed one gets its new
        adapter and intervals; an added one starts. Jobs change at once; an old
        adapter is closed once the pass it is running ends, and a changed source
        keeps its locks, so its new adapter never runs a pass beside the old one."""
        wanted = {d.name for d in loaded.config.rmm.sources if d.enabled}
        self.judge.configure(loaded)
        for name in [n for n in self.runners if n not in wanted or n in built]:
            old = self.runners.pop(name)
            self._unschedule(name)
            if name in built:
                built[name].sync_lock, built[name].poll_lock = old.sync_lock, old.poll_lock
            else:
                self.metrics.drop_source(name)
                log.info("RMM source %s removed: no longer synced or polled", name)
            self.keep(asyncio.ensure_future(self._close_after_pass(name, old)))
        for name in built:
            log.info("RMM source %s (re)started by a reload", name)
        await self._install(built)

    async def _install(self, built: Mapping[str, Runner]) -> None:
        """Run `built`: their gauges, stored feed state and jobs, and the staleness
        tick with the first source (a daemon without an RMM has none)."""
        if not built:
            return
        self.runners.update(built)
        for name in built:
            self.metrics.init_source(name)
        await asyncio.to_thread(self._init_feeds)
        self._schedule(built)

    async def _close_after_pass(self, name: str, runner: Runner) -> None:
        async with runner.sync_lock, runner.poll_lock:
            try:
                await runner.source.aclose()
            except Exception as exc:  # a failed close must not fail the reload
                log.warning("closing the old adapter of RMM source %s failed: %s", name, exc)

    def _schedule(self, runners: Mapping[str, Runner]) -> None:
        if self.app.jobs is None:
            return
        now = datetime.now(UTC)
        for i, (name, runner) in enumerate(runners.items()):
            self._job(f"rmm-sync-{name}", self._syncer(name), runner.sync_interval, now)
            # The first poll after the first sync (a poll also syncs first if none ran).
            first = now + timedelta(seconds=5.0 + i)
            self._job(f"rmm-poll-{name}", self._poller(name), runner.poll_interval, first)
        if self.app.jobs.get_job("rmm-tick") is None:
            self._job("rmm-tick", self.tick, TICK, now + timedelta(seconds=TICK))

    def _unschedule(self, name: str) -> None:
        if self.app.jobs is None:
            return
        for job_id in (f"rmm-sync-{name}", f"rmm-poll-{name}"):
            with contextlib.suppress(JobLookupError):  # a test may drive it by hand
                self.app.jobs.remove_job(job_id)

    def _job(
        self, job_id: str, fn: Callable[[], Awaitable[Any]], seconds: float, first: datetime
    ) -> None:
        assert self.app.jobs is not None
        self.app.jobs.add_job(
            self.app._shielded(fn),
            "interval",
            seconds=seconds,
            id=job_id,
            max_instances=1,
            coalesce=True,
            next_run_time=first,
        )

    def _syncer(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if name in self.runners:  # else a reload removed it after the job fired
                await self.sync(name)

        return run

    def _poller(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if name in self.runners:
                await self.poll(name)

        return run

    async def _ensure_kinds(self, rmm: RmmConfig) -> None:
        kinds = {rmm.uplink_check.type}
        for category in DEFAULT_VERDICTS:
            kinds |= {v.type for v in rmm.rule(category).verify}
        executor = self.app.executor
        if isinstance(executor, LocalExecutor):
            try:
                await executor.ensure(kinds)
            except Exception as exc:  # e.g. no ICMP socket: verification answers UNKNOWN
                log.warning("RMM verification check types unavailable: %s", exc)

    def _init_feeds(self) -> None:
        engine = self.app.engine
        assert engine is not None
        now = self.app.clock.time()
        with engine.begin() as conn:
            for name, runner in self.runners.items():
                state = store.feed_state(conn, name, runner.defn.kind, now)
                self.metrics.last_good[name] = state.last_good_at or state.created_at

    async def stop(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        runners, self.runners = self.runners, {}
        for name, runner in runners.items():
            try:
                await runner.source.aclose()
            except Exception as exc:  # closing one must not keep the others open
                log.warning("closing RMM source %s failed: %s", name, exc)

    # inventory sync ----------------------------------------------------------
    async def sync(self, name: str) -> dict[str, int] | None:
        """Sync one source's inventory now; returns the counts, None if it failed."""
        runner = self.runners.get(name)
        if runner is None:
            raise KeyError(name)
        async with runner.sync_lock:
            counts = await self._sync(name, runner)
        if counts is not None:
            await self.refresh_inventory()
        return counts

    async def _sync(self, name: str, runner: Runner) -> dict[str, int] | None:
        clock = self.app.clock
        now = clock.time()
        try:
            async with asyncio.timeout(self.app.loaded.config.rmm.sync_timeout):
                snapshot = await runner.source.inventory()
        except Exception as exc:  # RmmError, a timeout, or an adapter's bug
            reason, message = _reason(exc)
            self.metrics.poll_errors.labels(name, "inventory", reason).inc()
            log.warning("RMM inventory sync of %s failed (%s): %s", name, reason, message)
            await asyncio.to_thread(self._save_sync_error, name, runner, f"{reason}: {message}")
            return None
        assert self.base is not None
        mapper = Mapper(name, self.app.loaded.config)
        mapper.use_devices(self.base.inventory.devices.values())
        plan, new = await asyncio.to_thread(self._save_sync, name, runner, mapper, snapshot, now)
        runner.synced = True
        for change, n in plan.counts.items():
            self.metrics.sync.labels(name, change).inc(n)
        for conflict in new:  # once each; open ones are listed by the API
            log.warning("RMM sync of %s: %s", name, conflict.detail)
        log.info(
            "RMM inventory synced",
            extra={"source": name, **{k: v for k, v in sorted(plan.counts.items())}},
        )
        return dict(plan.counts)

    def _save_sync(
        self, name: str, runner: Runner, mapper: Mapper, snapshot: Any, now: float
    ) -> tuple[Any, list[Any]]:
        engine = self.app.engine
        assert engine is not None
        with engine.begin() as conn:
            existing = {rmm_id: row for (_, rmm_id), row in store.device_rows(conn, name).items()}
            plan = plan_sync(mapper, snapshot, existing, now)
            new = store.save_plan(conn, name, plan, now)
            state = store.feed_state(conn, name, runner.defn.kind, now)
            state.last_sync_at = state.last_good_sync_at = now
            state.sync_error = ""
            state.counts = dict(plan.counts)
            store.save_feed(conn, state)
        return plan, new

    def _save_sync_error(self, name: str, runner: Runner, error: str) -> None:
        engine = self.app.engine
        assert engine is not None
        now = self.app.clock.time()
        with engine.begin() as conn:
            state = store.feed_state(conn, name, runner.defn.kind, now)
            state.last_sync_at, state.sync_error = now, error[:1000]
            store.save_feed(conn, state)

    async def refresh_inventory(self) -> bool:
        """Re-merge the synced devices into the config's inventory and swap it in
        when its devices or checks changed. Returns whether it swapped."""
        base = self.base
        if base is None:
            return False
        loaded = await self._merge(base)
        current = self.app.inventory
        if (
            loaded.inventory.devices == current.devices
            and loaded.inventory.checks == current.checks
            and loaded.inventory.customers == current.customers
        ):
            return False
        if self.base is not base:
            return False  # a reload came in meanwhile; it merged the rows itself
        await self.app.swap_inventory(loaded)
        return True

    # failure polls -----------------------------------------------------------
    async def poll(self, name: str) -> bool:
        """Poll one source's failures now and judge them; False if the poll failed."""
        runner = self.runners.get(name)
        if runner is None:
            raise KeyError(name)
        if not runner.synced and await self.sync(name) is None:
            log.info("RMM %s: polling failures without a fresh inventory", name)
        async with runner.poll_lock:
            now = self.app.clock.time()
            try:
                async with asyncio.timeout(self.app.loaded.config.rmm.poll_timeout):
                    failures = await runner.source.failures()
            except Exception as exc:  # RmmError, a timeout, or an adapter's bug
                reason, message = _reason(exc)
                await self._poll_failed(name, runner, reason, message, now)
                return False
        await self.judge.observe(name, failures, complete=True, origin="poll", now=now)
        await self._poll_ok(name, runner, now)
        return True

    async def poll_wait(self, name: str) -> float:
        """Seconds until `name` may be polled again (its RMM's minimum interval)."""
        runner = self.runners[name]
        engine = self.app.engine
        assert engine is not None
        now = self.app.clock.time()

        def last() -> float | None:
            with engine.connect() as conn:
                return store.feed_state(conn, name, runner.defn.kind, now).last_poll_at

        at = await asyncio.to_thread(last)
        floor = float(type(runner.source).min_poll_interval)
        return 0.0 if at is None else max(0.0, at + floor - now)

    async def push(
        self,
        name: str,
        failures: Sequence[RmmFailure],
        clearances: Sequence[str] = (),
        *,
        known: Mapping[str, tuple[str, str]] | None = None,
    ) -> list[Observation]:
        """Failures and clearances a webhook of source `name` delivered; `known`:
        RMM device id → (monitord device, customer) where the mapping has none."""
        return await self.judge.observe(
            name, failures, complete=False, origin="webhook", clear=clearances, known=known
        )

    def resolve(self, source: str, hook: Webhook) -> dict[str, tuple[str, str]]:
        """The monitord device a webhook names: by device id, else by name within the
        customer its client maps to, else by a name only one device has. Never a guess:
        an ambiguous name resolves to nothing."""
        devices = self.app.inventory.devices
        found = devices.get(hook.device_id)
        if found is None:
            name = (hook.device_name or hook.device_id).lower()
            customer = next(
                (
                    c.customer
                    for c in self.app.loaded.config.rmm.clients
                    if hook.client and c.matches(source, hook.client, hook.client)
                ),
                None,
            )
            matches = [
                d
                for d in devices.values()
                if d.name.lower() == name and customer in (None, d.customer)
            ]
            found = matches[0] if len(matches) == 1 else None
        return {hook.device_id: (found.id, found.customer)} if found is not None else {}

    def keep(self, task: asyncio.Future[Any]) -> None:
        """A pass running past its request (a slow verification): awaited at stop."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _poll_failed(
        self, name: str, runner: Runner, reason: str, message: str, now: float
    ) -> None:
        self.metrics.poll_errors.labels(name, "failures", reason).inc()
        self.metrics.feed_up.labels(name).set(0)
        engine = self.app.engine
        assert engine is not None

        def save() -> str | None:
            with engine.begin() as conn:
                state = store.feed_state(conn, name, runner.defn.kind, now)
                first = state.failing_since is None or state.error_reason != reason
                state.last_poll_at = now
                state.failing_since = state.failing_since or now
                state.error, state.error_reason = message[:1000], reason
                if first:
                    log.warning("RMM poll of %s failed (%s): %s", name, reason, message)
                stale = self._stale(state, now)
                store.save_feed(conn, state)
                return stale

        self._raise_stale(name, await asyncio.to_thread(save))

    async def _poll_ok(self, name: str, runner: Runner, now: float) -> None:
        self.metrics.feed_up.labels(name).set(1)
        self.metrics.last_good[name] = now
        engine = self.app.engine
        assert engine is not None

        def save() -> bool:
            with engine.begin() as conn:
                state = store.feed_state(conn, name, runner.defn.kind, now)
                raised = state.stale_raised
                if state.failing_since is not None:
                    log.info("RMM poll of %s works again", name)
                state.last_poll_at = state.last_good_at = now
                state.failing_since, state.error, state.error_reason = None, "", ""
                state.stale_since, state.stale_raised = None, False
                store.save_feed(conn, state)
                return raised

        if await asyncio.to_thread(save):
            self.app.internal(f"rmm-feed:{name}", f"RMM feed {name} is polled again", ok=True)
            await self.app.flush()

    def _stale(self, state: FeedState, now: float) -> str | None:
        """Mark the feed stale once it has gone without a good poll for
        rmm.stale_after while failing; returns the message to raise it with."""
        if state.failing_since is None or state.stale_raised:
            return None
        since = state.last_good_at or state.created_at
        if now - since < self.app.loaded.config.rmm.stale_after:
            return None
        state.stale_since = state.stale_since or now
        state.stale_raised = True
        return (
            f"RMM feed {state.source} stale: no good poll since {iso(since)} "
            f"({state.error_reason}: {state.error[:200]})"
        )

    def _raise_stale(self, name: str, message: str | None) -> None:
        """On the event loop: the internal incident "RMM feed stale" (see `_stale`)."""
        if message is not None:
            self.metrics.stale.labels(name).set(1)
            log.error("%s", message)
            self.app.internal(f"rmm-feed:{name}", message, ok=False)

    async def tick(self) -> None:
        """Staleness of failing feeds, and the gauges from the stored state."""
        engine = self.app.engine
        if engine is None:
            return
        now = self.app.clock.time()

        def run() -> tuple[dict[str, str], dict[str, Any]]:
            raised: dict[str, str] = {}
            with engine.begin() as conn:
                for name, runner in self.runners.items():
                    state = store.feed_state(conn, name, runner.defn.kind, now)
                    stale = self._stale(state, now)
                    if stale is not None:
                        raised[name] = stale
                        store.save_feed(conn, state)
                return raised, read_counts(conn, now)

        try:
            raised, counts = await asyncio.to_thread(run)
        except Exception as exc:  # the database may be away; try again next tick
            log.error("RMM tick failed: %s", str(exc).splitlines()[0])
            return
        for name, message in raised.items():
            self._raise_stale(name, message)
        self.metrics.refresh(counts)


def _reason(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, RmmError):
        return exc.reason, str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", "no answer within rmm.poll_timeout"
    log.exception("RMM adapter raised %s (a bug: adapters raise RmmError)", type(exc).__name__)
    return "malformed", f"{type(exc).__name__}: {exc}"
