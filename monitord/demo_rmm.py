"""The RMM part of `monitord demo`: the lab's servers and workstations report to an
N-sight emulator, the daemon syncs them from it and gives every error the RMM
reports a verdict backed by its own checks.

Two acts use it: during the site outage the RMM's "offline/overdue" reports are
confirmed by monitord's own failing checks; afterwards the RMM and reality
disagree on purpose (an agent that stopped reporting on a healthy server, a
service the RMM calls stopped that answers, an antivirus alarm monitord cannot
see, a web service that is down while the RMM says nothing) and the demo prints
each verdict with the rule and evidence behind it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from monitord.app import App
from monitord.lab import Lab, LabSite
from monitord.lab.fleet import Fleet, LabDevice
from monitord.lab.rmm_nsight import NsightEmulator, lab_account
from monitord.model import Status
from monitord.rmm.verdicts import AGENT_PROBLEM, BLIND_SPOT, CONFIRMED, DISPUTED, UNVERIFIABLE
from monitord.storage.schema import incidents, rmm_observations

SOURCE = "nsight"
# The emulator re-renders the lab's RMM account at most this often (a sync is hundreds
# of calls); a poll right after a change waits this long to see it.
ACCOUNT_MAX_AGE = 1.0


def start_emulator(lab: Lab) -> NsightEmulator:
    return NsightEmulator(lab_account(lab, max_age=ACCOUNT_MAX_AGE), api_key=secrets.token_hex(16))


def source_definition(emulator: NsightEmulator, directory: Path) -> dict[str, Any]:
    """The `rmm.sources` entry for the emulator; its key goes to a file, as a real
    key would, so the config shows how secrets are referenced."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "nsight.key"
    key_file.touch(mode=0o600)
    key_file.write_text(emulator.api_key + "\n", encoding="utf-8")
    return {
        "name": SOURCE,
        "kind": "nsight",
        "server": emulator.url,
        "api_key": f"file:{key_file}",
        "max_calls_per_minute": 0,  # the real N-sight wants pacing; the emulator does not
    }


def device_ids(app: App, lab_devices: Iterable[LabDevice]) -> set[str]:
    """monitord's ids of `lab_devices`: synced ones carry the RMM's (upper-case) names."""
    wanted = {(d.customer, d.name.lower()) for d in lab_devices}
    return {d.id for d in app.inventory.devices.values() if (d.customer, d.name.lower()) in wanted}


def synced_count(app: App) -> int:
    return sum(1 for d in app.inventory.devices.values() if d.source == f"rmm:{SOURCE}")


def _open_observations(engine: Engine, devices: set[str]) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(rmm_observations, incidents.c.priority, incidents.c.parent_id)
            .outerjoin(incidents, incidents.c.id == rmm_observations.c.incident_id)
            .where(
                rmm_observations.c.cleared_at.is_(None),
                rmm_observations.c.device_id.in_(devices),
            )
            .order_by(rmm_observations.c.id)
        ).all()
    return list(rows)


async def poll(app: App, devices: set[str]) -> list[Any]:
    """Poll the RMM now (as `POST /api/v1/rmm/nsight/poll` would) and return the
    open observations of `devices`."""
    await asyncio.sleep(ACCOUNT_MAX_AGE)
    await app.rmm.poll(SOURCE)
    assert app.engine is not None
    return await asyncio.to_thread(_open_observations, app.engine, devices)


async def confirm_outage(app: App, devices: set[str], say: Callable[[str], None]) -> None:
    """Act 1: the RMM's view of the site outage, judged."""
    rows = await poll(app, devices)
    if not rows:
        say("RMM: N-sight reports nothing for the site yet")
        return
    verdicts = Counter(r.verdict for r in rows)
    roots = {r.parent_id or r.incident_id for r in rows if r.incident_id is not None}
    joined = f"; their evidence joins incident(s) {', '.join(f'#{i}' for i in sorted(roots))}"
    say(
        f"RMM: N-sight reports {len(rows)} agents of the site offline or overdue; "
        f"verdicts: {_counts(verdicts)}{joined if roots else ''} (no extra ticket or page)"
    )


async def cleared(app: App, devices: set[str], say: Callable[[str], None]) -> None:
    rows = await poll(app, devices)
    say(f"RMM: N-sight reports the site healthy again; open RMM observations: {len(rows)}")


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _counts(verdicts: Counter[str]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))


def _pick(fleet: Fleet, exclude: LabSite) -> tuple[list[LabDevice], list[LabDevice]]:
    others = [d for d in fleet.devices if d.site != exclude.name]
    servers = [d for d in others if d.role == "server"]
    stations = [d for d in others if d.role == "workstation"]
    return servers, stations


async def _hard(app: App, check_ids: Iterable[str], status: Status, timeout: float) -> bool:
    pipeline = app.pipeline
    assert pipeline is not None
    deadline = time.monotonic() + timeout
    pending = set(check_ids)
    while pending and time.monotonic() < deadline:
        pending = {
            c for c in pending if (st := pipeline.states.get(c)) is None or st.hard_status != status
        }
        await asyncio.sleep(0.5)
    return not pending


def _check_id(app: App, device: LabDevice, check: str) -> str:
    (device_id,) = device_ids(app, [device])
    return f"{device_id}/{check}"


WHY = {
    CONFIRMED: "one incident with monitord's own check, handled as its priority says",
    AGENT_PROBLEM: "a low-priority ticket for the agent, no page",
    DISPUTED: "kept for the desk, nobody bothered unless it persists",
    UNVERIFIABLE: "passed on under its own category",
    BLIND_SPOT: "monitord's own fault, flagged as missed by the RMM",
}


async def disagreements(
    app: App, lab: Lab, fleet: Fleet, exclude: LabSite, say: Callable[[str], None]
) -> bool:
    """Act 2: the RMM and reality disagree on purpose; every report gets a verdict."""
    view = lab.rmm
    assert view is not None
    servers, stations = _pick(fleet, exclude)
    if len(servers) < 3 or len(stations) < 2:
        say("RMM act skipped: the fleet has too few servers and workstations")
        return False
    (s_agent, s_false, s_blind), (ws_off, ws_av) = servers[:3], stations[:2]
    at = lab.now()
    faults = [await lab.inject("device", ws_off.name, "down")]
    say(f"LAB: workstation {ws_off.name} is switched off (the RMM will report it offline)")
    injections = [view.inject("agent_down", s_agent.name, None, at)]
    say(f"RMM: the agent on server {s_agent.name} stops reporting; the server itself is fine")
    injections.append(view.inject("false_failure", s_false.name, "service", at))
    say(f"RMM: reports the web service of {s_false.name} stopped; it is running")
    injections.append(view.inject("false_failure", ws_av.name, "antivirus", at))
    say(f"RMM: reports the antivirus of {ws_av.name} out of date (monitord cannot look)")
    faults.append(await lab.inject("device", s_blind.name, "service_down"))
    injections.append(view.inject("blind_spot", s_blind.name, None, at))
    say(f"LAB: the web service of {s_blind.name} stops; the RMM reports nothing")

    faulty = [_check_id(app, ws_off, "ssh"), _check_id(app, s_blind, "web")]
    if not await _hard(app, faulty, Status.CRITICAL, 90):
        say("RMM act: the lab's faults were not confirmed within 90 s (see the log)")
    await asyncio.sleep(app.loaded.config.rmm.blind_spot_after)
    devices = device_ids(app, [s_agent, s_false, s_blind, ws_off, ws_av])
    rows = await poll(app, devices)
    for r in rows:
        name = r.device_id.split("/", 1)[1]
        outcome = (
            f"incident #{r.parent_id or r.incident_id} [{r.priority}]"
            if r.incident_id is not None
            else "no incident"
        )
        say(f"  {r.verdict:<13} {name}: {r.description}")
        say(f"                why: {_short(r.rule)}")
        say(f"                so:  {WHY.get(r.verdict, r.verdict)} ({outcome})")
    verdicts = Counter(r.verdict for r in rows)
    # Past the correlator's group wait, so the act's incidents are ticketed and paged
    # while their faults last, as they would be for real.
    await asyncio.sleep(app.loaded.config.correlation.group_wait + 3)
    say(
        f"RMM verdicts: {_counts(verdicts)}; list them: "
        f"http://{app.loaded.config.daemon.listen}/api/v1/rmm/observations"
    )

    for fault in faults:
        await lab.heal(fault.id)
    for injection in injections:
        view.heal(injection.id)
    say("LAB/RMM: everything healed and reporting again")
    await _hard(app, faulty, Status.OK, 90)
    left = await poll(app, devices)
    say(f"RMM: open observations after the heal: {len(left)}")
    return len(verdicts) == 5 and not left
