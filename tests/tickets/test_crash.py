"""Crash test: a real `monitord run` process killed with SIGKILL at random points,
at least 20 times, while 200 incidents open and resolve through the ingest endpoint.
After the last restart and drain, every incident has exactly one ticket in the
built-in store and exactly one in the helpdesk (the Zammad emulator), every close
was delivered, and no note was written twice. Counted and asserted.

The driver re-sends each problem's wanted state until the database shows it (an
accepted event can die with the process before it is written, as with any sender
that reports periodically): a problem is raised until its incident is notified,
then cleared until it is resolved.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from alerts.tickets.plan import ticket_key
from correlator.events import fingerprint
from monitord.storage.db import make_engine
from monitord.storage.schema import incidents, outbox, ticket_comments, tickets
from tests.conftest import free_port
from tests.tickets.emulators import ZammadEmulator

PROBLEMS = 200
KILLS = 20
IN_FLIGHT = 50
TOKEN = "crash-test-token-0123456789abcdef"

CONFIG = """\
daemon: {{listen: "127.0.0.1:{api}", state_dir: "{state}", write_interval: 0.1s,
         initial_spread: 0.1s}}
correlation: {{group_wait: 0.2s, group_interval: 0.2s, storm_threshold: 1000}}
customers: [{{name: acme}}]
devices: [{{name: srv, customer: acme, address: 127.42.0.77, role: server}}]
ingest:
  enabled: true
  tokens: [{{name: crash, token: "{token}"}}]
alerting:
  ticket_systems:
    - {{name: helpdesk, kind: zammad, url: "{zammad}", token: "{zammad_token}", group: NOC,
       customer: "guess:alerts@acme.example", timeout: 2}}
"""


class Driver:
    """Wants each problem raised until notified, then cleared until resolved."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.names = [f"p{n:03d}" for n in range(PROBLEMS)]
        self.fps = {fingerprint("acme", "acme/srv", n): n for n in self.names}
        self.state = dict.fromkeys(self.names, "idle")  # idle → raise → clear → done
        self.posts = 0

    def observe(self) -> None:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(incidents.c.fingerprint, incidents.c.state, incidents.c.ever_notified)
                ).all()
        except OperationalError:
            return  # not created yet, or busy
        for row in rows:
            name = self.fps.get(row.fingerprint)
            if name is None or not row.ever_notified:
                continue
            if row.state == "resolved":
                self.state[name] = "done"
            elif self.state[name] == "raise":
                self.state[name] = "clear"

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while not self.done:
                await asyncio.to_thread(self.observe)
                busy = sum(1 for s in self.state.values() if s in ("raise", "clear"))
                for name in self.names:
                    if busy >= IN_FLIGHT:
                        break
                    if self.state[name] == "idle":
                        self.state[name], busy = "raise", busy + 1
                events = [
                    {
                        "customer": "acme",
                        "device": "srv",
                        "check": name,
                        "status": "critical" if state == "raise" else "ok",
                        "message": f"{name} {'failed' if state == 'raise' else 'recovered'}",
                    }
                    for name, state in self.state.items()
                    if state in ("raise", "clear")
                ]
                if events:
                    try:
                        async with http.post(
                            f"{self.url}/api/v1/events",
                            json=events,
                            headers={"Authorization": f"Bearer {TOKEN}"},
                        ) as resp:
                            self.posts += resp.status == 202
                    except (aiohttp.ClientError, TimeoutError):
                        pass  # the daemon is down or starting: send again later
                await asyncio.sleep(0.2)

    @property
    def done(self) -> bool:
        return all(s == "done" for s in self.state.values())


async def up(url: str, proc: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                async with http.get(f"{url}/healthz") as resp:
                    if resp.status in (200, 503):
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"daemon not up (exit code {proc.poll()})")


def spawn(command: list[str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log, stderr=log)


def waiting(engine: Engine, tmp_path: Path) -> str:
    """What is still undelivered, and the end of the daemon's log (for a failure)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox)
            .where(outbox.c.kind == "ticket", outbox.c.delivered_at.is_(None))
            .limit(10)
        ).all()
    tail = (tmp_path / "daemon.log").read_text(errors="replace").splitlines()[-20:]
    lines = [
        f"#{r.id} {r.target} {r.op} attempts {r.attempts} parked {r.parked}: {r.last_error}"
        for r in rows
    ]
    return "\n".join([*lines, "daemon log:", *tail])


def drained(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            select(outbox.c.id).where(outbox.c.kind == "ticket", outbox.c.delivered_at.is_(None))
        ).first()
    return waiting is None


async def test_kill_9_at_random_points_leaves_exactly_one_ticket_per_incident(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("MONITORD_CRASH_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    zammad = ZammadEmulator()
    await zammad.start()
    api = free_port()
    url = f"http://127.0.0.1:{api}"
    state = tmp_path / "state"
    cfg = tmp_path / "monitord.yaml"
    cfg.write_text(
        CONFIG.format(
            api=api,
            state=state,
            token=TOKEN,
            zammad=zammad.url,
            zammad_token=zammad.token,
        )
    )
    engine = make_engine(f"sqlite:///{state / 'monitord.db'}")
    driver = Driver(engine, url)
    log = (tmp_path / "daemon.log").open("ab")
    command = [sys.executable, "-m", "monitord", "run", "--config", str(cfg)]
    kills = 0
    proc: subprocess.Popen[bytes] | None = None
    driving = asyncio.create_task(driver.run())
    try:
        for n in range(KILLS):
            zammad.delay = rng.choice((0.0, 0.0, 0.02, 0.1))  # kills land inside requests too
            proc = spawn(command, log)
            if n % 4 == 0:  # at a random point of the start itself
                await asyncio.sleep(rng.uniform(0.1, 2.0))
            else:  # or while it works
                await up(url, proc)
                await asyncio.sleep(rng.uniform(0.05, 1.5))
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
            kills += proc.returncode == -signal.SIGKILL
        zammad.delay = 0.0
        before_last_start = sum(s == "done" for s in driver.state.values())
        proc = spawn(command, log)
        await up(url, proc)
        await asyncio.wait_for(driving, timeout=90)
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(drained, engine):
            if time.monotonic() > deadline:
                raise AssertionError(f"the outbox did not drain: {waiting(engine, tmp_path)}")
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        driving.cancel()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        await zammad.stop()
    detail = f"seed {seed}; daemon log {tmp_path / 'daemon.log'}"
    assert kills >= KILLS, detail

    with engine.connect() as conn:
        ours = [r for r in conn.execute(select(incidents)).all() if r.fingerprint in driver.fps]
        builtin = conn.execute(select(tickets)).all()
        comments = conn.execute(select(ticket_comments)).all()
        ops = conn.execute(select(outbox).where(outbox.c.kind == "ticket")).all()
    engine.dispose()

    # 200 incidents, each notified once and resolved.
    assert len(ours) == PROBLEMS and {r.fingerprint for r in ours} == set(driver.fps), detail
    assert all(r.state == "resolved" and r.ever_notified for r in ours), detail
    keys = {ticket_key("monitord", r.id, r.opened_at): r.id for r in ours}

    # Every ticket operation was delivered, none parked: open and close, in both systems.
    assert all(o.delivered_at is not None and not o.parked for o in ops), detail
    assert Counter((o.target, o.op) for o in ops) == {
        ("builtin", "open"): PROBLEMS,
        ("builtin", "resolve"): PROBLEMS,
        ("helpdesk", "open"): PROBLEMS,
        ("helpdesk", "resolve"): PROBLEMS,
    }, detail

    # Built-in store: exactly one ticket per incident, resolved, two entries each.
    assert len(builtin) == PROBLEMS and {t.dedup_key for t in builtin} == set(keys), detail
    assert sorted(t.incident_id for t in builtin) == sorted(keys.values()), detail
    assert all(t.status == "resolved" for t in builtin), detail
    per_ticket = Counter(c.ticket_id for c in comments)
    assert set(per_ticket.values()) == {2}, detail

    # Helpdesk: exactly one ticket per incident, closed, its two notes each once.
    assert len(zammad.tickets) == PROBLEMS, detail
    titled = Counter(re.sub(r".*\[(.+)\]$", r"\1", t["title"]) for t in zammad.tickets.values())
    assert titled == dict.fromkeys(keys, 1), detail
    assert all(t["state"] == "closed" for t in zammad.tickets.values()), detail
    notes = [len(t["articles"]) for t in zammad.tickets.values()]
    assert set(notes) == {2}, detail
    adopted = (tmp_path / "daemon.log").read_text(errors="replace").count("ticket adopted by")
    print(
        f"{kills} kills, {before_last_start} incidents resolved before the last start, "
        f"{driver.posts} ingest posts, {adopted} tickets created but not recorded before a "
        f"kill (adopted by their key), {detail}"
    )
