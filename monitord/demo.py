"""`monitord demo`: the lab fleet and the daemon together, with a scripted outage.

It writes an ordinary config for the generated fleet, starts the lab, an N-sight
RMM emulator serving the lab's RMM view, and the daemon (which syncs the servers
and workstations from the RMM), injects a whole-site outage after a short while,
narrates each step of the path (soft → hard → incident → ticket → page, and the
RMM's reports confirmed by monitord's own checks), heals the site and narrates
the recovery. Then the RMM and reality disagree on purpose and every RMM error
gets its verdict (`demo_rmm`). The daemon keeps running afterwards so the desk
view, /metrics and `monitord status` can be explored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from monitord import demo_rmm
from monitord.api.http import serve
from monitord.app import App
from monitord.config import load_config
from monitord.lab import Fleet, Lab, LabSite, generate_fleet
from monitord.rmm.lab_config import write_rmm_lab_config
from monitord.state import StateType
from monitord.storage.schema import incidents, pages, tickets


def say(text: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def pick_site(fleet: Fleet) -> LabSite:
    """A site of a customer with after-hours cover, with servers, not too big to read."""
    candidates = [
        s
        for c in fleet.customers
        if c.after_hours
        for s in c.sites
        if any(d.role == "server" for d in s.devices) and 4 <= len(s.devices) <= 20
    ]
    if not candidates:
        candidates = list(fleet.sites)
    return max(candidates, key=lambda s: (len(s.devices), s.name))


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:

        def count(q: object) -> int:
            return int(conn.execute(q).scalar_one())  # type: ignore[call-overload]

        return {
            "open": count(
                select(func.count())
                .select_from(incidents)
                .where(incidents.c.state != "resolved", incidents.c.parent_id.is_(None))
            ),
            "folded": count(
                select(func.count())
                .select_from(incidents)
                .where(incidents.c.state != "resolved", incidents.c.parent_id.is_not(None))
            ),
            # Once an outage ends its folded problems are released (parent_id cleared),
            # so the recovery counts outages and check problems by kind.
            "outages": count(
                select(func.count()).select_from(incidents).where(incidents.c.kind == "outage")
            ),
            "problems": count(
                select(func.count()).select_from(incidents).where(incidents.c.kind != "outage")
            ),
            "tickets": count(select(func.count()).select_from(tickets)),
            "tickets_open": count(
                select(func.count()).select_from(tickets).where(tickets.c.status == "open")
            ),
            "pages": count(
                select(func.count()).select_from(pages).where(pages.c.kind == "trigger")
            ),
            "resolves": count(
                select(func.count()).select_from(pages).where(pages.c.kind == "resolve")
            ),
        }


def _open_titles(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(incidents.c.id, incidents.c.priority, incidents.c.title)
            .where(incidents.c.state != "resolved", incidents.c.parent_id.is_(None))
            .order_by(incidents.c.id)
        ).all()
    return [f"#{r.id} [{r.priority}] {r.title}" for r in rows]


def _problems(app: App, devices: set[str]) -> tuple[int, int]:
    soft = hard = 0
    assert app.pipeline is not None
    for spec in app.inventory.checks:
        if spec.device_id not in devices:
            continue
        st = app.pipeline.states.get(spec.id)
        if st is None or st.status == 0:
            continue
        if st.state_type == StateType.HARD:
            hard += 1
        else:
            soft += 1
    return soft, hard


async def _watch(app: App, devices: set[str], until: str, timeout: float) -> bool:
    """Narrate milestones until `until` ('paged' or 'recovered') or timeout."""
    assert app.engine is not None
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        soft, hard = _problems(app, devices)
        c = await asyncio.to_thread(_counts, app.engine)
        milestones = (
            [
                ("soft", soft > 0, f"checks failing, not yet confirmed (SOFT): {soft}"),
                ("hard", hard > 0, f"problems confirmed after retries (HARD): {hard}"),
                ("incident", c["open"] > 0, f"incidents open: {c['open']}"),
                (
                    "ticket",
                    c["tickets_open"] > 0,
                    f"tickets opened in the built-in store: {c['tickets_open']}",
                ),
                ("page", c["pages"] > 0, f"pages sent to the console channel: {c['pages']}"),
            ]
            if until == "paged"
            else [
                ("ok", soft + hard == 0, "all checks of the site are OK again"),
                (
                    "resolved",
                    c["open"] == 0,
                    f"incidents resolved: {c['outages']} outage(s) and the "
                    f"{c['problems']} check problems folded into them",
                ),
                ("tickets", c["tickets_open"] == 0, f"tickets resolved: {c['tickets']}"),
                (
                    "resolves",
                    c["resolves"] >= c["pages"],
                    f"resolve messages sent: {c['resolves']}",
                ),
            ]
        )
        for key, reached, text in milestones:
            if reached and key not in seen:
                seen.add(key)
                say(text)
        if len(seen) == len(milestones):
            return True
        await asyncio.sleep(0.5)
    return False


async def _settle(app: App, devices: set[str], timeout: float) -> None:
    """Wait until every check of `devices` is a hard problem (or `timeout`)."""
    total = sum(1 for c in app.inventory.checks if c.device_id in devices)
    for _ in range(int(timeout * 2)):  # the demo narrates by polling twice a second
        if _problems(app, devices)[1] >= total:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # let the last batch reach tickets and pages


async def scenario(app: App, lab: Lab, fleet: Fleet, fault_after: float) -> None:
    site = pick_site(fleet)
    devices = demo_rmm.device_ids(app, site.devices)
    say(f"fleet is being checked; injecting an outage in {fault_after:.0f}s")
    await asyncio.sleep(fault_after)
    fault = await lab.inject("site", site.name, "down")
    say(
        f"LAB: site {site.name!r} is down: router {site.gateway.name} and "
        f"{len(site.devices) - 1} devices behind it stop answering"
    )
    if not await _watch(app, devices, "paged", 120):
        say("the outage did not reach the page stage within 120 s (see the log)")
    await _settle(app, devices, 60)
    assert app.engine is not None
    c = await asyncio.to_thread(_counts, app.engine)
    say(
        f"outage confirmed: {c['open']} incident(s) ({c['folded']} check problems folded "
        f"into it by dependency), {c['tickets_open']} ticket(s), "
        f"{c['pages']} pages (P1/P2 only); try: monitord status --url "
        f"http://{app.loaded.config.daemon.listen}"
    )
    for title in await asyncio.to_thread(_open_titles, app.engine):
        say(f"  incident: {title}")
    await demo_rmm.confirm_outage(app, devices, say)
    await asyncio.sleep(10)
    await lab.heal(fault.id)
    say(f"LAB: site {site.name!r} healed")
    if await _watch(app, devices, "recovered", 120):
        say("recovery complete: fault -> hard state -> incident -> ticket -> page -> resolved")
    await demo_rmm.cleared(app, devices, say)
    await asyncio.sleep(5)
    say("next: the RMM and reality disagree on purpose")
    if await demo_rmm.disagreements(app, lab, fleet, site, say):
        say("every RMM error got a verdict backed by monitord's own evidence")


async def run_demo(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="monitord-demo-"))
    fleet = generate_fleet(devices=args.devices, customers=args.customers)
    tcp_port, http_port = (int(p) for p in args.lab_ports.split(","))
    host, _, port = args.lab_control.rpartition(":")
    async with contextlib.AsyncExitStack() as stack:  # undone in reverse, also on failure
        lab = await stack.enter_async_context(
            Lab(
                fleet,
                control_host=host,
                control_port=int(port),
                tcp_port=tcp_port,
                http_port=http_port,
                rmm=True,
            )
        )
        emulator = await stack.enter_async_context(demo_rmm.start_emulator(lab))
        path = write_rmm_lab_config(
            fleet,
            directory,
            demo_rmm.source_definition(emulator, directory),
            tcp_port=tcp_port,
            http_port=http_port,
            listen=args.listen,
            interval=f"{args.interval}s",
            retry_interval=f"{max(0.5, args.interval / 3):.1f}s",
            # Short so the demo shows it; production waits 15 min before calling a
            # fault the RMM does not report a blind spot.
            rmm={"blind_spot_after": "15s"},
        )
        loaded = load_config(path)
        app = App(loaded, config_path=path)
        await app.start()
        stack.push_async_callback(app.stop)
        runner = await serve(app, loaded.config.daemon.listen)
        stack.push_async_callback(runner.cleanup)
        await app.rmm.sync(demo_rmm.SOURCE)
        url = f"http://{loaded.config.daemon.listen}"
        say(
            f"lab:      {len(fleet.devices)} devices, {len(fleet.sites)} sites, "
            f"{len(fleet.customers)} customers on 127.x addresses (started in "
            f"{lab.startup_seconds:.2f} s)"
        )
        say(
            f"rmm:      N-sight emulator {emulator.url} serves the lab's RMM view; "
            f"{demo_rmm.synced_count(app)} servers and workstations synced from it "
            "(routers, switches, printers, UPSes come from the config)"
        )
        say(f"config:   {path}  (validate: monitord check-config {path})")
        say(
            f"daemon:   {len(app.inventory.checks)} checks; metrics {url}/metrics, "
            f"problems {url}/api/v1/problems, incidents {url}/api/v1/incidents"
        )
        say(f"status:   monitord status --url {url}")
        say(
            f"lab API:  {lab.control_url}/api/faults and /api/rmm/injections "
            "(inject your own faults)"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(scenario(app, lab, fleet, args.fault_after))
        try:
            if args.duration > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(args.duration):
                        await stop.wait()
            else:
                await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    say("stopped")
    return 0
