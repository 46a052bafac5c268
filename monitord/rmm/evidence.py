"""monitord's own evidence on an RMM failure: its scheduled checks' states and
on-demand verification checks.

Verification runs through the daemon's executor (the same check types, the
same interface a remote poller implements), beside the scheduler rather than
through it, at most `rmm.verify_concurrency` at once: a burst of RMM failures
never takes the scheduler's slots. One verification of a device serves every
failure of that device in the same pass.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from monitord.config.rmm import EvidenceDef, Verdicts, VerifyDef
from monitord.executor import Executor
from monitord.inventory import CheckSpec, Device
from monitord.model import CheckResult, Status, Target
from monitord.rmm.specs import SpecBook
from monitord.rmm.verdicts import Evidence
from monitord.state import CheckState, StateType

VERIFY_PREFIX = "rmm-verify:"


@dataclass(frozen=True)
class CheckView:
    """What the feed may read of the running checks (the pipeline's maps)."""

    states: Mapping[str, CheckState]
    outputs: Mapping[str, str]
    last_check: Mapping[str, float]
    by_device: Mapping[str, Sequence[CheckSpec]]
    reachability: Mapping[str, Sequence[str]]


def selected(
    view: CheckView, device: str, defs: Sequence[EvidenceDef], description: str
) -> list[tuple[CheckSpec, bool]]:
    """The device's scheduled checks the evidence definitions pick, with whether
    each is a reachability check."""
    specs = view.by_device.get(device, ())
    reach = set(view.reachability.get(device, ()))
    out: dict[str, tuple[CheckSpec, bool]] = {}
    for ev in defs:
        if ev.when is not None and not re.search(ev.when, description, re.IGNORECASE):
            continue
        for spec in specs:
            if ev.reachability:
                hit = spec.id in reach
            else:
                hit = (not ev.kinds or spec.kind in ev.kinds) and (
                    not ev.names or any(fnmatch.fnmatch(spec.name, g) for g in ev.names)
                )
            if hit:
                out[spec.id] = (spec, spec.id in reach)
    return list(out.values())


def scheduled(
    view: CheckView, picks: Sequence[tuple[CheckSpec, bool]], now: float
) -> list[Evidence]:
    """Evidence from the picked checks' current states (checks without a result yet
    say nothing; a result older than three intervals is stale)."""
    out = []
    for spec, reach in picks:
        state = view.states.get(spec.id)
        last = view.last_check.get(spec.id)
        if state is None or last is None:
            continue
        out.append(
            Evidence(
                origin="check",
                check=spec.id,
                kind=spec.kind,
                status=state.status,
                hard=state.state_type == StateType.HARD,
                output=view.outputs.get(spec.id, ""),
                at=last,
                reachability=reach,
                fresh=now - last <= max(3 * spec.interval, 60.0),
            )
        )
    return out


def verifications(rule: Verdicts, description: str) -> list[VerifyDef]:
    return [
        v for v in rule.verify if v.when is None or re.search(v.when, description, re.IGNORECASE)
    ]


Run = Callable[[CheckSpec, Target], Awaitable[CheckResult]]


class Verifier:
    """Runs verification checks with bounded concurrency, once per device and check
    within one pass (`results` is the pass's cache; make a new Verifier per pass)."""

    def __init__(
        self,
        executor: Executor,
        book: SpecBook,
        limit: asyncio.Semaphore,
        now: Callable[[], float],
    ) -> None:
        self.executor = executor
        self.book = book
        self.limit = limit
        self.now = now
        self.results: dict[str, asyncio.Task[Evidence]] = {}

    def verify(
        self, device: Device, checks: Sequence[VerifyDef], reach: bool
    ) -> list[asyncio.Task[Evidence]]:
        """The verification checks `checks` on `device`."""
        specs = [self.book.spec(c, device.id, prefix=VERIFY_PREFIX) for c in checks]
        return self.rerun(device, specs, reach)

    def rerun(
        self, device: Device, specs: Sequence[CheckSpec], reach: bool
    ) -> list[asyncio.Task[Evidence]]:
        """`specs` run now (a scheduled check's result may be a minute old)."""
        tasks = []
        for spec in specs:
            task = self.results.get(spec.id)
            if task is None:
                task = asyncio.ensure_future(self._run(spec, device, reach))
                self.results[spec.id] = task
            tasks.append(task)
        return tasks

    async def _run(self, spec: CheckSpec, device: Device, reach: bool) -> Evidence:
        async with self.limit:
            try:
                result = await self.executor.execute(spec, Target(device.id, device.address))
            except Exception as exc:  # an executor never raises, but a bug must not stop a pass
                result = CheckResult(Status.UNKNOWN, f"verification failed: {exc}")
        return Evidence(
            origin="verify",
            check=spec.id,
            kind=spec.kind,
            status=result.status,
            hard=False,
            output=result.message,
            at=self.now(),
            reachability=reach,
        )
