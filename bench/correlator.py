"""Correlator benchmarks.

1. outage: every device of a 1,200-device fleet at 40 sites fails at once (one
   problem event per check, children before routers, the worst order) and
   is correlated into incidents and written to SQLite. Measured: wall time
   from the last event to the incidents being decided and committed, and
   the number of top-level incidents (must be one per site).
2. throughput: a long stream of independent problem/recovery events through
   the correlator (in memory, then also with the SQLite write of every
   batch), in CPU-seconds per 10,000 events.

    python -m bench.correlator --runs 3
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from alerts.notify import Notifier
from alerts.paging.escalation import Escalator, config_env
from alerts.paging.service import PagePlanner
from alerts.tickets.plan import TicketPlanner
from correlator import store
from correlator.engine import Correlator, Rules
from correlator.events import Event, EventKind, fingerprint
from correlator.rules import build_prioritize, no_mute
from correlator.topology import Topology
from monitord.config.load import config_from_dict
from monitord.config.model import AlertingConfig, Config, CorrelationConfig
from monitord.inventory import Inventory
from monitord.lab import generate_fleet
from monitord.model import Status
from monitord.state import CheckState, StateType
from monitord.storage.db import open_database

RESULTS = Path(__file__).resolve().parent / "results"
CFG = CorrelationConfig()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fleet_inventory(devices: int, sites: int | None = None) -> Inventory:
    fleet = generate_fleet(devices=devices, customers=40, sites=sites)
    return config_from_dict(
        {
            "customers": [
                {
                    "name": c.name,
                    "sites": [{"name": s.name, "gateway": s.gateway.name} for s in c.sites],
                }
                for c in fleet.customers
            ],
            "devices": [
                {
                    "name": d.name,
                    "customer": d.customer,
                    "site": d.site,
                    "address": d.address,
                    "role": str(d.role),
                    "parent": d.parent,
                    "checks": [{"type": "tcp", "name": "ssh", "port": 22}],
                }
                for d in fleet.devices
            ],
        }
    ).inventory


def correlator(inventory: Inventory, states: dict[str, CheckState]) -> Correlator:
    topo = Topology(inventory, states.get)
    return Correlator(Rules(CFG, build_prioritize(Config(), lambda: topo), no_mute), topo)


def persist(engine: Engine, c: Correlator, now: float) -> None:
    changes = c.take_changes()
    alerting = AlertingConfig()
    pages = PagePlanner(Escalator(config_env(Config)))
    notify = Notifier((TicketPlanner(lambda: alerting), pages))
    with engine.begin() as conn:
        store.persist(conn, changes, lambda cn, note: notify(cn, note, now))


def outage_run(inventory: Inventory, engine: Engine) -> dict[str, Any]:
    states: dict[str, CheckState] = {}
    c = correlator(inventory, states)
    sites = sorted({(d.customer, d.site) for d in inventory.devices.values()})
    down = [d for d in inventory.devices.values() if (d.customer, d.site) in set(sites)]
    down.sort(key=lambda d: d.parent_id is None)  # children first, routers last
    events = []
    for d in down:
        check = f"{d.id}/ssh"
        states[check] = CheckState(Status.CRITICAL, StateType.HARD, Status.CRITICAL)
        events.append(
            Event(
                0.0,
                "check",
                EventKind.PROBLEM,
                fingerprint(d.customer, d.id, "check:ssh"),
                d.customer,
                d.id,
                check,
                Status.CRITICAL,
                "connection refused",
            )
        )
    t0 = time.perf_counter()
    for e in events:  # what the daemon does each flush: handle, tick, persist
        c.handle(e, 1.0)
    c.tick(1.0)
    persist(engine, c, 1.0)
    decided = time.perf_counter() - t0
    c.tick(1.0 + CFG.group_wait)  # and the grouped notification after group_wait
    persist(engine, c, 1.0 + CFG.group_wait)
    top = [i for i in c.by_id.values() if i.is_open and i.parent_id is None]
    return {
        "devices_failing": len(down),
        "events": len(events),
        "sites": len(sites),
        "top_level_incidents": len(top),
        "outage_incidents": sum(1 for i in top if i.kind == "outage"),
        "seconds_from_last_event_to_committed_incidents": round(decided, 3),
    }


def throughput_run(inventory: Inventory, engine: Engine | None, n: int) -> dict[str, Any]:
    states: dict[str, CheckState] = {}
    c = correlator(inventory, states)
    checks = [
        (d, f"{d.id}/ssh") for d in inventory.devices.values() if d.parent_id is not None
    ]  # leaves: independent events, no cascades
    rng = random.Random(7)
    failing: set[str] = set()
    stream = []
    for i in range(n):
        d, check = rng.choice(checks)
        kind = EventKind.RECOVERY if check in failing else EventKind.PROBLEM
        (failing.discard if check in failing else failing.add)(check)
        stream.append(
            (
                check,
                Event(
                    float(i) / 10000,
                    "check",
                    kind,
                    fingerprint(d.customer, d.id, "check:ssh"),
                    d.customer,
                    d.id,
                    check,
                    Status.OK if kind == EventKind.RECOVERY else Status.CRITICAL,
                    "x",
                ),
            )
        )
    c0, t0 = cpu(), time.perf_counter()
    for i, (check, e) in enumerate(stream):
        # only the check's own state matters; parents stay up
        states[check] = (
            CheckState()
            if e.kind == EventKind.RECOVERY
            else CheckState(Status.CRITICAL, StateType.HARD, Status.CRITICAL)
        )
        c.handle(e, e.ts)
        if i % 5000 == 4999:  # a flush: every half second at 10,000 events/s
            c.tick(e.ts + CFG.group_wait)
            if engine is not None:
                persist(engine, c, e.ts)
            else:
                c.take_changes()
    used, wall = cpu() - c0, time.perf_counter() - t0
    return {
        "events": n,
        "cpu_s": round(used, 3),
        "wall_s": round(wall, 3),
        "events_per_cpu_s": round(n / used),
        "cpu_s_per_10000_events": round(10000 * used / n, 4),
    }


def median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--events", type=int, default=100_000)
    args = p.parse_args(argv)
    inventory = fleet_inventory(1200)
    forty_sites = fleet_inventory(1200, sites=40)  # 1,200 devices at 40 sites, all down
    outage, mem, db = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_database(f"sqlite:///{tmp}/c.db")
            outage.append(outage_run(forty_sites, engine))
            engine.dispose()
        mem.append(throughput_run(inventory, None, args.events))
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_database(f"sqlite:///{tmp}/c.db")
            db.append(throughput_run(inventory, engine, args.events))
            engine.dispose()
        print(outage[-1], mem[-1], db[-1], flush=True)
    out = {
        "outage": {
            "target": "1,200 devices failing at once correlated in < 2 s from the last event",
            "median": median(outage, "seconds_from_last_event_to_committed_incidents"),
            "all_runs": outage,
        },
        "throughput_in_memory": {
            "target": ">= 10,000 events/s on one core",
            "median": median(mem, "cpu_s"),
            "all_runs": mem,
        },
        "throughput_with_sqlite": {"median": median(db, "cpu_s"), "all_runs": db},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "correlator.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["median"] for k, v in out.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
