"""The notifications tickets act on: a return is a "reopen" of the same incident,
significant changes of a notified incident are "update"s (priority, more devices,
RMM verdict), member counts are rate-limited, and it all survives a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from correlator import store
from correlator.engine import Correlator, Rules
from correlator.events import Event, EventKind, fingerprint
from correlator.model import Notification
from correlator.topology import Topology
from monitord.model import Status
from monitord.state import CheckState
from monitord.storage.db import open_database
from monitord.storage.schema import incidents
from tests.correlator.test_engine import CFG, World, fleet


def test_a_flap_of_five_returns_is_one_incident_with_five_reopens() -> None:
    w = World()
    t = 0.0
    for _ in range(6):
        w.fail("acme/srv/web", t)
        w.tick(t + 10)  # notified after group_wait
        w.recover("acme/srv/web", t + 20)
        w.tick(t + 21)
        t += 50  # within the reopen window (300 s) of the last recovery
    assert len(w.c.by_id) == 1
    actions = [n[0] for n in w.notes]
    assert actions == ["trigger", "resolve"] + ["reopen", "resolve"] * 5
    assert {n[1] for n in w.notes} == {1}


def test_a_return_that_recovers_before_it_is_notified_says_nothing() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.tick(10)
    w.recover("acme/srv/web", 20)
    w.fail("acme/srv/web", 30)
    w.recover("acme/srv/web", 32)  # back within group_wait: never notified again
    w.tick(60)
    assert [n[0] for n in w.notes] == ["trigger", "resolve"]


def test_more_devices_behind_an_outage_are_told_at_most_once_per_group_interval() -> None:
    w = World(workstations=60)
    w.fail("acme/rtr/ssh", 0)
    w.fail("acme/ws1/ssh", 1)
    w.tick(10)
    assert [n[0] for n in w.notes] == ["trigger"]
    outage = w.open_top()[0]
    assert outage.told_members == 2
    for i in range(2, 41):  # 39 more within one group_interval (10 s)
        w.fail(f"acme/ws{i}/ssh", 10 + i * 0.1)
        w.tick(10 + i * 0.1)
    assert [n[0] for n in w.notes] == ["trigger"]  # too soon after the trigger
    w.tick(20)
    for i in range(41, 61):
        w.fail(f"acme/ws{i}/ssh", 21)
        w.tick(21 + i * 0.1)
    w.tick(31)
    w.tick(45)
    assert [n[0] for n in w.notes] == ["trigger", "update", "update"]
    assert outage.told_members == 61  # rtr and 60 workstations


def test_verdict_changes_of_a_notified_incident_are_updates() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    verdict = Event(
        5,
        "rmm:nsight",
        EventKind.INFO,
        fingerprint("acme", "acme/srv", "check:web"),
        "acme",
        "acme/srv",
        "acme/srv/web",
        Status.OK,
        "RMM verdict confirmed: our check fails too",
    )
    w.c.handle(verdict, 5)
    w.tick(5)
    assert w.notes == []  # not notified yet: the trigger will carry it
    w.tick(10)
    w.c.handle(replace(verdict, message="RMM verdict confirmed → disputed: x"), 12)
    w.c.handle(replace(verdict, message="rebooted"), 13)  # other info: no update
    notes = _take(w, 13)
    assert [(n.action, n.changes) for n in notes] == [("update", ("verdict",))]
    assert notes[0].message == "RMM verdict confirmed → disputed: x"


def test_a_priority_change_of_a_notified_incident_is_an_update() -> None:
    inventory = fleet()
    states: dict[str, CheckState] = {}
    topo = Topology(inventory, states.get)

    def prioritize(event: Event) -> tuple[str, str]:
        return (
            ("P1", "P1 because: critical")
            if event.status == Status.CRITICAL
            else (
                "P3",
                "P3 because: warning",
            )
        )

    c = Correlator(Rules(CFG, prioritize, lambda inc, now: ""), topo)
    fp = fingerprint("acme", "acme/srv", "check:web")

    def event(status: Status, now: float) -> Event:
        return Event(
            now, "check", EventKind.PROBLEM, fp, "acme", "acme/srv", "acme/srv/web", status, "x"
        )

    c.handle(event(Status.WARNING, 0), 0)
    c.tick(10)
    c.handle(event(Status.CRITICAL, 20), 20)
    c.tick(20)
    notes = c.take_changes().notifications
    assert [(n.action, n.priority) for n in notes] == [("trigger", "P3"), ("update", "P1")]
    assert notes[1].changes == ("priority",)
    assert notes[1].message == "priority P3 -> P1: P1 because: critical"


def test_after_a_restart_a_return_is_still_a_reopen(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/m.db")
    w = World()
    w.fail("acme/srv/web", 0)
    w.tick(10)
    w.recover("acme/srv/web", 20)
    with engine.begin() as conn:
        store.persist(conn, w.c.take_changes(), lambda c, n: None)
    with engine.connect() as conn:
        loaded, next_id = store.load(conn, 30, CFG.reopen_window)
        assert conn.execute(select(incidents.c.ever_notified)).scalar_one() is True
    fresh = World()
    fresh.c.restore(loaded)
    fresh.fail("acme/srv/web", 40)
    fresh.tick(60)
    assert [n[0] for n in fresh.notes] == ["reopen"]
    assert next_id == 2
    engine.dispose()


def _take(w: World, now: float) -> list[Notification]:
    w.c.tick(now)
    return w.c.take_changes().notifications
