"""Cross-validation in a running daemon: every RMM failure gets a verdict backed by
monitord's own evidence, and lands on the incident the verdict calls for.

The daemon is real (loopback listeners as the devices, the real executor for
verification checks, SQLite); the RMM is the in-test fake source.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from monitord.app import App
from monitord.model import Status
from monitord.sources.rmm.base import Category, FailureKind
from monitord.storage.schema import events, incidents, pages, rmm_observations
from tests.rmm.daemon import SRV, SRV2, WS, Fleet, config, running_fleet
from tests.rmm.fakes import check, offline
from tests.test_app import wait_for


async def test_confirmed_rmm_offline_and_own_check_are_one_incident(fleet: Fleet) -> None:
    await fleet.listeners[SRV].down()
    await wait_for(lambda: fleet.hard("acme/SRV1/svc"), timeout=10)
    await fleet.app.flush()
    own = fleet.rows(
        select(incidents).where(
            incidents.c.check_id == "acme/SRV1/svc", incidents.c.state == "open"
        )
    )
    assert len(own) == 1
    await fleet.poll(offline("11", FailureKind.OVERDUE))
    obs = fleet.observation("11:overdue")
    assert obs.verdict == "confirmed"
    assert obs.check_id == "acme/SRV1/svc"
    assert obs.incident_id == own[0].id
    assert "does not answer monitord either" in obs.rule
    assert {e["origin"] for e in obs.evidence} == {"check", "verify"}
    # one incident, both sources as evidence
    sources = {
        r.source for r in fleet.rows(select(events).where(events.c.incident_id == own[0].id))
    }
    assert sources == {"check", "rmm:fake1"}
    assert len(fleet.rows(select(incidents).where(incidents.c.state == "open"))) == 1
    assert any("RMM verdict confirmed" in line for line in fleet.timeline(own[0].id))
    # the RMM recovers first: monitord's own check still holds the incident open
    await fleet.poll()
    assert fleet.observation("11:overdue").cleared_at is not None
    await fleet.app.flush()
    assert fleet.incident(own[0].id).state == "open"
    assert any("RMM cleared" in line for line in fleet.timeline(own[0].id))
    await fleet.listeners[SRV].up()
    await wait_for(lambda: fleet.incident(own[0].id).state == "resolved", timeout=10)


async def test_rmm_first_then_own_check_lands_on_the_same_incident(fleet: Fleet) -> None:
    await fleet.listeners[SRV].down()
    # the RMM reports it before monitord's check has hardened: the verification confirms
    await fleet.poll(offline("11", FailureKind.OVERDUE))
    obs = fleet.observation("11:overdue")
    assert obs.verdict == "confirmed"
    first = obs.incident_id
    assert first is not None
    await wait_for(lambda: fleet.hard("acme/SRV1/svc"), timeout=10)
    await fleet.app.flush()
    open_ = fleet.rows(select(incidents).where(incidents.c.state == "open"))
    assert [i.id for i in open_] == [first]
    sources = {r.source for r in fleet.rows(select(events).where(events.c.incident_id == first))}
    assert sources == {"check", "rmm:fake1"}


async def test_agent_problem_is_a_low_priority_incident_never_paged(fleet: Fleet) -> None:
    # the server is up; the RMM says its agent is overdue
    await fleet.poll(offline("13", FailureKind.OVERDUE))
    obs = fleet.observation("13:overdue")
    assert obs.verdict == "agent-problem"
    assert "but the device answers" in obs.rule
    inc = fleet.incident(obs.incident_id)
    assert (inc.category, inc.priority, inc.severity) == ("rmm-agent", "P4", 1)
    assert "RMM agent not reporting on SRV2" in inc.title
    assert "rmm.low_priority" in inc.reason
    await asyncio.sleep(0.5)  # past group_wait: notified as a ticket, never a page
    await fleet.app.flush()
    assert fleet.rows(select(pages)) == []
    await fleet.poll()
    await fleet.app.flush()
    assert fleet.incident(obs.incident_id).state == "resolved"


async def test_disputed_failure_is_kept_and_ticketed_only_after_it_persists(
    fleet: Fleet,
) -> None:
    dns = check("11", "7001", Category.SERVICE, "Windows Service Check - DNS Server")
    await fleet.poll(dns)
    obs = fleet.observation("7001")
    assert obs.verdict == "disputed"
    assert "monitord sees it fine: svc ok" in obs.rule
    assert obs.incident_id is None and obs.fingerprint is None
    assert fleet.rows(select(incidents).where(incidents.c.state == "open")) == []
    await asyncio.sleep(2.1)  # rmm.verdicts.service.persist
    await fleet.poll(dns)
    obs = fleet.observation("7001")
    assert obs.escalated_at is not None
    inc = fleet.incident(obs.incident_id)
    assert (inc.category, inc.priority) == ("rmm-disputed", "P4")
    assert "but monitord sees it fine" in inc.title
    # the service really fails now: the verdict turns, the dispute's ticket resolves
    await fleet.listeners[SRV].down()
    await wait_for(lambda: fleet.hard("acme/SRV1/svc"), timeout=10)
    await asyncio.sleep(0.15)  # past rmm.reverify_after: the next poll judges again
    await fleet.poll(dns)
    turned = fleet.observation("7001")
    assert turned.verdict == "confirmed"
    await fleet.app.flush()
    assert fleet.incident(obs.incident_id).state == "resolved"
    assert any("disputed → confirmed" in line for line in fleet.timeline(turned.incident_id))


async def test_unverifiable_is_passed_on_with_the_rmm_severity(fleet: Fleet) -> None:
    av = check(
        "12", "7002", Category.ANTIVIRUS, "Antivirus Update Check", status="testalertdelayed"
    )
    await fleet.poll(av)
    obs = fleet.observation("7002")
    assert obs.verdict == "unverifiable"
    inc = fleet.incident(obs.incident_id)
    assert inc.category == "av-outdated"
    assert inc.severity == int(Status.WARNING)  # the RMM's held-back alert
    assert "[fake1, unverifiable]" in inc.title
    assert "category av-outdated" in inc.reason


async def test_blind_spot_is_flagged_on_monitords_incident(fleet: Fleet) -> None:
    await fleet.listeners[SRV2].down()
    await wait_for(lambda: fleet.hard("acme/SRV2/svc"), timeout=10)
    await fleet.app.flush()
    await fleet.poll()  # the RMM reports nothing at all
    spot = fleet.observation("blind:acme/SRV2/svc")
    assert spot.verdict == "blind-spot"
    inc = fleet.incident(spot.incident_id)
    assert inc.check_id == "acme/SRV2/svc"
    assert any("RMM blind spot" in line for line in fleet.timeline(inc.id))
    await fleet.listeners[SRV2].up()
    await wait_for(lambda: fleet.hard("acme/SRV2/svc", Status.OK), timeout=10)
    await fleet.poll()
    assert fleet.observation("blind:acme/SRV2/svc").cleared_at is not None


async def test_an_rmm_that_reported_the_fault_is_not_blind_to_it(
    tmp_path: Path, fake_kind: str
) -> None:
    """The RMM reports the server overdue, then back a moment before monitord's own
    check recovers: no blind spot while the RMM's report is recent; one only once
    the RMM has said "healthy" for blind_spot_after while monitord still sees it."""
    async with running_fleet(tmp_path, blind_spot_after="1s") as fleet:
        await fleet.listeners[SRV].down()
        await wait_for(lambda f=fleet: f.hard("acme/SRV1/svc"), timeout=10)
        await fleet.poll(offline("11", FailureKind.OVERDUE))
        assert fleet.observation("11:overdue").verdict == "confirmed"
        spot = select(rmm_observations).where(rmm_observations.c.key == "blind:acme/SRV1/svc")
        await asyncio.sleep(1.1)  # monitord's fault is older than blind_spot_after
        await fleet.poll()  # the RMM says the server is back; monitord still sees it down
        assert fleet.observation("11:overdue").cleared_at is not None
        assert fleet.rows(spot) == []
        await fleet.poll()
        assert fleet.rows(spot) == []  # it reported the fault less than 1 s ago
        await asyncio.sleep(1.1)
        assert fleet.hard("acme/SRV1/svc")
        await fleet.poll()
        assert [r.verdict for r in fleet.rows(spot)] == ["blind-spot"]


async def test_a_restart_neither_repeats_nor_forgets(fleet: Fleet, tmp_path: Path) -> None:
    await fleet.poll(offline("13", FailureKind.OVERDUE))
    first = fleet.observation("13:overdue")
    app = fleet.app
    await app.stop()
    again = App(config(tmp_path, fleet.port))
    await again.start()
    assert again.jobs is not None
    again.jobs.remove_job("rmm-poll-fake1")
    try:
        fleet.app = again
        await wait_for(lambda: fleet.hard("acme/SRV2/svc", Status.OK), timeout=10)
        await fleet.poll(offline("13", FailureKind.OVERDUE))
        same = fleet.observation("13:overdue")
        assert (same.id, same.verdict, same.incident_id) == (
            first.id,
            "agent-problem",
            first.incident_id,
        )
        rmm_events = fleet.rows(
            select(events).where(events.c.source == "rmm:fake1", events.c.kind == "problem")
        )
        assert len(rmm_events) == 1  # nothing raised again
    finally:
        await again.stop()
        fleet.app = app


async def test_unverifiable_failure_is_held_while_the_agent_is_offline(fleet: Fleet) -> None:
    av = check("12", "7003", Category.ANTIVIRUS, "Antivirus Update Check")
    await fleet.poll(av)
    first = fleet.observation("7003").incident_id
    assert fleet.incident(first).state == "open"
    # the PC goes off for the weekend: its AV result is stale, not news
    await fleet.listeners[WS].down()
    await fleet.poll(av, offline("12"))
    held = fleet.observation("7003")
    assert (held.verdict, held.fingerprint) == ("unverifiable", None)
    await fleet.app.flush()
    assert fleet.incident(first).state == "resolved"
    assert any("held: the RMM reports the device" in line for line in fleet.timeline(first))
    # back on Monday, still outdated: passed on again
    await fleet.listeners[WS].up()
    await fleet.poll(av)
    again = fleet.observation("7003")
    assert again.fingerprint is not None
    await fleet.app.flush()
    assert fleet.incident(again.incident_id).state == "open"
