"""The ticket planner: which operation each notification calls for in each system,
by the ticket policy (priorities, customers, recovery), and what the payload says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from alerts.tickets.health import unreachable_key
from alerts.tickets.plan import TicketPlanner, ticket_key
from correlator.events import INTERNAL, fingerprint
from correlator.model import Notification
from monitord.config.model import AlertingConfig, TicketSystemDef
from monitord.config.tickets import TicketPolicy
from monitord.storage.db import open_database
from monitord.storage.schema import incident_log, incidents, outbox, ticket_refs

OPENED = 1_700_000_000.0


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """SQLite and PostgreSQL both."""
    engine = open_database(db_url)
    yield engine
    engine.dispose()


def alerting(**policy: Any) -> AlertingConfig:
    return AlertingConfig(
        ticket_systems=(TicketSystemDef.model_validate({"name": "helpdesk", "kind": "zammad"}),),
        ticket_policy=TicketPolicy.model_validate(policy),
    )


def incident(engine: Engine, ident: int, priority: str = "P2", **extra: Any) -> None:
    values = {
        "id": ident,
        "fingerprint": f"fp{ident}",
        "kind": "check",
        "state": "open",
        "priority": priority,
        "severity": 2,
        "title": "srv: web down",
        "customer": "acme",
        "site": "hq",
        "device_id": "acme/srv",
        "check_id": "acme/srv/web",
        "category": "",
        "opened_at": OPENED,
        "updated_at": OPENED,
        "reason": f"{priority} because: server",
        **extra,
    }
    with engine.begin() as conn:
        conn.execute(insert(incidents).values(**values))
        conn.execute(
            insert(incident_log).values(
                incident_id=ident, ts=OPENED, actor="monitord", action="opened", detail="web <b>"
            )
        )


def note(action: str, ident: int = 1, priority: str = "P2", ts: float = 1.0, **kw: Any) -> Any:
    return Notification(
        ident, action, OPENED + ts, priority, "srv: web down", "acme", "acme/srv", action, **kw
    )


def plan(engine: Engine, planner: TicketPlanner, *notes: Notification) -> list[tuple[str, str]]:
    with engine.begin() as conn:
        for n in notes:
            planner.plan(conn, n, 0.0)
    with engine.connect() as conn:
        return [(r.target, r.op) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def test_the_lifecycle_in_every_system(engine: Engine) -> None:
    incident(engine, 1)
    planner = TicketPlanner(lambda: alerting(on_recovery="close"), lambda: "https://mon.example/")
    ops = plan(
        engine,
        planner,
        note("trigger"),
        note("update", ts=2, changes=("members",)),
        note("acknowledge", ts=3),
        note("resolve", ts=4),
        note("reopen", ts=5),
    )
    assert ops == [
        (target, op)
        for op in ("open", "comment", "comment", "resolve", "reopen")
        for target in ("builtin", "helpdesk")
    ]
    with engine.connect() as conn:
        payloads = [r.payload for r in conn.execute(select(outbox).order_by(outbox.c.id))]
    first = payloads[0]
    assert first["dedup_key"] == ticket_key("monitord", 1, OPENED) == "monitord-1-1700000000"
    assert first["link"] == "https://mon.example/api/v1/incidents/1"
    assert ["Check", "acme/srv/web"] in first["facts"]
    assert first["evidence"] == ["2023-11-14T22:13:20+00:00 opened: web <b>"]
    assert first["event"] == "trigger" and first["close"] is True
    assert ["Changed", "members"] in payloads[2]["facts"]
    assert payloads[2]["changes"] == ["members"] and first["changes"] == []


def test_priorities_and_customer_overrides_decide_who_gets_a_ticket(engine: Engine) -> None:
    incident(engine, 1, "P4")
    incident(engine, 2, "P4", customer="bigcorp")
    config = alerting(customers={"bigcorp": {"priorities": ["P1", "P2", "P3", "P4"]}})
    planner = TicketPlanner(lambda: config)
    assert plan(engine, planner, note("trigger", 1, "P4"), note("resolve", 1, "P4", ts=2)) == []
    big = Notification(2, "trigger", OPENED, "P4", "t", "bigcorp", "bigcorp/srv", "m")
    assert plan(engine, planner, big) == [("builtin", "open"), ("helpdesk", "open")]


def test_a_p4_that_turns_p2_gets_its_ticket_then(engine: Engine) -> None:
    incident(engine, 1, "P4")
    planner = TicketPlanner(alerting)
    assert plan(engine, planner, note("trigger", priority="P4")) == []
    assert plan(engine, planner, note("update", priority="P2", ts=2, changes=("priority",))) == [
        ("builtin", "open"),
        ("helpdesk", "open"),
    ]


def test_recovery_as_a_note_only_and_a_linked_ticket(engine: Engine) -> None:
    incident(engine, 1)
    with engine.begin() as conn:
        conn.execute(
            insert(ticket_refs).values(
                system="helpdesk",
                dedup_key=ticket_key("monitord", 1, OPENED),
                external_id="55",
                created_at=0.0,
                linked_by="jan",
            )
        )
    planner = TicketPlanner(lambda: alerting(on_recovery="comment"))
    assert plan(engine, planner, note("trigger"), note("resolve", ts=2)) == [
        ("builtin", "open"),
        ("helpdesk", "comment"),  # linked by hand: the problem goes on that ticket
        ("builtin", "comment"),
        ("helpdesk", "comment"),
    ]


def test_a_ticket_systems_own_incident_is_not_ticketed_there(engine: Engine) -> None:
    own = fingerprint(None, None, f"{INTERNAL}:{unreachable_key('helpdesk')}")
    incident(engine, 1, fingerprint=own, category=INTERNAL, customer=None, device_id=None)
    planner = TicketPlanner(alerting)
    internal = Notification(1, "trigger", OPENED, "P2", "monitord: x", None, None, "x")
    assert plan(engine, planner, internal) == [("builtin", "open")]


def test_the_same_decision_twice_is_queued_once(engine: Engine) -> None:
    incident(engine, 1)
    planner = TicketPlanner(alerting)
    twice = note("update", ts=2, changes=("verdict",))
    assert plan(engine, planner, note("trigger"), twice, twice) == [
        ("builtin", "open"),
        ("helpdesk", "open"),
        ("builtin", "comment"),
        ("helpdesk", "comment"),
    ]
