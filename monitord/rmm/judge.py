"""Judging an RMM source's failures on monitord's own evidence: one pass at a time.

A pass (`Judge.observe`) records the source's failures and clearances as
observations, verifies those that need it (`evidence`: existing results, an
on-demand check chosen by the failure's category), gives each a verdict
(`verdicts.decide`), turns verdicts into events, timeline entries and blind spots,
and stores all it decided in one transaction (`store`), so a restart carries on
from the stored verdicts and raises nothing twice. `feed.RmmFeed` decides when a
pass runs (polls, webhooks); this module decides what it concludes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from correlator.events import Event, EventKind, check_fingerprint
from correlator.topology import Health
from monitord.config.load import LoadedConfig
from monitord.config.rmm import Verdicts
from monitord.inventory import CheckSpec, Device, Inventory
from monitord.model import Status
from monitord.rmm import store
from monitord.rmm.evidence import CheckView, Verifier, scheduled, selected, verifications
from monitord.rmm.mapping import ACTIVE, UNMAPPED, DeviceRow
from monitord.rmm.metrics import RmmMetrics
from monitord.rmm.specs import SpecBook
from monitord.rmm.store import Observation
from monitord.rmm.verdicts import (
    AGENT_PROBLEM,
    AVAILABILITY_KINDS,
    BLIND_SPOT,
    CONFIRMED,
    DISPUTED,
    UNVERIFIABLE,
    Decision,
    Evidence,
    Facts,
    Identity,
    decide,
    identity,
    severity,
)
from monitord.sources.rmm.base import RmmFailure
from monitord.state import StateType

if TYPE_CHECKING:
    from monitord.app import App

EMITS = frozenset({CONFIRMED, AGENT_PROBLEM, UNVERIFIABLE})  # DISPUTED once escalated


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else "?"


@dataclass
class Pass:
    """What one observation pass decided, to store and to submit."""

    source: str
    now: float
    observations: list[Observation] = field(default_factory=list)
    verdict_log: list[tuple[Observation, float]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    timeline: list[tuple[Observation, str]] = field(default_factory=list)
    loaded: set[int] = field(default_factory=set)  # ids of the open ones it loaded


class Judge:
    """The verdicts of one App's RMM sources (built by `RmmFeed`)."""

    def __init__(self, app: App, metrics: RmmMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._lock = asyncio.Lock()  # one observation pass at a time
        self._limit: asyncio.Semaphore | None = None
        self._book: SpecBook | None = None
        self._checks_index: tuple[Inventory, dict[str, list[CheckSpec]]] | None = None

    def configure(self, loaded: LoadedConfig) -> None:
        """Verification bounds and check defaults, from the config the App started with."""
        self._limit = asyncio.Semaphore(loaded.config.rmm.verify_concurrency)
        self._book = SpecBook(loaded.config.defaults)

    async def observe(
        self,
        name: str,
        failures: Sequence[RmmFailure],
        *,
        complete: bool,
        origin: str,
        clear: Sequence[str] = (),
        now: float | None = None,
        known: Mapping[str, tuple[str, str]] | None = None,
    ) -> list[Observation]:
        """Record `failures` (and clearances) of source `name`, judge what needs it,
        submit what the verdicts call for. `complete`: the failures are everything
        the RMM reports now, so an open observation missing from them is cleared."""
        async with self._lock:
            now = self.app.clock.time() if now is None else now
            p = Pass(name, now)
            engine = self.app.engine
            assert engine is not None

            horizon = now - self.app.loaded.config.rmm.blind_spot_after

            def load() -> tuple[
                list[Observation], dict[tuple[str, str], DeviceRow], list[Observation]
            ]:
                with engine.connect() as conn:
                    return (
                        store.open_observations(conn, name),
                        store.device_rows(conn, name),
                        store.cleared_observations(conn, name, horizon) if complete else [],
                    )

            opened, rows, lately = await asyncio.to_thread(load)
            p.loaded = {o.id for o in opened if o.id is not None}
            touched = self._record(p, failures, opened, rows, origin, known or {})
            keys = {o.key for o in touched}
            gone = [
                o
                for o in opened
                if o.kind != BLIND_SPOT and ((complete and o.key not in keys) or o.key in clear)
            ]
            for obs in gone:
                obs.cleared_at = now
            due = [o for o in touched if self._due(o, now)]
            await self._judge(p, due)
            live = [o for o in opened if o.cleared_at is None] + [
                o for o in touched if o.id is None
            ]
            await self._transitions(p, due, gone, live)
            if complete:
                # What the RMM reported until lately (or until this pass) it was not
                # blind to: a device it reports back a minute before monitord's
                # retries confirm the recovery is no blind spot.
                self._blind_spots(p, opened, [*live, *gone, *lately], rows)
            p.observations = _unique([*touched, *gone, *p.observations])
            await self._commit(p)
            return touched

    def _record(
        self,
        p: Pass,
        failures: Sequence[RmmFailure],
        opened: list[Observation],
        rows: dict[tuple[str, str], DeviceRow],
        origin: str,
        known: Mapping[str, tuple[str, str]],
    ) -> list[Observation]:
        by_key = {o.key: o for o in opened if o.kind != BLIND_SPOT}
        touched: list[Observation] = []
        skipped: Counter[str] = Counter()
        for f in failures:
            row = rows.get((p.source, f.device_id))
            if row is not None and row.state == UNMAPPED:
                skipped["unmapped-client"] += 1
                continue
            device = row.device_id if row is not None and row.state == ACTIVE else None
            customer = row.customer if row is not None and device is not None else None
            if device is None and f.device_id in known:
                device, customer = known[f.device_id]
            obs = by_key.get(f.key)
            if obs is None:
                obs = Observation(
                    id=None,
                    source=p.source,
                    key=f.key[:200],
                    origin=origin,
                    rmm_device_id=f.device_id,
                    device_id=device,
                    customer=customer,
                    kind=f.kind.value,
                    category=f.category.value,
                    check_type=f.check_type[:50],
                    description=f.description,
                    output=f.output,
                    status=f.status[:30],
                    started_at=f.started_at,
                    consecutive_fails=f.consecutive_fails,
                    first_seen=p.now,
                    last_seen=p.now,
                )
            else:
                if obs.device_id != device:
                    obs.verified_at = None  # judge again on the device it is now
                obs.device_id, obs.customer = device, customer
                obs.output, obs.status = f.output, f.status[:30]
                obs.consecutive_fails, obs.last_seen = f.consecutive_fails, p.now
                obs.started_at = f.started_at or obs.started_at
            touched.append(obs)
        for reason, n in skipped.items():
            self.metrics.skipped.labels(p.source, reason).inc(n)
        return touched

    def _due(self, obs: Observation, now: float) -> bool:
        if obs.verdict is None or obs.verified_at is None:
            return True
        return now - obs.verified_at >= self.app.loaded.config.rmm.reverify_after

    def _by_device(self) -> dict[str, list[CheckSpec]]:
        """The running inventory's checks by device (rebuilt when it is swapped)."""
        inventory = self.app.inventory
        if self._checks_index is None or self._checks_index[0] is not inventory:
            by_device: dict[str, list[CheckSpec]] = {}
            for spec in inventory.checks:
                by_device.setdefault(spec.device_id, []).append(spec)
            self._checks_index = (inventory, by_device)
        return self._checks_index[1]

    def _checks_of(self, device_id: str) -> list[CheckSpec]:
        return self._by_device().get(device_id, [])

    def _view(self) -> CheckView:
        pipeline = self.app.pipeline
        assert pipeline is not None and self.app.correlator is not None
        return CheckView(
            pipeline.states,
            pipeline.outputs,
            pipeline.last_check,
            self._by_device(),
            self.app.correlator.topology.reachability,
        )

    async def _judge(self, p: Pass, due: list[Observation]) -> None:
        """Gather evidence for `due` (verifications run concurrently) and decide."""
        if not due:
            return
        assert self._limit is not None and self._book is not None
        rmm = self.app.loaded.config.rmm
        view = self._view()
        verifier = Verifier(self.app.executor, self._book, self._limit, self.app.clock.time)
        pending: list[tuple[Observation, Facts, Verdicts, list[Evidence], list[Any]]] = []
        for obs in due:
            rule = rmm.rule(obs.category)
            device = self.app.inventory.devices.get(obs.device_id or "")
            facts, ev, tasks = self._evidence(obs, rule, device, view, verifier, p.now)
            pending.append((obs, facts, rule, ev, tasks))
        for obs, facts, rule, ev, tasks in pending:
            ev = ev + [await t for t in tasks]
            decision = decide(facts, rule, ev)
            self._apply(p, obs, decision, ev, rule)

    def _evidence(
        self,
        obs: Observation,
        rule: Verdicts,
        device: Device | None,
        view: CheckView,
        verifier: Verifier,
        now: float,
    ) -> tuple[Facts, list[Evidence], list[Any]]:
        if device is None:
            return Facts(obs.kind, obs.category, obs.description, None), [], []
        assert self.app.correlator is not None
        topology = self.app.correlator.topology
        reach = tuple(sorted(view.reachability.get(device.id, ())))
        down = bool(reach) and topology.health(device.id) == Health.DOWN
        facts = Facts(obs.kind, obs.category, obs.description, device.id, down, reach)
        if rule.unverifiable and obs.kind not in AVAILABILITY_KINDS:
            return facts, [], []
        availability = obs.kind in AVAILABILITY_KINDS
        # Availability is judged by its own rule whatever category the RMM gave it.
        evidence_rule = self.app.loaded.config.rmm.rule("availability") if availability else rule
        picks = selected(view, device.id, evidence_rule.evidence, obs.description)
        ev = scheduled(view, picks, now)
        tasks = verifier.verify(
            device, verifications(evidence_rule, obs.description), reach=availability
        )
        if availability:
            # A device's state may be a minute old: ask its reachability checks now.
            tasks += verifier.rerun(device, [s for s, reach in picks if reach], reach=True)
        else:
            # Checks without a fresh result (a device synced a moment ago, a daemon
            # just restarted) are run now rather than judged without.
            fresh = {e.check for e in ev if e.fresh}
            for flag in (True, False):
                stale = [s for s, reach in picks if reach is flag and s.id not in fresh]
                tasks += verifier.rerun(device, stale, reach=flag)
        return facts, ev, tasks

    def _apply(
        self, p: Pass, obs: Observation, decision: Decision, ev: list[Evidence], rule: Verdicts
    ) -> None:
        obs.verified_at = p.now
        obs.evidence = [e.to_dict() for e in ev]
        old = obs.verdict
        obs.rule = decision.rule
        if decision.verdict == old and decision.check_id == obs.check_id:
            return
        obs.verdict, obs.decided_at = decision.verdict, p.now
        obs.check_id = decision.check_id
        p.verdict_log.append((obs, p.now))
        self.metrics.verdicts.labels(p.source, decision.verdict).inc()
        obs_rule = f"{old} → {decision.verdict}" if old else decision.verdict
        p.timeline.append((obs, f"RMM verdict {obs_rule}: {decision.rule}"))

    # events --------------------------------------------------------------------
    async def _transitions(
        self, p: Pass, due: list[Observation], gone: list[Observation], live: list[Observation]
    ) -> None:
        """The events of clearances, new verdicts, disputes that lasted and failures
        held while their device is offline."""
        rmm = self.app.loaded.config.rmm
        for obs in gone:
            await self._release(p, obs, live, f"RMM cleared: {obs.description}")
        # An agent that does not report leaves stale check results behind (the AV
        # signature of a PC switched off for the weekend): hold what cannot be checked.
        offline = {o.device_id for o in live if o.kind in AVAILABILITY_KINDS}
        judged = {id(o) for o in due}
        for obs in live:
            if obs.device_id is None:
                continue
            held = obs.verdict == UNVERIFIABLE and obs.device_id in offline
            want = None if held else self._wanted(obs, rmm.rule(obs.category), p.now)
            if (want.fingerprint if want is not None else None) == obs.fingerprint:
                continue
            if obs.fingerprint is not None:
                why = (
                    f"held: the RMM reports the device {obs.kind}, so this result is stale"
                    if held
                    else f"RMM verdict is now {obs.verdict}"
                )
                await self._release(p, obs, live, why)
            if want is not None:
                self._emit(p, obs, want)
            if id(obs) not in judged:
                p.observations.append(obs)

    def _wanted(self, obs: Observation, rule: Verdicts, now: float) -> Identity | None:
        """The incident `obs`'s verdict feeds now (None: none)."""
        if obs.verdict is None or obs.device_id is None or obs.verdict == BLIND_SPOT:
            return None
        if obs.verdict == DISPUTED and now - obs.first_seen < rule.persist:
            return None
        if obs.verdict not in EMITS and obs.verdict != DISPUTED:
            return None
        return identity(
            Decision(obs.verdict, obs.rule, obs.check_id),
            customer=obs.customer,
            device=obs.device_id,
            kind=obs.kind,
            description=obs.description,
            category=rule.category,
        )

    def _emit(self, p: Pass, obs: Observation, want: Identity) -> None:
        assert obs.device_id is not None
        status = (
            Status.WARNING if obs.verdict in (AGENT_PROBLEM, DISPUTED) else severity(obs.status)
        )
        if obs.verdict == DISPUTED:
            obs.escalated_at = p.now
            p.timeline.append(
                (obs, f"RMM failure disputed for over {_hours(p.now - obs.first_seen)}: ticketed")
            )
        p.events.append(
            Event(
                p.now,
                f"rmm:{p.source}",
                EventKind.PROBLEM,
                want.fingerprint,
                obs.customer,
                obs.device_id,
                want.check_id,
                status,
                _message(p.source, obs, self.app.inventory.devices.get(obs.device_id)),
                category=want.category,
            )
        )
        obs.fingerprint = want.fingerprint

    async def _release(self, p: Pass, obs: Observation, live: list[Observation], why: str) -> None:
        """`obs` no longer feeds its incident: note it there, and resolve it unless
        another observation still feeds it or monitord's own check still fails."""
        fp = obs.fingerprint
        if fp is None:
            return
        obs.fingerprint = None
        p.events.append(self._info(p, fp, obs, why))
        if any(o.fingerprint == fp for o in live if o is not obs and o.cleared_at is None):
            return
        if self._held_by_check(fp, obs):
            return  # monitord's own check holds the incident; its recovery resolves it
        engine = self.app.engine
        assert engine is not None

        def others() -> int:
            with engine.connect() as conn:
                return store.holders(conn, fp, p.loaded)

        if await asyncio.to_thread(others):
            return
        p.events.append(
            Event(
                p.now,
                f"rmm:{p.source}",
                EventKind.RECOVERY,
                fp,
                obs.customer,
                obs.device_id,
                obs.check_id,
                Status.OK,
                why,
            )
        )

    def _held_by_check(self, fp: str, obs: Observation) -> bool:
        """Whether `fp` is the incident of one of monitord's checks of the device
        that still fails."""
        pipeline = self.app.pipeline
        if pipeline is None or obs.device_id is None:
            return False
        for spec in self._checks_of(obs.device_id):
            state = pipeline.states.get(spec.id)
            if (
                state is not None
                and state.hard_status != Status.OK
                and check_fingerprint(obs.customer, spec.device_id, spec.name) == fp
            ):
                return True
        return False

    def _info(self, p: Pass, fp: str, obs: Observation, text: str) -> Event:
        return Event(
            p.now,
            f"rmm:{p.source}",
            EventKind.INFO,
            fp,
            obs.customer,
            obs.device_id,
            obs.check_id,
            Status.OK,
            text[:1000],
        )

    # blind spots -------------------------------------------------------------
    def _blind_spots(
        self,
        p: Pass,
        opened: list[Observation],
        reported: list[Observation],
        rows: dict[tuple[str, str], DeviceRow],
    ) -> None:
        """monitord's own hard faults, older than rmm.blind_spot_after, on devices
        this RMM has reported nothing about that covers them for that long
        (`reported`: its open observations and those cleared within that time)."""
        pipeline = self.app.pipeline
        assert pipeline is not None
        horizon = p.now - self.app.loaded.config.rmm.blind_spot_after
        mine = {r.device_id: r for r in rows.values() if r.device_id and r.state == ACTIVE}
        covered = _covered(reported)
        spots = {o.key: o for o in opened if o.kind == BLIND_SPOT}
        seen: set[str] = set()
        for spec in self.app.inventory.checks:
            row = mine.get(spec.device_id)
            state = pipeline.states.get(spec.id)
            if row is None or state is None or state.hard_status == Status.OK:
                continue
            if state.state_type != StateType.HARD or state.last_hard_change > horizon:
                continue
            cover = covered.get(spec.device_id, set())
            if "*" in cover or spec.id in cover:
                continue
            key = f"blind:{spec.id}"[:200]
            seen.add(key)
            if key not in spots:
                self._new_blind_spot(p, row, spec, pipeline.outputs.get(spec.id, ""))
        for key, obs in spots.items():
            if key not in seen:
                obs.cleared_at = p.now
                p.observations.append(obs)
                if obs.fingerprint is not None:
                    p.events.append(
                        self._info(p, obs.fingerprint, obs, "no longer an RMM blind spot")
                    )

    def _new_blind_spot(self, p: Pass, row: DeviceRow, spec: CheckSpec, output: str) -> None:
        customer = row.customer
        device = self.app.inventory.devices.get(spec.device_id)
        fp = check_fingerprint(customer, spec.device_id, spec.name)
        rule = (
            f"rmm.blind_spot_after: {spec.name} has failed since before "
            f"{iso(p.now - self.app.loaded.config.rmm.blind_spot_after)} while {p.source} "
            f"reports {device.name if device else spec.device_id} healthy"
        )
        obs = Observation(
            id=None,
            source=p.source,
            key=f"blind:{spec.id}"[:200],
            origin="monitord",
            rmm_device_id=row.rmm_id,
            device_id=spec.device_id,
            customer=customer,
            kind=BLIND_SPOT,
            category=spec.kind,
            check_type=spec.kind,
            description=f"{spec.name} fails; {p.source} reports nothing",
            output=output,
            status="",
            started_at=None,
            consecutive_fails=0,
            first_seen=p.now,
            last_seen=p.now,
            verdict=BLIND_SPOT,
            rule=rule,
            decided_at=p.now,
            verified_at=p.now,
            check_id=spec.id,
            fingerprint=fp,
        )
        p.observations.append(obs)
        p.verdict_log.append((obs, p.now))
        self.metrics.verdicts.labels(p.source, BLIND_SPOT).inc()
        p.timeline.append((obs, f"RMM blind spot: {rule}"))

    # commit ------------------------------------------------------------------
    async def _commit(self, p: Pass) -> None:
        """Store the pass, submit its events, then put the verdicts on the
        timelines of the incidents they landed on (known after the flush)."""
        for event in p.events:
            self.app.submit(event)
        await self.app.flush()
        correlator = self.app.correlator
        assert correlator is not None
        notes: list[Event] = []
        for obs, text in p.timeline:
            incident = self._incident_of(obs)
            if incident is None:
                continue
            obs.incident_id = incident.id
            notes.append(self._info(p, incident.fingerprint, obs, text))
        for obs in p.observations:
            if obs.fingerprint is not None and obs.incident_id is None:
                incident = self._incident_of(obs)
                obs.incident_id = incident.id if incident is not None else None
        engine = self.app.engine
        assert engine is not None

        def save() -> None:
            with engine.begin() as conn:
                store.save_observations(conn, p.observations)
                store.log_verdicts(conn, p.verdict_log)

        await asyncio.to_thread(save)
        if notes:
            for event in notes:
                self.app.submit(event)
            await self.app.flush()

    def _incident_of(self, obs: Observation) -> Any:
        """The open incident `obs` feeds: by fingerprint, else the outage holding
        its check (or device) as a member."""
        correlator = self.app.correlator
        if correlator is None or obs.fingerprint is None:
            return None
        inc = correlator.by_fp.get(obs.fingerprint)
        if inc is not None and inc.is_open:
            return inc
        holder = correlator.member_of.get(obs.check_id or f"device:{obs.device_id}")
        return correlator.by_id.get(holder) if holder is not None else None


def _message(source: str, obs: Observation, device: Device | None) -> str:
    name = device.name if device is not None else obs.device_id
    if obs.verdict == AGENT_PROBLEM:
        return (
            f"RMM agent not reporting on {name}: {source} says {obs.kind} "
            f"since {iso(obs.started_at or obs.first_seen)}, but the device answers"
        )
    if obs.verdict == DISPUTED:
        return (
            f"{source} reports '{obs.description}' failing since "
            f"{iso(obs.started_at or obs.first_seen)}, but monitord sees it fine"
        )
    what = obs.kind if obs.kind in AVAILABILITY_KINDS else obs.description
    label = "unverifiable" if obs.verdict == UNVERIFIABLE else "confirmed"
    detail = f": {obs.output[:200]}" if obs.output else ""
    return f"[{source}, {label}] {name} {what}{detail}"


def _covered(live: Iterable[Observation]) -> dict[str, set[str]]:
    """Device → the check ids its RMM observations cover ("*": the whole device,
    which the RMM reports offline or overdue)."""
    covered: dict[str, set[str]] = {}
    for obs in live:
        if obs.kind == BLIND_SPOT or obs.device_id is None:
            continue
        cover = covered.setdefault(obs.device_id, set())
        if obs.kind in AVAILABILITY_KINDS:
            cover.add("*")
        cover.update(e["check"] for e in obs.evidence if e.get("origin") == "check")
        if obs.check_id:
            cover.add(obs.check_id)
    return covered


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _unique(items: Iterable[Observation]) -> list[Observation]:
    out: dict[int, Observation] = {}
    for obs in items:
        out.setdefault(id(obs), obs)
    return list(out.values())
