"""Ticket path benchmarks, in CPU-seconds of this process (SQLite in a temp dir).

1. backlog: one Dispatcher round (which rows go now) over 10,000 waiting ticket
   operations, half of them queued behind a helpdesk that is down. Runs every
   2 s while anything waits, so it must stay cheap when an outage has piled up
   a backlog. Target: < 20 ms CPU per round.
2. builtin: 1,000 incidents' built-in tickets (open, comment, resolve: 3,000
   operations) delivered by the Dispatcher into the store. Target: < 5 ms CPU
   per operation (a backlog of 10,000 drains in under a minute of CPU).
3. planner: 3,000 notifications (trigger, update, resolve of 1,000 incidents)
   planned for the built-in store and one external system inside the writer's
   transaction. Target: < 5 ms CPU per notification (notifications are grouped:
   a 1,200-device outage is 40 of them).

    python -m bench.tickets --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from alerts.outbox import Dispatcher
from alerts.tickets.builtin import BuiltinTickets
from alerts.tickets.plan import TicketPlanner
from correlator.model import Notification
from monitord.config.model import AlertingConfig, TicketSystemDef
from monitord.storage.db import open_database
from monitord.storage.schema import incident_log, incidents, outbox

RESULTS = Path(__file__).resolve().parent / "results"
N = 1000


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _incidents(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(incidents),
            [
                {
                    "id": i,
                    "fingerprint": f"fp{i}",
                    "kind": "check",
                    "state": "open",
                    "priority": "P2",
                    "severity": 2,
                    "title": f"srv{i}: web down",
                    "customer": "acme",
                    "site": "hq",
                    "device_id": f"acme/srv{i}",
                    "check_id": f"acme/srv{i}/web",
                    "category": "",
                    "opened_at": 1.7e9,
                    "updated_at": 1.7e9,
                    "reason": "P2 because: server",
                }
                for i in range(1, n + 1)
            ],
        )
        conn.execute(
            insert(incident_log),
            [
                {"incident_id": i, "ts": 1.7e9, "actor": "m", "action": "opened", "detail": "x"}
                for i in range(1, n + 1)
            ],
        )


def backlog_run(directory: Path) -> dict[str, Any]:
    engine = open_database(f"sqlite:///{directory}/backlog.db")
    rows = []
    for i in range(10_000):
        down = i % 2 == 0
        rows.append(
            {
                "kind": "ticket",
                "target": "helpdesk" if down else "builtin",
                "op": "open",
                "incident_id": i,
                "op_key": f"k{i}",
                "payload": {},
                "created_at": 0.0,
                "attempts": 3 if down and i < 200 else 0,
                "next_attempt_at": 500.0 if down and i < 200 else 0.0,  # waiting for retry
                "parked": False,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(outbox), rows)
    dispatcher = Dispatcher(engine, {})
    rounds = 20
    c0 = cpu()
    for _ in range(rounds):
        picked = dispatcher._pending(100.0)
    used = cpu() - c0
    engine.dispose()
    assert {i.target for i in picked} == {"builtin"}
    return {"waiting": len(rows), "cpu_ms_per_round": round(1000 * used / rounds, 2)}


def builtin_run(directory: Path) -> dict[str, Any]:
    engine = open_database(f"sqlite:///{directory}/builtin.db")
    with engine.begin() as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "kind": "ticket",
                    "target": "builtin",
                    "op": op,
                    "incident_id": i,
                    "op_key": f"{op}{i}",
                    "payload": {
                        "dedup_key": f"monitord-{i}-1700000000",
                        "subject": f"[P2] srv{i}: web down",
                        "customer": "acme",
                        "device_id": f"acme/srv{i}",
                        "priority": "P2",
                        "message": "HTTP 503",
                        "ts": 1.7e9,
                        "facts": [["Device", f"acme/srv{i}"]],
                        "evidence": ["opened: HTTP 503"],
                    },
                    "created_at": 0.0,
                    "attempts": 0,
                    "next_attempt_at": 0.0,
                    "parked": False,
                }
                for op in ("open", "comment", "resolve")
                for i in range(1, N + 1)
            ],
        )
    dispatcher = Dispatcher(engine, {("ticket", "builtin"): BuiltinTickets(engine)})

    async def drain() -> int:
        total = 0
        while delivered := await dispatcher.run_once(1.0):
            total += delivered
        return total

    c0 = cpu()
    delivered = asyncio.run(drain())
    used = cpu() - c0
    engine.dispose()
    assert delivered == 3 * N
    return {"operations": delivered, "cpu_ms_per_operation": round(1000 * used / delivered, 3)}


def planner_run(directory: Path) -> dict[str, Any]:
    engine = open_database(f"sqlite:///{directory}/planner.db")
    _incidents(engine, N)
    alerting = AlertingConfig(
        ticket_systems=(TicketSystemDef.model_validate({"name": "helpdesk", "kind": "zammad"}),)
    )
    planner = TicketPlanner(lambda: alerting, lambda: "https://mon.example")
    notes = [
        Notification(i, action, 1.7e9 + n, "P2", f"srv{i}", "acme", f"acme/srv{i}", "x", changes)
        for n, (action, changes) in enumerate(
            (("trigger", ()), ("update", ("members",)), ("resolve", ()))
        )
        for i in range(1, N + 1)
    ]
    c0 = cpu()
    with engine.begin() as conn:
        for note in notes:
            planner.plan(conn, note, 0.0)
    used = cpu() - c0
    engine.dispose()
    return {
        "notifications": len(notes),
        "cpu_ms_per_notification": round(1000 * used / len(notes), 3),
    }


def median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    scenarios = {
        "backlog": (backlog_run, "cpu_ms_per_round", "< 20 ms CPU per round over 10,000 waiting"),
        "builtin": (builtin_run, "cpu_ms_per_operation", "< 5 ms CPU per built-in operation"),
        "planner": (planner_run, "cpu_ms_per_notification", "< 5 ms CPU per notification"),
    }
    out: dict[str, Any] = {}
    for name, (run, key, target) in scenarios.items():
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as directory:
                runs.append(run(Path(directory)))
        out[name] = {"target": target, "median": median(runs, key), "all_runs": runs}
        print(name, out[name]["median"], file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tickets.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
