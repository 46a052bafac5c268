"""The correlator engine on a fake clock: fingerprints, dependencies, grouping,
storms, flapping, reopen, mutes; and replay properties (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.engine import Correlator, Rules
from correlator.events import Event, EventKind, fingerprint, internal_event
from correlator.model import Incident
from correlator.rules import build_prioritize
from correlator.topology import Topology
from monitord.config.load import config_from_dict
from monitord.config.model import Config, CorrelationConfig
from monitord.model import Status
from monitord.state import CheckState, StateType

CFG = CorrelationConfig(
    group_wait=10,
    group_interval=10,
    reopen_window=300,
    dependency_wait=60,
    storm_threshold=5,
    storm_window=60,
)


def fleet(workstations: int = 4) -> Any:
    return config_from_dict(
        {
            "customers": [
                {
                    "name": "acme",
                    "sites": [
                        {"name": "hq", "gateway": "rtr"},
                        {"name": "branch", "gateway": "rtr2"},
                    ],
                }
            ],
            "devices": [
                {
                    "name": "rtr",
                    "customer": "acme",
                    "site": "hq",
                    "address": "127.60.0.1",
                    "role": "network",
                    "checks": [{"type": "tcp", "name": "ssh", "port": 22}],
                },
                {
                    "name": "srv",
                    "customer": "acme",
                    "site": "hq",
                    "address": "127.60.0.2",
                    "role": "server",
                    "checks": [
                        {"type": "tcp", "name": "ssh", "port": 22},
                        {"type": "http", "name": "web"},
                    ],
                },
                {
                    "name": "ws{n}",
                    "count": workstations,
                    "customer": "acme",
                    "site": "hq",
                    "address": "127.60.0.10",
                    "role": "workstation",
                    "checks": [{"type": "tcp", "name": "ssh", "port": 22}],
                },
                {
                    "name": "rtr2",
                    "customer": "acme",
                    "site": "branch",
                    "address": "127.61.0.1",
                    "role": "network",
                    "checks": [{"type": "tcp", "name": "ssh", "port": 22}],
                },
            ],
        }
    ).inventory


class World:
    """Check states the topology reads, and a correlator over them."""

    def __init__(self, workstations: int = 4, mute: Any = None) -> None:
        self.inventory = fleet(workstations)
        self.states: dict[str, CheckState] = {}
        topo = Topology(self.inventory, self.states.get)
        rules = Rules(CFG, build_prioritize(Config(), lambda: topo), mute or (lambda inc, now: ""))
        self.c = Correlator(rules, topo)
        self.notes: list[tuple[str, int, str]] = []

    def fail(self, check: str, now: float, hard: bool = True) -> None:
        device, name = check.rsplit("/", 1)
        if hard:
            self.states[check] = CheckState(Status.CRITICAL, StateType.HARD, Status.CRITICAL)
            self.c.handle(_event(device, name, EventKind.PROBLEM, now), now)
        else:
            self.states[check] = CheckState(Status.CRITICAL, StateType.SOFT, Status.OK)

    def recover(self, check: str, now: float) -> None:
        device, name = check.rsplit("/", 1)
        self.states[check] = CheckState()
        self.c.handle(_event(device, name, EventKind.RECOVERY, now), now)

    def tick(self, now: float) -> None:
        self.c.tick(now)
        for n in self.c.take_changes().notifications:
            self.notes.append((n.action, n.incident, n.title))

    def open_top(self) -> list[Incident]:
        return [i for i in self.c.by_id.values() if i.is_open and i.parent_id is None]


def _event(device: str, check: str, kind: EventKind, now: float) -> Event:
    status = Status.OK if kind == EventKind.RECOVERY else Status.CRITICAL
    return Event(
        now,
        "check",
        kind,
        fingerprint("acme", device, f"check:{check}"),
        "acme",
        device,
        f"{device}/{check}",
        status,
        f"{check} {kind.value}",
    )


def test_same_problem_twice_is_one_incident() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.c.handle(_event("acme/srv", "web", EventKind.PROBLEM, 1), 1)
    assert len(w.open_top()) == 1


def test_single_server_problem_is_notified_after_group_wait() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.tick(5)
    assert w.notes == []
    w.tick(10)
    assert [n[0] for n in w.notes] == ["trigger"]
    w.recover("acme/srv/web", 20)
    w.tick(21)
    assert [n[0] for n in w.notes] == ["trigger", "resolve"]


def test_site_outage_is_one_incident_with_every_device_attached() -> None:
    w = World(workstations=30)
    # children harden first (the classic race), the router last
    for i in range(1, 31):
        w.fail(f"acme/ws{i}/ssh", 1)
    w.fail("acme/srv/ssh", 1)
    w.fail("acme/srv/web", 1)
    w.fail("acme/rtr/ssh", 2)
    w.tick(60)
    top = w.open_top()
    assert len(top) == 1 and top[0].kind == "outage"
    assert top[0].title == "site hq down: rtr unreachable, 31 devices behind it"
    attached = {m.device_id for m in top[0].members.values()}
    assert attached >= {f"acme/ws{i}" for i in range(1, 31)} | {"acme/srv", "acme/rtr"}
    assert [n[0] for n in w.notes] == ["trigger"]
    # heal: children recover with their parent, nothing else is notified
    w.recover("acme/rtr/ssh", 100)
    for i in range(1, 31):
        w.recover(f"acme/ws{i}/ssh", 101)
    w.recover("acme/srv/ssh", 101)
    w.recover("acme/srv/web", 101)
    w.tick(200)
    assert [n[0] for n in w.notes] == ["trigger", "resolve"]
    assert w.open_top() == []


def test_child_of_a_suspect_parent_waits_for_it() -> None:
    w = World()
    w.fail("acme/rtr/ssh", 0, hard=False)  # failing, not confirmed
    w.fail("acme/ws1/ssh", 0)
    assert "acme/rtr" in w.c.changes.rechecks
    w.tick(10)
    assert w.notes == []  # held: the parent is in doubt
    w.fail("acme/rtr/ssh", 15)  # now hard
    w.tick(30)
    assert len(w.notes) == 1 and "site hq down" in w.notes[0][2]


def test_child_still_failing_after_parent_recovers_gets_its_own_incident() -> None:
    w = World()
    w.fail("acme/rtr/ssh", 0)
    w.fail("acme/ws1/ssh", 1)
    w.tick(20)
    w.recover("acme/rtr/ssh", 30)
    assert "acme/ws1" in w.c.changes.rechecks
    w.tick(50)
    titles = [i.title for i in w.open_top()]
    assert titles == ["acme/ws1/ssh: CRITICAL - ssh problem"]
    assert [n[0] for n in w.notes] == ["trigger", "resolve", "trigger"]


def test_resolution_of_a_notified_child_is_never_suppressed() -> None:
    w = World()
    w.fail("acme/ws1/ssh", 0)
    w.tick(10)  # notified on its own
    w.fail("acme/rtr/ssh", 20)  # then the parent goes down: child folded
    w.tick(40)
    w.recover("acme/ws1/ssh", 50)
    w.tick(60)
    actions = [(a, t) for a, _, t in w.notes]
    assert ("resolve", "acme/ws1/ssh: CRITICAL - ssh problem") in actions


def test_storm_guard_collapses_a_burst() -> None:
    w = World(workstations=8)
    for i in range(1, 9):
        w.fail(f"acme/ws{i}/ssh", 0)  # the router is fine: a storm, not an outage
    w.tick(10)
    top = w.open_top()
    assert len(top) == 1 and top[0].kind == "storm"
    assert len(w.notes) == 1 and "8 problems at hq" in w.notes[0][2]


def test_flapping_keeps_one_incident_open() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.tick(10)
    fp = fingerprint("acme", "acme/srv", "check:web")
    w.c.handle(
        Event(
            11,
            "check",
            EventKind.FLAP_START,
            fp,
            "acme",
            "acme/srv",
            "acme/srv/web",
            Status.CRITICAL,
            "flapping",
        ),
        11,
    )
    for t in range(12, 40, 2):
        w.recover("acme/srv/web", t)
        w.fail("acme/srv/web", t + 1)
        w.tick(t + 1)
    assert len([i for i in w.c.by_id.values()]) == 1
    assert [n[0] for n in w.notes] == ["trigger"]


def test_reopen_within_window_is_the_same_incident() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.tick(10)
    w.recover("acme/srv/web", 20)
    w.tick(21)
    w.fail("acme/srv/web", 100)
    assert [e.action for e in w.c.changes.log] == ["reopened"]
    w.tick(120)
    assert len(w.c.by_id) == 1 and next(iter(w.c.by_id.values())).is_open
    assert [n[0] for n in w.notes] == ["trigger", "resolve", "reopen"]  # its ticket reopens


def test_problem_after_the_reopen_window_is_a_new_incident() -> None:
    w = World()
    w.fail("acme/srv/web", 0)
    w.recover("acme/srv/web", 20)
    w.fail("acme/srv/web", 20 + CFG.reopen_window + 1)
    assert len(w.c.by_id) == 2


def test_muted_incident_is_notified_when_the_mute_ends() -> None:
    muted_until = {"t": 100.0}
    w = World(mute=lambda inc, now: "maintenance 'patch'" if now < muted_until["t"] else "")
    w.fail("acme/srv/web", 0)
    w.tick(10)
    w.tick(50)
    assert w.notes == []
    w.tick(101)
    w.tick(140)
    assert [n[0] for n in w.notes] == ["trigger"]


def test_unknown_device_event_is_kept_as_an_incident() -> None:
    w = World()
    fp = fingerprint("acme", None, "nas-backup")
    w.c.handle(
        Event(
            0,
            "ingest:nas",
            EventKind.PROBLEM,
            fp,
            "acme",
            None,
            None,
            Status.CRITICAL,
            "backup failed on 'nas9'",
        ),
        0,
    )
    assert [i.kind for i in w.open_top()] == ["unknown-device"]


def test_internal_problem_is_one_incident_until_it_clears() -> None:
    w = World()
    for t in (0, 1, 2):  # raised on every failed attempt: still one incident
        w.c.handle(internal_event("ticket-system:zammad", "zammad unreachable", ok=False, ts=t), t)
    w.tick(10)
    (inc,) = w.open_top()
    assert (inc.kind, inc.title, inc.category) == (
        "internal",
        "monitord: zammad unreachable",
        "internal",
    )
    assert [n[0] for n in w.notes] == ["trigger"]
    w.c.handle(internal_event("ticket-system:zammad", "zammad is back", ok=True, ts=20), 20)
    w.tick(21)
    assert w.open_top() == []
    assert [n[0] for n in w.notes] == ["trigger", "resolve"]
    # clearing what is not open is a no-op
    w.c.handle(internal_event("rmm-feed:nsight", "feed fresh", ok=True, ts=30), 30)
    w.tick(31)
    assert len(w.c.by_id) == 1


def test_every_decision_is_on_the_timeline() -> None:
    w = World()
    w.fail("acme/ws1/ssh", 0)
    w.fail("acme/rtr/ssh", 1)
    w.c.tick(30)
    log = w.c.take_changes().log
    by_incident: dict[int, list[str]] = {}
    for entry in log:
        by_incident.setdefault(entry.incident_id, []).append(entry.action)
    outage = w.open_top()[0]
    child = next(i for i in w.c.by_id.values() if i.check_id == "acme/ws1/ssh")
    assert by_incident[child.id] == ["opened", "priority", "folded"]
    assert by_incident[outage.id][:3] == ["opened", "priority", "dependency"]
    assert "notified" in by_incident[outage.id]
    folded = next(e for e in log if e.action == "folded")
    assert f"incident #{outage.id}" in folded.detail and "behind rtr" in folded.detail
    assert outage.reason.startswith("P1 because:")


# replay properties ---------------------------------------------------------

CHECKS = ["acme/rtr/ssh", "acme/srv/ssh", "acme/srv/web", "acme/ws1/ssh", "acme/ws2/ssh"]
steps = st.lists(st.tuples(st.sampled_from(CHECKS), st.booleans()), min_size=1, max_size=30)


def replay(stream: list[tuple[str, bool]], dup: bool = False) -> dict[str, Any]:
    w = World(workstations=2)
    t = 0.0
    for check, failing in stream:
        for _ in range(2 if dup else 1):
            t += 1
            (w.fail if failing else w.recover)(check, t)
        w.tick(t)
    w.tick(t + 1000)
    return {
        "final_states": {
            c: (s.hard_status if (s := w.states.get(c)) else Status.OK) for c in CHECKS
        },
        "open": coverage(w.c),
        "reasons": [i.reason for i in w.c.by_id.values()],
    }


def coverage(c: Correlator) -> list[tuple[str, str, list[str]]]:
    """Top-level open incidents with every check they cover (their own, attached
    members and, recursively, folded incidents): what the desk sees, whatever the
    order the events came in."""

    def covered(inc: Incident) -> set[str]:
        out = {
            m.key
            for m in inc.members.values()
            if m.state != "recovered" and not m.key.startswith("device:")
        }
        if inc.check_id:
            out.add(inc.check_id)
        for child in c.by_id.values():
            if child.parent_id == inc.id and child.is_open:
                out |= covered(child)
        return out

    return sorted(
        (i.fingerprint, i.kind, sorted(covered(i)))
        for i in c.by_id.values()
        if i.is_open and i.parent_id is None
    )


@settings(max_examples=150, deadline=None)
@given(steps)
def test_duplicates_change_nothing(stream: list[tuple[str, bool]]) -> None:
    assert replay(stream)["open"] == replay(stream, dup=True)["open"]


@settings(max_examples=150, deadline=None)
@given(steps)
def test_every_open_incident_has_a_reason_and_matches_the_checks(
    stream: list[tuple[str, bool]],
) -> None:
    result = replay(stream)
    assert all(r.startswith("P") and "because" in r for r in result["reasons"])
    failing = {c for c, s in result["final_states"].items() if s != Status.OK}
    if not failing:
        assert result["open"] == []
    else:
        assert result["open"], "a failing check must be covered by an open incident"


@settings(max_examples=100, deadline=None)
@given(st.permutations(CHECKS))
def test_order_of_independent_failures_does_not_matter(order: list[str]) -> None:
    def run(seq: list[str]) -> list[tuple[str, str]]:
        return replay([(c, True) for c in seq])["open"]

    assert run(list(order)) == run(CHECKS)


@pytest.mark.parametrize("n", [1, 3])
def test_restore_keeps_suppression(n: int) -> None:
    w = World()
    w.fail("acme/rtr/ssh", 0)
    for i in range(1, n + 1):
        w.fail(f"acme/ws{i}/ssh", 1)
    w.tick(30)
    incidents = list(w.c.by_id.values())
    fresh = World()
    fresh.states.update(w.states)
    fresh.c.restore(incidents)
    fresh.tick(100)
    assert fresh.notes == []  # no burst of child pages after a restart
    fresh.fail("acme/ws4/ssh", 101)
    fresh.tick(200)
    # A new child still folds into the outage, which tells the desk it grew.
    outage = next(i.id for i in incidents if i.kind == "outage")
    assert [(action, ident) for action, ident, _ in fresh.notes] == [("update", outage)]
