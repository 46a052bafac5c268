"""The scheduler: stable phases, bounded concurrency, run_soon, reload."""

from __future__ import annotations

import asyncio
from typing import Any

from monitord.config.load import config_from_dict
from monitord.inventory import CheckSpec
from monitord.model import CheckResult, Target, ok
from monitord.scheduler import Scheduler, stable_offset


class Recorder:
    """An executor that records what ran and can hold checks open."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.running = 0
        self.peak = 0
        self.hold = 0.0

    async def execute(self, spec: CheckSpec, target: Target) -> CheckResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.runs.append(spec.id)
        await asyncio.sleep(self.hold)
        self.running -= 1
        return ok("fine")


def inventory(n: int, interval: str = "0.5s") -> Any:
    return config_from_dict(
        {
            "customers": [{"name": "acme"}],
            "defaults": {"interval": interval, "retry_interval": "0.1s"},
            "devices": [
                {
                    "name": "d{n}",
                    "count": n,
                    "customer": "acme",
                    "address": "127.50.0.1",
                    "checks": [{"type": "tcp", "port": 1}],
                }
            ],
        }
    ).inventory


def test_stable_offset_is_stable_and_inside_the_interval() -> None:
    offsets = [stable_offset(f"c{i}", 60) for i in range(1000)]
    assert offsets == [stable_offset(f"c{i}", 60) for i in range(1000)]
    assert all(0 <= o <= 60 for o in offsets)
    # spread out, not clumped: every 6 s tenth of the interval gets some
    assert len({int(o // 6) for o in offsets}) == 10


async def test_concurrency_is_bounded_and_every_check_runs() -> None:
    rec = Recorder()
    rec.hold = 0.05
    sched = Scheduler(
        rec, lambda spec, r, d, lag: spec.interval, max_concurrent=5, initial_spread=0.1
    )
    sched.load(inventory(40))
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(1.0)
    task.cancel()
    await sched.drain()
    assert rec.peak <= 5
    assert set(rec.runs) == {f"acme/d{i}/tcp:1" for i in range(1, 41)}


async def test_run_soon_runs_once_now_not_twice() -> None:
    rec = Recorder()
    sched = Scheduler(
        rec, lambda spec, r, d, lag: spec.interval, max_concurrent=10, initial_spread=0.01
    )
    sched.load(inventory(1, interval="30s"))
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.1)
    assert rec.runs == ["acme/d1/tcp:1"]
    assert sched.run_soon("acme/d1/tcp:1")
    assert not sched.run_soon("acme/nope/tcp:1")
    await asyncio.sleep(0.1)
    assert rec.runs == ["acme/d1/tcp:1"] * 2
    # the old slot 30 s ahead was replaced, not kept beside the new one
    assert len([e for e in sched.heap if sched.queued.get(e[2]) == e[1]]) == 1
    task.cancel()


async def test_reload_drops_removed_checks() -> None:
    rec = Recorder()
    sched = Scheduler(
        rec, lambda spec, r, d, lag: spec.interval, max_concurrent=10, initial_spread=0.05
    )
    sched.load(inventory(3, interval="0.2s"))
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.3)
    sched.load(inventory(1, interval="0.2s"))
    rec.runs.clear()
    await asyncio.sleep(0.5)
    task.cancel()
    assert set(rec.runs) == {"acme/d1/tcp:1"}
    assert set(sched.queued) <= {"acme/d1/tcp:1"}
