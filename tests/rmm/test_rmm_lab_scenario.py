"""The lab scenario: the RMM reports 3 offline workstations, 1 overdue server and 11
failing checks while the lab fleet shows which devices really are down; every
verdict must match what the lab actually did.

A real daemon, the real lab on loopback (its servers and workstations synced from
the RMM, the rest from the config), the real N-sight adapter, and the N-sight
emulator serving the lab's RMM view: driven by the lab's own fault injections plus
RMM-only ones, so the RMM and reality agree or disagree on purpose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from monitord.app import App
from monitord.config import load_config
from monitord.lab import Lab, generate_fleet
from monitord.lab.fleet import Fleet as LabFleet
from monitord.lab.rmm_nsight import NsightEmulator, lab_account
from monitord.model import Status
from monitord.rmm.lab_config import write_rmm_lab_config
from monitord.sources.rmm.base import Category
from monitord.storage.schema import events, incidents, rmm_observations
from tests.conftest import free_port
from tests.rmm.conftest import service_port
from tests.rmm.emulators import KEY
from tests.test_app import wait_for


@dataclass
class Scenario:
    lab: Lab
    app: App
    fleet: LabFleet

    def rows(self, query: Any) -> list[Any]:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return list(conn.execute(query).all())

    def hard(self, check_id: str, status: Status = Status.CRITICAL) -> bool:
        assert self.app.pipeline is not None
        state = self.app.pipeline.states.get(check_id)
        return state is not None and state.hard_status == status

    def check_of(self, lab_name: str, check: str) -> str:
        device = self.fleet.device_by_name[lab_name]
        return f"{device.customer}/{lab_name.upper()}/{check}"

    def verdicts(self) -> dict[str, Any]:
        return {
            r.key: r
            for r in self.rows(
                select(rmm_observations).where(rmm_observations.c.cleared_at.is_(None))
            )
        }


@pytest.fixture
async def scenario(tmp_path: Path) -> AsyncIterator[Scenario]:
    fleet = generate_fleet(devices=60, customers=3, seed=3)
    tcp, http = service_port(), service_port()
    async with (
        Lab(fleet, control_port=None, tcp_port=tcp, http_port=http, rmm=True) as lab,
        NsightEmulator(lab_account(lab, max_age=0.0), api_key=KEY) as emulator,
    ):
        source = {
            "name": "nsight",
            "kind": "nsight",
            "server": emulator.url,
            "api_key": KEY,
            "max_calls_per_minute": 0,  # the emulator needs no pacing
        }
        path = write_rmm_lab_config(
            fleet,
            tmp_path,
            source,
            tcp_port=tcp,
            http_port=http,
            listen=f"127.0.0.1:{free_port()}",
            interval="0.5s",
            retry_interval="0.2s",
            rmm={"blind_spot_after": "0s", "stale_after": "1m"},
        )
        text = path.read_text().replace("max_attempts: 3", "max_attempts: 2")
        path.write_text(text.replace("group_wait: 5s", "group_wait: 1s"))
        app = App(load_config(path))
        await app.start()
        assert app.jobs is not None
        app.jobs.remove_job("rmm-poll-nsight")  # the test polls when the lab is set up
        try:
            yield Scenario(lab, app, fleet)
        finally:
            await app.stop()


async def test_every_verdict_matches_what_the_lab_did(scenario: Scenario) -> None:
    s, lab, fleet = scenario, scenario.lab, scenario.fleet
    counts = await s.app.rmm.sync("nsight")
    assert counts is not None and counts["added"] == 44  # 12 servers, 32 workstations
    servers = [d.name for d in fleet.devices if d.role == "server"]
    stations = [d.name for d in fleet.devices if d.role == "workstation"]
    # every synced device has a first result before anything is injected
    for name in servers + stations:
        await wait_for(lambda n=name: s.hard(s.check_of(n, "ssh"), Status.OK), timeout=30)
    ws_down_1, ws_down_2, ws_agent, ws_av, ws_evt, ws_task = stations[:6]
    (s_agent, s_svc, s_web, s_false_svc, s_false_web, s_disk, s_backup, s_perf, s_hw, s_blind) = (
        servers[:10]
    )
    # reality: two workstations off, one server's web service down, one answering 503,
    # and one server's web service down that the RMM will not see
    for name in (ws_down_1, ws_down_2):
        await lab.inject("device", name, "down")
    await lab.inject("device", s_svc, "service_down")
    await lab.inject("device", s_web, "http_error")
    await lab.inject("device", s_blind, "service_down")
    # the RMM's own view, disagreeing on purpose
    rmm = lab.rmm
    assert rmm is not None
    at = lab.now()
    rmm.inject("agent_down", ws_agent, None, at)
    rmm.inject("agent_down", s_agent, None, at)
    rmm.inject("false_failure", s_false_svc, "service", at)
    rmm.inject("false_failure", s_false_web, "web", at)
    for device, category in (
        (s_disk, "disk-space"),
        (s_backup, "backup"),
        (s_perf, "performance"),
        (s_hw, "hardware"),
        (ws_av, "antivirus"),
        (ws_evt, "event-log"),
        (ws_task, "task"),
    ):
        rmm.inject("false_failure", device, category, at)
    rmm.inject("blind_spot", s_blind, None, at)
    # monitord sees what the lab did
    faulty = [
        s.check_of(ws_down_1, "ssh"),
        s.check_of(ws_down_2, "ssh"),
        s.check_of(s_svc, "web"),
        s.check_of(s_web, "web"),
        s.check_of(s_blind, "web"),
    ]
    for check in faulty:
        await wait_for(lambda c=check: s.hard(c), timeout=15)

    reported = rmm.failures(lab.faults(), at.timestamp())
    kinds = [f.kind.value for f in reported]
    offline_ws = {rmm.by_id[f.device_id] for f in reported if f.kind.value == "offline"}
    assert offline_ws == {ws_down_1, ws_down_2, ws_agent}  # 3 offline workstations
    assert [rmm.by_id[f.device_id] for f in reported if f.kind.value == "overdue"] == [s_agent]
    assert kinds.count("check") + kinds.count("task") == 11  # 11 failing checks

    assert await s.app.rmm.poll("nsight")
    got = s.verdicts()
    key = rmm.check_id

    def availability(name: str) -> str:
        kind = "overdue" if name in servers else "offline"
        return f"{rmm.device_ids[name]}:{kind}"

    expected = {
        availability(ws_down_1): "confirmed",  # the lab took it down
        availability(ws_down_2): "confirmed",
        availability(ws_agent): "agent-problem",  # up in the lab; the agent is silent
        availability(s_agent): "agent-problem",
        key(s_svc, Category.SERVICE): "confirmed",  # its web service is down in the lab
        key(s_web, Category.WEB): "confirmed",  # it answers 503 in the lab
        key(s_false_svc, Category.SERVICE): "disputed",  # its web service answers
        key(s_false_web, Category.WEB): "disputed",
        key(s_disk, Category.DISK_SPACE): "unverifiable",  # the lab has no disk checks
        key(s_backup, Category.BACKUP): "unverifiable",
        key(s_perf, Category.PERFORMANCE): "unverifiable",
        key(s_hw, Category.HARDWARE): "unverifiable",
        key(ws_av, Category.ANTIVIRUS): "unverifiable",  # the agent's own view
        key(ws_evt, Category.EVENT_LOG): "unverifiable",
        key(ws_task, Category.TASK): "unverifiable",
        f"blind:{s.check_of(s_blind, 'web')}": "blind-spot",  # the RMM says nothing
    }
    assert {k: got[k].verdict for k in got} == expected

    # confirmed: one incident each, shared with monitord's own check
    for name in (ws_down_1, ws_down_2):
        obs = got[availability(name)]
        assert obs.check_id == s.check_of(name, "ssh")
        sources = {
            r.source for r in s.rows(select(events).where(events.c.incident_id == obs.incident_id))
        }
        assert sources == {"check", "rmm:nsight"}
    web_incident = got[key(s_svc, Category.SERVICE)].incident_id
    assert s.rows(select(incidents).where(incidents.c.id == web_incident))[0].check_id == (
        s.check_of(s_svc, "web")
    )
    # agent problems: low priority, their own category
    for name in (ws_agent, s_agent):
        inc = s.rows(
            select(incidents).where(incidents.c.id == got[availability(name)].incident_id)
        )[0]
        assert (inc.category, inc.priority) == ("rmm-agent", "P4")
    # disputed: kept and shown, no incident before rmm persist (4 h)
    assert got[key(s_false_svc, Category.SERVICE)].incident_id is None
    # unverifiable: passed on under the correlator's categories
    cats = {
        s.rows(select(incidents).where(incidents.c.id == got[key(d, c)].incident_id))[0].category
        for d, c in (
            (s_disk, Category.DISK_SPACE),
            (s_backup, Category.BACKUP),
            (ws_av, Category.ANTIVIRUS),
        )
    }
    assert cats == {"disk-full", "backup-failed", "av-outdated"}

    # the lab heals, the RMM agrees: everything clears
    await lab.heal_all()
    for injection in rmm.injections():
        rmm.heal(injection.id)
    for check in faulty:  # monitord sees the lab healthy again
        await wait_for(lambda c=check: s.hard(c, Status.OK), timeout=15)
    assert await s.app.rmm.poll("nsight")
    assert s.verdicts() == {}
