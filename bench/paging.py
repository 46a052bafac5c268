"""Paging benchmarks, on a real App (SQLite, correlator, outbox) with a fake clock.

1. storm: 300 P1 incidents of a covered customer in one batch at 23:00. Measured: CPU
   seconds from the events to everything delivered (the correlator's batch, 300
   routing decisions and escalations, one summary page for the primary, and the 300
   built-in tickets the same outbox carries), and how many pages that made.
2. steady: the periodic escalation job with 1,000 open escalations of which none is
   due, half of them acknowledged (each looked at for a handover), the cost every
   `paging.tick` pays. Measured: CPU milliseconds per run.

Engineers have no channels here, so pages go to the console path (a pages row): the
cost measured is monitord's own, not a gateway's.

    python -m bench.paging --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from correlator.events import Event, EventKind, fingerprint
from monitord.app import App
from monitord.clock import FakeClock
from monitord.config.load import config_from_dict
from monitord.model import Status
from monitord.storage.schema import page_escalations, pages

RESULTS = Path(__file__).resolve().parent / "results"
STORM = 300
OPEN = 1000


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def config(state: Path, devices: int) -> Any:
    return config_from_dict(
        {
            "daemon": {"state_dir": str(state), "public_url": "https://mon.example"},
            "correlation": {"group_wait": "0s", "group_interval": "0s", "storm_threshold": 100000},
            "customers": [{"name": "acme", "contract": {"after_hours_cover": True}}],
            "devices": [
                {
                    "name": "srv-{n}",
                    "count": devices,
                    "customer": "acme",
                    "address": "10.0.0.1",
                    "role": "server",
                }
            ],
            "priority_rules": [{"name": "all", "priority": "P1"}],
            "oncall": {
                "engineers": [{"name": n} for n in ("jan", "petr", "boss")],
                "schedules": [
                    {
                        "name": "support",
                        "layers": [
                            {"name": "primary", "start": "2026-11-02", "engineers": ["jan"]},
                            {"name": "secondary", "start": "2026-11-02", "engineers": ["petr"]},
                        ],
                    }
                ],
            },
            "paging": {
                "policies": [
                    {
                        "name": "night",
                        "steps": [
                            {"targets": ["support/primary"], "wait": "10m"},
                            {"targets": ["support/secondary"], "wait": "10m"},
                            {"targets": ["boss"]},
                        ],
                    }
                ],
                "routes": [{"match": {"priorities": ["P1"]}, "policy": "night"}],
                "ack_secret": "b" * 32,
                "rate_limit": {"pages": 1000, "per": "10m"},
            },
        }
    )


def event(clock: FakeClock, n: int) -> Event:
    device = f"acme/srv-{n}"
    return Event(
        clock.time(),
        "bench",
        EventKind.PROBLEM,
        fingerprint("acme", device, "bench:down"),
        "acme",
        device,
        None,
        Status.CRITICAL,
        f"srv-{n} down",
        category="down",
    )


async def storm(tmp: Path) -> dict[str, float]:
    clock = FakeClock(datetime.fromisoformat("2026-11-25T23:00+01:00").timestamp())
    app = App(config(tmp, STORM), clock=clock)
    await app.start()
    try:
        for task in (*app._tasks, *app.paging._tasks):
            if task.get_name() in ("outbox", "paging"):
                task.cancel()
        for n in range(1, STORM + 1):
            app.submit(event(clock, n))
        t0 = cpu()
        await app.flush()
        await app.paging.advance()
        while await app.deliver_outbox():  # the tickets of the storm are in the outbox too
            pass
        spent = cpu() - t0
        assert app.engine is not None
        with app.engine.connect() as conn:
            made = conn.execute(select(func.count()).select_from(pages)).scalar_one()
        return {"cpu_s": spent, "pages": float(made), "incidents": float(STORM)}
    finally:
        await app.stop()


async def steady(tmp: Path) -> dict[str, float]:
    clock = FakeClock(datetime.fromisoformat("2026-11-25T23:00+01:00").timestamp())
    app = App(config(tmp, OPEN), clock=clock)
    await app.start()
    try:
        for task in (*app._tasks, *app.paging._tasks):
            if task.get_name() in ("outbox", "paging"):
                task.cancel()
        for n in range(1, OPEN + 1):
            app.submit(event(clock, n))
        await app.flush()
        await app.paging.advance()
        assert app.engine is not None
        with app.engine.begin() as conn:  # half acked, half waiting for their next step
            conn.execute(
                update(page_escalations)
                .where(page_escalations.c.id % 2 == 0)
                .values(
                    state="acked",
                    acked_by="jan",
                    acked_at=clock.time(),
                    acked_layer="support/primary",  # checked for a handover every run
                )
            )
        clock.advance(60)
        runs = []
        for _ in range(20):
            t0 = cpu()
            await app.paging.advance()
            runs.append(cpu() - t0)
        return {"cpu_ms_per_run": statistics.median(runs) * 1000, "open": float(OPEN)}
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    out: dict[str, Any] = {}
    for name, scenario in (("storm", storm), ("steady", steady)):
        results = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(asyncio.run(scenario(Path(tmp))))
            print(f"{name} run {i + 1}: {results[-1]}", flush=True)
        key = next(iter(results[0]))
        ordered = sorted(results, key=lambda r: r[key])
        out[name] = {"median": ordered[len(ordered) // 2], "all_runs": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "paging.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["median"] for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
